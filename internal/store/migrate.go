package store

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/shared/*.sql migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// ErrSchemaBehind is returned by CheckSchema when migrations are pending.
var ErrSchemaBehind = errors.New("database schema is behind this provhub version")

func (db *DB) migrator() (*goose.Provider, error) {
	var (
		dialect goose.Dialect
		opts    = []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	)
	switch db.dialect {
	case SQLite:
		dialect = goose.DialectSQLite3
	case Postgres:
		dialect = goose.DialectPostgres
		// Several instances may start at once: one migrates, the others wait.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	src, err := migrationSource(db.dialect)
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(dialect, db.write, src, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration and returns the versions applied.
func (db *DB) Migrate(ctx context.Context) ([]int64, error) {
	p, err := db.migrator()
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", db.dialect, err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// SchemaVersion reports the database's schema version and the newest one
// this binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int64, err error) {
	p, err := db.migrator()
	if err != nil {
		return 0, 0, err
	}
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	return current, latest, nil
}

// CheckSchema returns ErrSchemaBehind (wrapped with the versions) when the
// database needs migrating.
func (db *DB) CheckSchema(ctx context.Context) error {
	current, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if current < latest {
		return fmt.Errorf("%w: at version %d, needs %d (run `provhub migrate`)", ErrSchemaBehind, current, latest)
	}
	return nil
}
