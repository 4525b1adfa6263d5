package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/provhub/provhub/internal/cliflag"
)

func runOperator(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "usage: provhub operator add --username U [--db URL]  (password on standard input)")
		return errUsage
	}
	fs := cliflag.NewFlagSet("operator add", stderr)
	db := cliflag.DB(fs, defaultDB)
	secretFile := addSecretKeyFlag(fs)
	user := fs.String("username", "", "the operator's login name")
	if err := cliflag.Parse(fs, args[1:]); err != nil {
		return err
	}
	if *user == "" {
		fmt.Fprintln(stderr, "provhub operator add: --username is required; the password is read from standard input")
		return errUsage
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	h, err := openAdminHub(ctx, *db, *secretFile, stderr)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Console().AddOperator(ctx, *user, password); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "operator %s can log in to the console at /console/\n", *user)
	return nil
}
