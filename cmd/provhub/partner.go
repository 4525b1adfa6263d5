package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/reqsign"
)

const partnerUsage = `usage:
  provhub partner add --id ID --role tes|wallet --issuer ID[,ID...] [--cert FILE.pem] [--signing [--secret-out FILE]] [--url URL [--timeout D]] [--db URL]
  provhub partner add --id ID --role cas --organisation NAME[,NAME...] --url URL [--timeout D] [--signing [--secret-out FILE]] [--db URL]
  provhub partner list [--db URL]
  provhub partner revoke --id ID [--db URL]
  provhub partner call --url HUB --id ID --secret-file FILE PATH JSON   (a signed POST, as the partner)`

func runPartner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "add":
			return partnerAdd(ctx, args[1:], stdout, stderr)
		case "list":
			return partnerList(ctx, args[1:], stdout, stderr)
		case "revoke":
			return partnerRevoke(ctx, args[1:], stdout, stderr)
		case "call":
			return partnerCall(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, partnerUsage)
	return errUsage
}

// openPartners opens and migrates the database for partner administration.
func openPartners(ctx context.Context, url, secretFile string, stderr io.Writer) (*partner.Registry, func(), error) {
	db, key, err := openSealed(ctx, url, secretFile, stderr)
	if err != nil {
		return nil, nil, err
	}
	r, err := partner.New(partner.Config{DB: db, SecretKey: key})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return r, func() { db.Close() }, nil
}

func partnerAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("partner add", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	id := fs.String("id", "", "the partner's id (1 to 64 of A-Z a-z 0-9 . _ -)")
	role := fs.String("role", "", "tes (a transit entity server), wallet (a wallet server) or cas (a conditional-access system provhub calls)")
	issuers := fs.String("issuer", "", "comma-separated issuerIds the partner may act for (tes, wallet)")
	orgs := fs.String("organisation", "", "comma-separated CRM organisations the CAS serves (cas)")
	callURL := fs.String("url", "", "where provhub calls the partner for its issuers or organisations: a TES's device gateway (.../tes/devicegtwapi/1/0) or a CAS")
	timeout := fs.Duration("timeout", 0, "bound on one call to --url (default 10s)")
	cert := fs.String("cert", "", "the partner's client certificate (PEM); identifies it on a mutual-TLS connection")
	signing := fs.Bool("signing", false, "make a request-signing secret (printed once, or written to --secret-out)")
	secretOut := fs.String("secret-out", "", "write the signing secret to this new file (mode 0600) instead of printing it")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *id == "" || *role == "" || (*issuers == "" && *orgs == "") {
		fmt.Fprintln(stderr, "provhub partner add: --id, --role and --issuer (tes, wallet) or --organisation (cas) are required")
		return errUsage
	}
	np := partner.NewPartner{ID: *id, Role: partner.Role(*role), Issuers: splitList(*issuers), Organisations: splitList(*orgs), Signing: *signing,
		URL: *callURL, Timeout: *timeout}
	if *cert != "" {
		raw, err := os.ReadFile(*cert)
		if err != nil {
			return err
		}
		np.Certificate = raw
	}
	var out *os.File
	if *secretOut != "" {
		f, err := os.OpenFile(*secretOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("secret file: %w", err)
		}
		out = f
	}
	r, closeDB, err := openPartners(ctx, *db, *secretFile, stderr)
	if err != nil {
		if out != nil {
			out.Close()
			os.Remove(*secretOut)
		}
		return err
	}
	defer closeDB()
	secret, err := r.Add(ctx, np)
	if err != nil {
		if out != nil {
			out.Close()
			os.Remove(*secretOut)
		}
		return err
	}
	fmt.Fprintf(stdout, "partner %s (%s) serves %s\n", np.ID, np.Role, strings.Join(append(np.Issuers, np.Organisations...), ", "))
	if np.URL != "" {
		fmt.Fprintf(stdout, "provhub calls it at %s for them\n", np.URL)
	}
	if secret == "" {
		return nil
	}
	if out != nil {
		_, werr := out.WriteString(secret + "\n")
		if cerr := out.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return werr
		}
		fmt.Fprintf(stdout, "signing secret written to %s (mode 0600); it is not shown again\n", *secretOut)
		return nil
	}
	fmt.Fprintf(stdout, "signing secret (shown once; provhub keeps it sealed):\n%s\n", secret)
	return nil
}

func partnerList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("partner list", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	r, closeDB, err := openPartners(ctx, *db, *secretFile, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	list, err := r.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tSERVES\tURL\tCERTIFICATE SHA-256\tSIGNS\tSTATE")
	for _, p := range list {
		state, cert := "active", p.CertSHA256
		if p.RevokedAt != nil {
			state = "revoked " + p.RevokedAt.Format(time.RFC3339)
		}
		if cert == "" {
			cert = "-"
		}
		callURL := p.URL
		if callURL == "" {
			callURL = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\n", p.ID, p.Role, strings.Join(append(p.Issuers, p.Organisations...), ","), callURL, cert, p.Signs, state)
	}
	return tw.Flush()
}

func partnerRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("partner revoke", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	id := fs.String("id", "", "the partner to revoke")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		fmt.Fprintln(stderr, "provhub partner revoke: --id is required")
		return errUsage
	}
	r, closeDB, err := openPartners(ctx, *db, *secretFile, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := r.Revoke(ctx, *id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "partner %s revoked\n", *id)
	return nil
}

// partnerCall posts a JSON body to a partner-facing path, signed as the
// partner, and prints the answer: what a TES or wallet server does, by hand.
func partnerCall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("partner call", stderr)
	hubURL := fs.String("url", "http://127.0.0.1:8080", "the hub")
	id := fs.String("id", "", "the partner's id")
	secretPath := fs.String("secret-file", "", "file holding the partner's signing secret")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *id == "" || *secretPath == "" || fs.NArg() != 2 {
		fmt.Fprintln(stderr, "provhub partner call: --id, --secret-file, PATH and JSON are required")
		return errUsage
	}
	st, err := os.Stat(*secretPath)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s has mode %o: a secret file is readable by its owner only (chmod 600)", *secretPath, st.Mode().Perm())
	}
	raw, err := os.ReadFile(*secretPath)
	if err != nil {
		return err
	}
	body := []byte(fs.Arg(1))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*hubURL, "/")+fs.Arg(0), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	reqsign.Sign(req, body, *id, strings.TrimSpace(string(raw)), time.Now())
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(answer))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the hub answered HTTP %d", resp.StatusCode)
	}
	return nil
}
