package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

func TestStore_MigrateIsIdempotentAndCurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		applied, err := db.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 0 {
			t.Fatalf("second migrate applied %v, want nothing", applied)
		}
		if err := db.CheckSchema(ctx); err != nil {
			t.Fatalf("schema after migrate: %v", err)
		}
	})
}

func TestStore_CheckSchemaReportsPendingMigrations(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Backends {
		t.Run(d.String(), func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, store.Config{URL: storetest.NewURL(t, d)})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.CheckSchema(ctx); !errors.Is(err, store.ErrSchemaBehind) {
				t.Fatalf("fresh database: got %v, want ErrSchemaBehind", err)
			}
		})
	}
}

func TestStore_InTxCommitsRollsBackAndRunsAfterCommit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		ran := 0
		err := db.InTx(ctx, func(tx *store.Tx) error {
			tx.AfterCommit(func() { ran++ })
			_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, "a", "1")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err = db.InTx(ctx, func(tx *store.Tx) error {
			tx.AfterCommit(func() { ran += 10 })
			if _, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, "b", "2"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx error = %v, want boom", err)
		}
		if ran != 1 {
			t.Fatalf("after-commit hooks ran %d, want exactly the committed one", ran)
		}
		var n int
		if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("rows = %d, want 1 (the rolled back insert must be gone)", n)
		}
	})
}

func TestStore_PlaceholdersBindByPosition(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var a, b string
		err := db.Reader().QueryRowContext(context.Background(), `SELECT $2, $1`, "first", "second").Scan(&a, &b)
		if err != nil {
			t.Fatal(err)
		}
		if a != "second" || b != "first" {
			t.Fatalf("got %q %q, want second first", a, b)
		}
	})
}

func TestOpen_RejectsUnknownURLsWithoutLeakingPasswords(t *testing.T) {
	t.Parallel()
	_, err := store.Open(context.Background(), store.Config{URL: "mysql://u:secret@h/db"})
	if err == nil {
		t.Fatal("want an error")
	}
	if got := err.Error(); strings.Contains(got, "secret") {
		t.Fatalf("error leaks the password: %s", got)
	}
	if _, err := store.Open(context.Background(), store.Config{URL: "sqlite::memory:"}); err == nil {
		t.Fatal("in-memory sqlite must be refused")
	}
}

func TestStore_CachedStatementsRunInsideTransactions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		const ins = `INSERT INTO kv (k, v) VALUES ($1, $2)`
		const sel = `SELECT v FROM kv WHERE k = $1`
		if err := db.Prepare(ctx, ins, sel); err != nil {
			t.Fatal(err)
		}
		for round, want := range []string{"1", "2"} {
			err := db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.ExecCached(ctx, ins, want+"k", want); err != nil {
					return err
				}
				// A statement never prepared still runs.
				if _, err := tx.ExecCached(ctx, `UPDATE kv SET v = v WHERE k = $1`, want+"k"); err != nil {
					return err
				}
				rs, err := tx.QueryCached(ctx, sel, want+"k")
				if err != nil {
					return err
				}
				defer rs.Close()
				var got string
				if !rs.Next() {
					return errors.New("inserted row not found")
				}
				if err := rs.Scan(&got); err != nil {
					return err
				}
				if got != want {
					t.Errorf("round %d: got %q, want %q", round, got, want)
				}
				return rs.Err()
			})
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	})
}

func TestStore_InGroupTxCommitsEachCallersWritesOrNone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		const callers = 200
		errs := make([]error, callers)
		hooks := make([]int, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
					tx.AfterCommit(func() { hooks[i]++ })
					if _, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, 'a')`, fmt.Sprint(i)); err != nil {
						return err
					}
					switch i % 10 {
					case 3: // a failing statement undoes only this caller's writes
						_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, 'dup')`, fmt.Sprint(i))
						return err
					case 7:
						return errors.New("refused")
					}
					if err := tx.Commit(); err == nil {
						return errors.New("a grouped transaction let its function commit")
					}
					return nil
				})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			fail := i%10 == 3 || i%10 == 7
			if (err != nil) != fail {
				t.Errorf("caller %d: err %v", i, err)
			}
			if want := map[bool]int{true: 0, false: 1}[fail]; hooks[i] != want {
				t.Errorf("caller %d: AfterCommit ran %d times, want %d", i, hooks[i], want)
			}
			var n int
			if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM kv WHERE k = $1`, fmt.Sprint(i)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if (n == 1) == fail {
				t.Errorf("caller %d (fails: %v): %d rows", i, fail, n)
			}
		}
		// A caller whose context is already done is skipped.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		ran := false
		if err := db.InGroupTx(cctx, func(context.Context, *store.Tx) error { ran = true; return nil }); err == nil || ran {
			t.Errorf("cancelled caller: err %v ran %v", err, ran)
		}
	})
}

// TestStore_SQLiteFilesAreOwnerOnlyAndErasedDataLeavesTheDisk opens a
// database under a permissive umask, over files an older release left
// world-readable, writes a secret, erases it and checkpoints: the database
// and its -wal and -shm files are 0600, and the secret's bytes are in none
// of them.
func TestStore_SQLiteFilesAreOwnerOnlyAndErasedDataLeavesTheDisk(t *testing.T) {
	t.Parallel()
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var secureDelete int
	if err := db.Writer().QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&secureDelete); err != nil || secureDelete != 1 {
		t.Fatalf("secure_delete = %d (%v), want 1", secureDelete, err)
	}
	const secret = "PIN-4711-never-on-disk"
	for _, q := range []string{
		`CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)`,
		`INSERT INTO kv (k, v) VALUES ('pin', '` + secret + `')`,
		`UPDATE kv SET v = NULL WHERE k = 'pin'`,
	} {
		if _, err := db.Writer().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if mode := st.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(f), mode)
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the erased secret is still readable in %s", filepath.Base(f))
		}
	}
}

// TestStore_PrepareDoesNotHoldCachedStatementsWhileItWaits: on SQLite a
// transaction holds the writer's one connection; Prepare, waiting for that
// connection, must not keep the transaction from using cached statements
// (it did: the two waited on each other until Prepare's context ended).
func TestStore_PrepareDoesNotHoldCachedStatementsWhileItWaits(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prepared := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		prepared <- db.Prepare(pctx, `SELECT count(*) FROM jobs`, `SELECT count(*) FROM jobs WHERE state = 'running'`)
	}()
	<-started
	for range 100 { // let Prepare reach its wait for the connection
		runtime.Gosched()
	}
	var n int
	if err := tx.QueryRowCached(ctx, `SELECT count(*) FROM jobs WHERE kind = $1`, "x").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-prepared; err != nil {
		t.Fatalf("Prepare, once the transaction ended: %v", err)
	}
}

// Readers keep small page caches: SQLite drops a reader's cache at its
// first read after a commit, and freeing a large one stalled every call
// (readerCachePages). The readers together keep at most 128 pages, and a
// reader still reads what the writer just committed.
func TestStore_SQLiteReadersKeepSmallPageCachesAndSeeEveryCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct{ readers, pages int }{{1, 128}, {4, 32}, {64, 8}} {
		t.Run(fmt.Sprintf("%d_readers", tc.readers), func(t *testing.T) {
			db, err := store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "hub.db"), MaxConns: tc.readers})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var pages int
			if err := db.Reader().QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&pages); err != nil {
				t.Fatal(err)
			}
			if pages != tc.pages {
				t.Fatalf("reader cache_size = %d pages, want %d", pages, tc.pages)
			}
			var writer int
			if err := db.Writer().QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&writer); err != nil {
				t.Fatal(err)
			}
			if writer != -65536 {
				t.Fatalf("writer cache_size = %d, want the writer's own -65536 (KiB)", writer)
			}
			if _, err := db.Writer().ExecContext(ctx, `CREATE TABLE t (n INTEGER)`); err != nil {
				t.Fatal(err)
			}
			for n := 1; n <= 3; n++ {
				if _, err := db.Writer().ExecContext(ctx, `INSERT INTO t (n) VALUES ($1)`, n); err != nil {
					t.Fatal(err)
				}
				var sum int
				if err := db.Reader().QueryRowContext(ctx, `SELECT sum(n) FROM t`).Scan(&sum); err != nil {
					t.Fatal(err)
				}
				if want := n * (n + 1) / 2; sum != want {
					t.Fatalf("after insert %d a reader sums %d, want %d", n, sum, want)
				}
			}
		})
	}
}

// TestStore_SQLiteGroupedTransactionsCompileTheirSavepointsOnce runs
// batches of grouped callers, some failing, and counts the savepoint
// statements SQLite compiles for them: each of the three is compiled once,
// not once a caller.
func TestStore_SQLiteGroupedTransactionsCompileTheirSavepointsOnce(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	compiled := storetest.CountCompilations(t, db, func(a sqlite.AuthorizerActionCode) bool { return a == sqlite.AuthSavepoint })
	refused := errors.New("refused")
	batch := func() {
		t.Helper()
		fns := make([]func(context.Context, *store.Tx) error, 10)
		for i := range fns {
			fns[i] = func(context.Context, *store.Tx) error {
				if i%3 == 1 {
					return refused
				}
				return nil
			}
		}
		for i, err := range db.RunGroup(fns...) {
			var want error
			if i%3 == 1 {
				want = refused
			}
			if !errors.Is(err, want) {
				t.Fatalf("caller %d: %v, want %v", i, err, want)
			}
		}
	}
	batch() // compiles the savepoints again: the authorizer expired them
	if compiled.Load() == 0 {
		t.Fatal("a batch of callers compiled no savepoint: the batch did not run in a shared transaction")
	}
	compiled.Store(0)
	for range 5 {
		batch()
	}
	if n := compiled.Load(); n != 0 {
		t.Errorf("five batches of ten callers compiled savepoint statements %d times; they should be compiled once", n)
	}
}
