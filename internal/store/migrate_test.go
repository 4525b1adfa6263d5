package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// holdMigrationLock takes the migration lock of url's schema on a session
// of its own, as an instance busy migrating it would, and returns the
// function that lets it go.
func holdMigrationLock(t *testing.T, url string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema()))`, store.MigrationLockNamespace); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			conn.Close(ctx)
		}
	}
	t.Cleanup(release)
	return release
}

// waitForLockWaiter returns once a session of the database is waiting for
// an advisory lock, failing the test if done closes first.
func waitForLockWaiter(t *testing.T, url string, done <-chan error) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("the migration ended (%v) while another session held its schema's migration lock", err)
		default:
		}
		var waiting bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND objsubid = 2
			AND classid = $1::bigint::oid AND objid = (hashtext(current_schema())::bigint & 4294967295)::oid)`,
			store.MigrationLockNamespace).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no session came to wait for the schema's migration lock")
}

// One instance at a time migrates a schema; instances of other schemas in
// the same database do not wait for it, and a wait cut short leaves no lock
// behind.
func TestStore_PostgresMigrationsWaitOnlyForTheirOwnSchema(t *testing.T) {
	t.Parallel()
	urlA := storetest.NewURL(t, store.Postgres)
	urlB := storetest.NewURL(t, store.Postgres)
	open := func(url string) *store.DB {
		db, err := store.Open(context.Background(), store.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	release := holdMigrationLock(t, urlA)

	// Another schema migrates while A's lock is held. (A lock shared by the
	// whole database would keep this waiting until the context ends.)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := open(urlB).Migrate(ctx); err != nil {
		t.Fatalf("schema B, while A's migration lock is held: %v", err)
	}

	// A wait that its caller gives up on ends with an error and keeps no lock.
	dbA := open(urlA)
	giveUp, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := dbA.Migrate(giveUp); done <- err }()
	waitForLockWaiter(t, urlA, done)
	stop()
	if err := <-done; err == nil {
		t.Fatal("a migration whose context ended while it waited for the lock succeeded")
	}

	// Schema A waits for the holder, and migrates once it lets go.
	go func() { _, err := dbA.Migrate(ctx); done <- err }()
	waitForLockWaiter(t, urlA, done)
	release()
	if err := <-done; err != nil {
		t.Fatalf("schema A, once its lock was let go: %v", err)
	}
	if err := dbA.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}
}
