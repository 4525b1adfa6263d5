package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3"
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
		opts = append(opts, goose.WithSessionLocker(schemaMigrationLock{}))
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

// migrationLockNamespace is the first key of the advisory lock that lets
// one instance at a time migrate a schema ("pvmg"); the second is the
// schema's hash, as for the engine's claim lock.
const migrationLockNamespace = 0x70766d67

// schemaMigrationLock is goose's session lock on PostgreSQL, per schema and
// without polling. goose's own locker takes one advisory lock for the whole
// database and, when it is taken, tries again every five seconds: hubs in
// different schemas of one database waited for each other's migrations,
// and an instance starting beside another that was migrating waited at
// least five seconds for a migration of a few hundred milliseconds.
// pg_advisory_lock waits in the server and is granted the moment the holder
// lets go (or its session ends); the caller's context bounds the wait.
type schemaMigrationLock struct{}

func (schemaMigrationLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema()))`, migrationLockNamespace)
	if err != nil {
		// A wait cut short by ctx may race with the grant: the session could
		// hold the lock without knowing it. Closing the connection (rather
		// than handing it back to the pool) ends the session and its locks.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return fmt.Errorf("migration lock: %w", err)
	}
	return nil
}

func (schemaMigrationLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, migrationLockNamespace).Scan(&released); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return fmt.Errorf("migration unlock: %w", err)
	}
	if !released {
		return errors.New("migration unlock: the session did not hold the lock")
	}
	return nil
}
