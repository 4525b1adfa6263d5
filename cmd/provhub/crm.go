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

	"github.com/provhub/provhub/internal/paytv"
)

func runCRM(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch {
	case len(args) >= 1 && args[0] == "import":
		return crmImport(ctx, args[1:], stdout, stderr)
	case len(args) >= 2 && args[0] == "user" && args[1] == "add":
		return crmUserAdd(ctx, args[2:], stdin, stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: provhub crm import FILE [--db URL]\n       provhub crm user add --username U --organisation O [--unit UNIT] [--person-name N] [--email E] [--db URL]")
	return errUsage
}

// openPayTV opens and migrates the database and returns a pay-TV service
// for administration (no engine: nothing is sent from here).
func openPayTV(ctx context.Context, url string) (*paytv.Service, func(), error) {
	db, err := openMigrated(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	svc, err := paytv.New(paytv.Config{DB: db})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return svc, func() { db.Close() }, nil
}

func crmImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("crm import", stderr)
	db := addDBFlag(fs, defaultDB)
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
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
	fs := newFlagSet("crm user add", stderr)
	db := addDBFlag(fs, defaultDB)
	var u paytv.NewUser
	fs.StringVar(&u.Username, "username", "", "login name (required)")
	fs.StringVar(&u.Organisation, "organisation", "", "organisation name (required; created when new)")
	fs.StringVar(&u.Unit, "unit", "", "default unit, by id or name (the organisation's first unit when empty)")
	fs.StringVar(&u.PersonName, "person-name", "", "person's name")
	fs.StringVar(&u.Email, "email", "", "e-mail address")
	if err := parse(fs, args); err != nil {
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
