package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
)

const defaultDB = "sqlite:provhub.db"

// addSecretKeyFlag adds --secret-key-file, the key that seals provhub's
// signing keys and partners' secrets in the database.
func addSecretKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("secret-key-file", "", "file holding the secret key that seals keys and secrets in the database (base64 of 32 bytes, mode 0600); PROVHUB_SECRET_KEY may hold the key itself; on SQLite the default is the database path + .secret, created if missing; required on PostgreSQL")
}

// secretKey finds the hub's secret key: PROVHUB_SECRET_KEY, else the file
// given, else (SQLite only) a file beside the database, created on first
// use. On PostgreSQL a missing key stops the command: the database is shared
// and its copy must not mint tokens.
func secretKey(file, dbURL string, stderr io.Writer) (*sealed.Key, error) {
	if text, ok := os.LookupEnv("PROVHUB_SECRET_KEY"); ok && text != "" {
		k, err := sealed.ParseKey(text)
		if err != nil {
			return nil, fmt.Errorf("PROVHUB_SECRET_KEY: %w", err)
		}
		return k, nil
	}
	if file != "" {
		return sealed.LoadKeyFile(file)
	}
	path, ok := strings.CutPrefix(dbURL, "sqlite:")
	if !ok {
		return nil, errors.New("a PostgreSQL database needs the hub's secret key: give --secret-key-file FILE or PROVHUB_SECRET_KEY (make one with `provhub secret-key --out FILE`)")
	}
	path = strings.TrimPrefix(path, "//")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	k, created, err := sealed.EnsureKeyFile(path + ".secret")
	if created {
		fmt.Fprintf(stderr, "created the secret key %s.secret (mode 0600): keep it with the database's backups, apart from them\n", path)
	}
	return k, err
}

// openSealed is openMigrated with the hub's secret key, for the commands
// that read or write sealed secrets.
func openSealed(ctx context.Context, url, secretFile string, stderr io.Writer) (*store.DB, *sealed.Key, error) {
	key, err := secretKey(secretFile, url, stderr)
	if err != nil {
		return nil, nil, err
	}
	db, err := openMigrated(ctx, url)
	return db, key, err
}

// openMigrated opens the database and applies pending migrations, for the
// administration commands.
func openMigrated(ctx context.Context, url string) (*store.DB, error) {
	db, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// splitList reads a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// openAdminHub opens the hub on a database for an administration command
// (migrating it), with the secret key of --secret-key-file or the one
// beside a SQLite database.
func openAdminHub(ctx context.Context, dbURL, secretFile string, stderr io.Writer) (*hub.Hub, error) {
	key, err := secretKey(secretFile, dbURL, stderr)
	if err != nil {
		return nil, err
	}
	return hub.New(ctx, hub.Config{DatabaseURL: dbURL, Migrate: true, SecretKey: key})
}
