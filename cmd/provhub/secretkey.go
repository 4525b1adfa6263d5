package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/sealed"
)

// runSecretKey writes a new secret key file (mode 0600) for --secret-key-file.
func runSecretKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("secret-key", stderr)
	out := fs.String("out", "", "the file to create (it must not exist)")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(stderr, "provhub secret-key: --out FILE is required")
		return errUsage
	}
	_, created, err := sealed.EnsureKeyFile(*out)
	if err != nil {
		return err
	}
	if !created {
		return errors.New("provhub secret-key: " + *out + " exists; a key is never overwritten (the keys it sealed would be lost)")
	}
	fmt.Fprintf(stdout, "wrote %s (mode 0600): give it to every instance as --secret-key-file, and back it up apart from the database\n", *out)
	return nil
}
