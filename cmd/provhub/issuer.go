package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/wallet"
)

const issuerUsage = `usage: provhub issuer keygen --out PREFIX
       provhub issuer add --id ISSUERID10 --kid K --public-key FILE [--db URL]
       provhub issuer revoke-key --id ISSUERID10 --kid K [--db URL]
       provhub issuer token --url HUB --id ISSUERID10 --kid K --key PREFIX.key [--aud A]
       provhub issuer rotate-signing-key [--db URL]
       provhub issuer notifications --id ISSUERID [--on KIND,...] [--off KIND,...] [--db URL]
       provhub issuer otp-key --id ISSUERID --out FILE [--db URL]
       provhub issuer otp --id ISSUERID --card CARDID --key-file FILE`

func runIssuer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "keygen":
			return issuerKeygen(args[1:], stdout, stderr)
		case "add":
			return issuerAdd(ctx, args[1:], stdout, stderr)
		case "revoke-key":
			return issuerRevoke(ctx, args[1:], stdout, stderr)
		case "token":
			return issuerToken(ctx, args[1:], stdout, stderr)
		case "rotate-signing-key":
			return issuerRotate(ctx, args[1:], stdout, stderr)
		case "notifications":
			return issuerNotifications(ctx, args[1:], stdout, stderr)
		case "otp-key":
			return issuerOTPKey(ctx, args[1:], stdout, stderr)
		case "otp":
			return issuerOTP(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, issuerUsage)
	return errUsage
}

func issuerKeygen(args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("issuer keygen", stderr)
	out := fs.String("out", "", "write PREFIX.key (private, PEM) and PREFIX.pub (public, PEM)")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(stderr, "provhub issuer keygen: --out is required")
		return errUsage
	}
	private, public, err := oauth.GenerateKey()
	if err != nil {
		return err
	}
	// O_EXCL: never overwrite a key someone may depend on.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{*out + ".key", private, 0o600}, {*out + ".pub", public, 0o600}} {
		fh, err := os.OpenFile(f.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return fmt.Errorf("write key: %w", err)
		}
		if _, err := fh.Write(f.data); err != nil {
			fh.Close()
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		if err := fh.Close(); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	fmt.Fprintf(stdout, "wrote %s.key (private) and %s.pub (public)\n", *out, *out)
	return nil
}

// issuerNotifications turns the kinds of device notifications on or off
// for an issuer's cards and prints the ones that are off.
func issuerNotifications(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("issuer notifications", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	id := fs.String("id", "", "the issuerId")
	on := fs.String("on", "", "comma-separated kinds to turn on: "+strings.Join(wallet.NotificationKinds, ", "))
	off := fs.String("off", "", "comma-separated kinds to turn off")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		fmt.Fprintln(stderr, "provhub issuer notifications: --id is required")
		return errUsage
	}
	h, err := openAdminHub(ctx, *db, *secretFile, stderr)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Transit().SetNotifications(ctx, *id, splitList(*on), splitList(*off)); err != nil {
		return err
	}
	kinds, err := h.Transit().NotificationsOff(ctx, *id)
	if err != nil {
		return err
	}
	if len(kinds) == 0 {
		fmt.Fprintf(stdout, "issuer %s: every notification kind is on\n", *id)
		return nil
	}
	fmt.Fprintf(stdout, "issuer %s: off: %s\n", *id, strings.Join(kinds, ", "))
	return nil
}

// openOAuth opens and migrates the database for key administration.
func openOAuth(ctx context.Context, url, secretFile string, stderr io.Writer) (*oauth.Server, func(), error) {
	db, key, err := openSealed(ctx, url, secretFile, stderr)
	if err != nil {
		return nil, nil, err
	}
	srv, err := oauth.New(oauth.Config{DB: db, SecretKey: key})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return srv, func() { db.Close() }, nil
}

func issuerAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("issuer add", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	id := fs.String("id", "", "issuerId: exactly 10 characters")
	kid := fs.String("kid", "", "key id the issuer puts in its assertions' header")
	pub := fs.String("public-key", "", "the issuer's EC P-256 public key, PEM")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *id == "" || *kid == "" || *pub == "" {
		fmt.Fprintln(stderr, "provhub issuer add: --id, --kid and --public-key are required")
		return errUsage
	}
	raw, err := os.ReadFile(*pub)
	if err != nil {
		return err
	}
	srv, closeDB, err := openOAuth(ctx, *db, *secretFile, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := srv.AddClientKey(ctx, *id, *kid, raw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "issuer %s may now sign assertions with key %s\n", *id, *kid)
	return nil
}

func issuerRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("issuer revoke-key", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	id := fs.String("id", "", "issuerId")
	kid := fs.String("kid", "", "key id to revoke")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *id == "" || *kid == "" {
		fmt.Fprintln(stderr, "provhub issuer revoke-key: --id and --kid are required")
		return errUsage
	}
	srv, closeDB, err := openOAuth(ctx, *db, *secretFile, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := srv.RevokeClientKey(ctx, *id, *kid); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s of issuer %s revoked; access tokens already issued expire within %s\n", *kid, *id, oauth.TokenLifetime)
	return nil
}

func issuerRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("issuer rotate-signing-key", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	srv, closeDB, err := openOAuth(ctx, *db, *secretFile, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	kid, err := srv.RotateSigningKey(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "provhub now signs access tokens with key %s; tokens signed before stay valid until they expire\n", kid)
	return nil
}

func issuerToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("issuer token", stderr)
	hubURL := fs.String("url", "http://127.0.0.1:8080", "the hub's base URL")
	id := fs.String("id", "", "issuerId")
	kid := fs.String("kid", "", "key id of the signing key")
	keyFile := fs.String("key", "", "the issuer's private key, PEM (PREFIX.key of keygen)")
	aud := fs.String("aud", "", "aud claim to send (none when empty)")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *id == "" || *kid == "" || *keyFile == "" {
		fmt.Fprintln(stderr, "provhub issuer token: --id, --kid and --key are required")
		return errUsage
	}
	token, expiresIn, err := oauth.AccessTokenWithKeyFile(ctx, *hubURL, *id, *kid, *keyFile, *aud)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "access token for %s, valid %d s:\n", *id, expiresIn)
	fmt.Fprintln(stdout, token)
	return nil
}
