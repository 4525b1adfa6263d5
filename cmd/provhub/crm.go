package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/paytv"
)

func runCRM(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch {
	case len(args) >= 1 && args[0] == "import":
		return crmImport(ctx, args[1:], stdout, stderr)
	case len(args) >= 2 && args[0] == "user" && args[1] == "add":
		return crmUserAdd(ctx, args[2:], stdin, stdout, stderr)
	case len(args) >= 2 && args[0] == "key":
		return crmKey(ctx, args[1], args[2:], stdout, stderr)
	}
	fmt.Fprintln(stderr, crmUsage)
	return errUsage
}

const crmUsage = `usage: provhub crm import FILE [--db URL]
       provhub crm user add --username U --organisation O [--unit UNIT] [--person-name N] [--email E] [--db URL]
       provhub crm key add --username U --organisation O [--unit UNIT] [--name N] [--db URL]   (the key is printed once)
       provhub crm key list --organisation O [--db URL]
       provhub crm key revoke --organisation O --id KEY_ID [--db URL]`

// crmKey makes, lists and revokes CRM Web API keys.
func crmKey(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("crm key "+verb, stderr)
	db := cliflag.DB(fs, defaultDB)
	var k paytv.NewWebAPIKey
	fs.StringVar(&k.Organisation, "organisation", "", "organisation name (required)")
	var id string
	switch verb {
	case "add":
		fs.StringVar(&k.Username, "username", "", "the CRM user the key logs in as (required)")
		fs.StringVar(&k.Unit, "unit", "", "the key's default unit, by id or name (the user's when empty)")
		fs.StringVar(&k.Name, "name", "", "what the key is for")
	case "revoke":
		fs.StringVar(&id, "id", "", "the key's id, as list shows it (required)")
	case "list":
	default:
		fmt.Fprintln(stderr, crmUsage)
		return errUsage
	}
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if k.Organisation == "" || (verb == "add" && k.Username == "") || (verb == "revoke" && id == "") {
		fmt.Fprintln(stderr, crmUsage)
		return errUsage
	}
	svc, closeDB, err := openPayTV(ctx, *db)
	if err != nil {
		return err
	}
	defer closeDB()
	switch verb {
	case "add":
		key, keyID, err := svc.AddWebAPIKey(ctx, k)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Web API key %s for %s in %s (shown once; provhub keeps its hash only):\n%s\n", keyID, k.Username, k.Organisation, key)
	case "list":
		keys, err := svc.WebAPIKeys(ctx, k.Organisation)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tUNIT\tNAME\tCREATED\tSTATE")
		for _, key := range keys {
			state := "active"
			if key.RevokedAt != nil {
				state = "revoked " + key.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", key.ID, key.Username, key.UnitID, key.Name, key.CreatedAt.Format(time.RFC3339), state)
		}
		return tw.Flush()
	case "revoke":
		if err := svc.RevokeWebAPIKey(ctx, k.Organisation, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Web API key %s revoked; its sessions ended\n", id)
	}
	return nil
}

// openPayTV opens and migrates the database and returns a pay-TV service
// for administration. Its engine is never started: nothing is sent from
// here (a request queued by an administration command would wait for a
// hub to run it).
func openPayTV(ctx context.Context, url string) (*paytv.Service, func(), error) {
	db, err := openMigrated(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	jobs := engine.NewRegistry()
	eng, err := engine.New(engine.Config{DB: db, Registry: jobs})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	svc, err := paytv.New(paytv.Config{DB: db, Engine: eng, Jobs: jobs})
	if err != nil {
		eng.Close()
		db.Close()
		return nil, nil, err
	}
	return svc, func() { eng.Close(); db.Close() }, nil
}

func crmImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("crm import", stderr)
	db := cliflag.DB(fs, defaultDB)
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if file == "" {
		fmt.Fprintln(stderr, "usage: provhub crm import FILE [--db URL]")
		return errUsage
	}
	ref, err := readReferenceData(file)
	if err != nil {
		return err
	}
	svc, closeDB, err := openPayTV(ctx, *db)
	if err != nil {
		return err
	}
	defer closeDB()
	sum, err := svc.Import(ctx, ref)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported into %s: %d units, %d subscriptions, %d services, %d smartcards, %d STBs\n",
		ref.Organisation, sum.Units, sum.Subscriptions, sum.Services, sum.Smartcards, sum.STBs)
	return nil
}

// readReferenceData reads the import format, refusing unknown fields so a
// misspelt key does not silently drop data.
func readReferenceData(file string) (paytv.ReferenceData, error) {
	var ref paytv.ReferenceData
	f, err := os.Open(file)
	if err != nil {
		return ref, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ref); err != nil {
		return ref, fmt.Errorf("read %s: %w", file, err)
	}
	return ref, nil
}

func crmUserAdd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("crm user add", stderr)
	db := cliflag.DB(fs, defaultDB)
	var u paytv.NewUser
	fs.StringVar(&u.Username, "username", "", "login name (required)")
	fs.StringVar(&u.Organisation, "organisation", "", "organisation name (required; created when new)")
	fs.StringVar(&u.Unit, "unit", "", "default unit, by id or name (the organisation's first unit when empty)")
	fs.StringVar(&u.PersonName, "person-name", "", "person's name")
	fs.StringVar(&u.Email, "email", "", "e-mail address")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if u.Username == "" || u.Organisation == "" {
		fmt.Fprintln(stderr, "provhub crm user add: --username and --organisation are required; the password is read from standard input")
		return errUsage
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	u.Password = strings.TrimRight(line, "\r\n")
	if u.Password == "" {
		return errors.New("no password on standard input")
	}
	svc, closeDB, err := openPayTV(ctx, *db)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := svc.AddUser(ctx, u); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s of %s saved\n", u.Username, u.Organisation)
	return nil
}
