package main

import (
	"context"
	"fmt"
	"io"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/store"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("migrate", stderr)
	db := cliflag.DB(fs, defaultDB)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	s, err := store.Open(ctx, store.Config{URL: *db})
	if err != nil {
		return err
	}
	defer s.Close()
	applied, err := s.Migrate(ctx)
	if err != nil {
		return err
	}
	current, _, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: applied %d migration(s); schema at version %d\n", s, len(applied), current)
	return nil
}
