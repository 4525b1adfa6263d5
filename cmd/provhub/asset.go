package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/provhub/provhub/internal/cardaccount"
	"github.com/provhub/provhub/internal/cliflag"
)

const assetUsage = `usage: provhub asset add --issuer ISSUERID --file FILE [--content-type TYPE] [--description TEXT] [--db URL]
       provhub asset list --issuer ISSUERID [--db URL]
       provhub asset remove --issuer ISSUERID --guid GUID [--db URL]`

// runAsset manages an issuer's card art and terms, as the issuer API does.
func runAsset(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list" && args[0] != "remove") {
		fmt.Fprintln(stderr, assetUsage)
		return errUsage
	}
	verb := args[0]
	fs := cliflag.NewFlagSet("asset "+verb, stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	issuerID := fs.String("issuer", "", "the issuerId the asset belongs to")
	file := fs.String("file", "", "add: the asset (PNG or JPEG card art; text, HTML or PDF terms)")
	contentType := fs.String("content-type", "", "add: its media type [from the file name]")
	description := fs.String("description", "", "add: a name for people (at most 128 characters)")
	guid := fs.String("guid", "", "remove: the asset's GUID")
	if err := cliflag.Parse(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case *issuerID == "":
		fmt.Fprintf(stderr, "provhub asset %s: --issuer is required\n", verb)
		return errUsage
	case verb == "add" && *file == "", verb == "remove" && *guid == "":
		fmt.Fprintln(stderr, assetUsage)
		return errUsage
	}
	h, err := openAdminHub(ctx, *db, *secretFile, stderr)
	if err != nil {
		return err
	}
	defer h.Close()
	switch verb {
	case "add":
		content, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		ct := *contentType
		if ct == "" {
			if ct = mime.TypeByExtension(filepath.Ext(*file)); ct == "" {
				ct = http.DetectContentType(content)
			}
		}
		a, err := h.Assets().Add(ctx, *issuerID, ct, content, *description)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "asset %s: %s %s, %d bytes, sha256 %s\n", a.GUID, a.Kind, a.ContentType, a.Size, a.SHA256)
	case "list":
		list, err := h.Assets().List(ctx, *issuerID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GUID\tKIND\tTYPE\tBYTES\tADDED\tDESCRIPTION")
		for _, a := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", a.GUID, a.Kind, a.ContentType, a.Size, a.CreatedAt.Format(time.RFC3339), a.Description)
		}
		return tw.Flush()
	case "remove":
		if err := h.Assets().Remove(ctx, *issuerID, *guid); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "asset %s removed\n", *guid)
	}
	return nil
}

// issuerOTPKey makes an issuer a new OTP key and writes it to a file only
// its owner may read (never to the terminal).
func issuerOTPKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("issuer otp-key", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	id := fs.String("id", "", "the issuerId")
	out := fs.String("out", "", "write the key (base64) to this new file, mode 0600")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *id == "" || *out == "" {
		fmt.Fprintln(stderr, "provhub issuer otp-key: --id and --out are required")
		return errUsage
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("OTP key file: %w", err)
	}
	h, err := openAdminHub(ctx, *db, *secretFile, stderr)
	if err != nil {
		f.Close()
		os.Remove(*out)
		return err
	}
	defer h.Close()
	text, err := h.Accounts().NewOTPKey(ctx, *id)
	if err == nil {
		_, err = f.WriteString(text + "\n")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out)
		return err
	}
	fmt.Fprintf(stdout, "issuer %s: new OTP key in %s (any earlier key no longer works)\n", *id, *out)
	return nil
}

// issuerOTP prints the current OTP of a card account, as the issuer's
// back end computes it (docs/transit.md), from the key file.
func issuerOTP(args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("issuer otp", stderr)
	id := fs.String("id", "", "the issuerId")
	card := fs.String("card", "", "the card account (cardId)")
	keyFile := fs.String("key-file", "", "the issuer's OTP key file (from provhub issuer otp-key)")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *id == "" || *card == "" || *keyFile == "" {
		fmt.Fprintln(stderr, "provhub issuer otp: --id, --card and --key-file are required")
		return errUsage
	}
	st, err := os.Stat(*keyFile)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("OTP key file %s has mode %o: make it readable by its owner only (chmod 600)", *keyFile, st.Mode().Perm())
	}
	text, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil || len(key) != 32 {
		return fmt.Errorf("OTP key file %s: not a base64 key of 32 bytes", *keyFile)
	}
	fmt.Fprintln(stdout, cardaccount.OTP(key, *id, *card, cardaccount.Step(time.Now())))
	return nil
}
