package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect names the SQL backend behind a DB.
type Dialect int

const (
	// SQLite is the embedded backend (modernc.org/sqlite).
	SQLite Dialect = iota + 1
	// Postgres is the shared backend (pgx).
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	default:
		return fmt.Sprintf("dialect(%d)", int(d))
	}
}

// Config says which database to open.
type Config struct {
	// URL is "sqlite:PATH" (a file; it is created if missing) or a
	// "postgres://" / "postgresql://" connection URL.
	URL string
	// MaxConns bounds the PostgreSQL pool and the SQLite reader pool.
	// Zero picks a default (20 for PostgreSQL, 4 SQLite readers).
	MaxConns int
	// BusyTimeout is how long a SQLite connection waits for a lock held by
	// another connection before failing. Zero means 10 s.
	BusyTimeout time.Duration
}

// Queryer is what both *sql.DB and *sql.Tx offer; repositories accept it so
// the same code runs inside or outside a transaction.
type Queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DB is an open provhub database.
type DB struct {
	dialect Dialect
	write   *sql.DB
	read    *sql.DB
	pool    *pgxpool.Pool
	display string

	// stmts caches statements prepared on the SQLite writer connection
	// (PostgreSQL's driver keeps its own per-connection cache).
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt

	group     grouper
	readStmts sync.Map // query text -> *sql.Stmt on the reader pool

	// closers stop what writes through the group commit (Batchers) before
	// Close stops the group commit itself.
	closeMu sync.Mutex
	closers []func()
}

// onClose has Close run f first.
func (db *DB) onClose(f func()) {
	db.closeMu.Lock()
	db.closers = append(db.closers, f)
	db.closeMu.Unlock()
}

// Open connects to the database named by cfg.URL. It does not migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	switch {
	case strings.HasPrefix(cfg.URL, "sqlite:"):
		return openSQLite(ctx, cfg)
	case strings.HasPrefix(cfg.URL, "postgres://"), strings.HasPrefix(cfg.URL, "postgresql://"):
		return openPostgres(ctx, cfg)
	default:
		return nil, fmt.Errorf("open database: unsupported URL %q (want sqlite:PATH or postgres://...)", Redact(cfg.URL))
	}
}

func openSQLite(ctx context.Context, cfg Config) (*DB, error) {
	path := strings.TrimPrefix(cfg.URL, "sqlite:")
	path = strings.TrimPrefix(path, "//")
	if path == "" || strings.Contains(path, ":memory:") {
		return nil, errors.New("open sqlite: a file path is required (an in-memory database cannot be shared by the writer and the readers)")
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	busy := cfg.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	readers := cfg.MaxConns
	if readers <= 0 {
		readers = 4
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	// secure_delete overwrites deleted content (an erased PIN, a revoked
	// key) with zeros instead of leaving it in free pages.
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_pragma=secure_delete(1)", busy.Milliseconds())

	// The writer keeps savepoint journals in memory (grouped transactions use
	// a savepoint per caller) and a large page cache, so a big transaction
	// writes its pages once, at commit.
	write, err := sql.Open("sqlite", base+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=temp_store(2)&_pragma=cache_size(-65536)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// SQLite gives its -wal and -shm files the database file's mode; files
	// left by an earlier version of provhub are narrowed here.
	for _, side := range []string{path + "-wal", path + "-shm"} {
		if err := os.Chmod(side, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			write.Close()
			return nil, fmt.Errorf("open sqlite: restrict %s: %w", side, err)
		}
	}
	read, err := sql.Open("sqlite", base+"?"+common+fmt.Sprintf("&_pragma=query_only(1)&_pragma=cache_size(%d)", readerCachePages(readers)))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	db := &DB{dialect: SQLite, write: write, read: read, display: "sqlite:" + path, stmts: map[string]*sql.Stmt{}}
	if err := db.Prepare(ctx, savepointSQL, rollbackToSavepointSQL, releaseSavepointSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// readerCachePages is the page cache of each SQLite reader connection, in
// pages: a few dozen, shared out so that all readers together keep at most
// 128 pages (512 KiB).
//
// In WAL mode a reader drops its whole page cache at its first read after
// any commit of the writer, so under writes a reader's cache holds only the
// pages read since the last commit, and a larger one helps only reads that
// run while nothing is written. What it costs is measured: after a stretch
// of reads without writes (a console search, a report) each reader held up
// to 2,000 KiB of pages, and its first read after writes resumed freed them
// one by one; the allocator of the SQLite build returns freed memory beyond
// a few MiB to the kernel with one madvise call per page, and on this
// project's two-core test machine that stalled every API call for 100 to
// 150 ms (110 of 250 ms of CPU samples in madvise under pager_reset) and set
// the p99 of CRM calls at half load (bench/README.md).
func readerCachePages(readers int) int {
	return max(8, 128/max(1, readers))
}

// ownerOnly creates the database file if missing, and makes it readable and
// writable by its owner alone, whatever the umask: it holds PIN hashes,
// token hashes and sealed keys.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("open sqlite: restrict %s: %w", path, err)
	}
	return nil
}

// Checkpoint copies SQLite's write-ahead log into the database file and
// truncates the log, so that the old page images it holds (a PIN before its
// erasure) do not stay on disk. It does nothing on PostgreSQL.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.dialect != SQLite {
		return nil
	}
	if _, err := db.write.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("checkpoint sqlite: %w", err)
	}
	return nil
}

func openPostgres(ctx context.Context, cfg Config) (*DB, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse postgres URL: %w", err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = int32(cfg.MaxConns)
	} else {
		pcfg.MaxConns = 20
	}
	// Durability is the point of accepting a request: never let a session
	// setting weaken it.
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", Redact(cfg.URL), err)
	}
	sdb := stdlib.OpenDBFromPool(pool)
	sdb.SetMaxOpenConns(int(pcfg.MaxConns))
	return &DB{dialect: Postgres, write: sdb, read: sdb, pool: pool, display: Redact(cfg.URL)}, nil
}

// Redact hides the password of a database URL so it can be logged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Dialect tells which backend this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// String names the database without secrets, for logs.
func (db *DB) String() string { return db.display }

// Writer is the handle for statements that change data outside an explicit
// transaction. On SQLite it is the single writer connection.
func (db *DB) Writer() *sql.DB { return db.write }

// Reader is the handle for read-only queries. On SQLite it is a pool of
// query-only connections that never wait for the writer.
func (db *DB) Reader() *sql.DB { return db.read }

// Pool is the pgx pool behind a PostgreSQL DB (nil for SQLite); it is used
// for LISTEN, which database/sql cannot express.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Path is the SQLite database file ("" on PostgreSQL).
func (db *DB) Path() string {
	if db.dialect != SQLite {
		return ""
	}
	return strings.TrimPrefix(db.display, "sqlite:")
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.dialect, err)
	}
	return nil
}

// Close releases every connection.
func (db *DB) Close() error {
	db.closeMu.Lock()
	closers := db.closers
	db.closers = nil
	db.closeMu.Unlock()
	for _, f := range closers {
		f()
	}
	db.stopGroup()
	var errs []error
	db.readStmts.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	if db.read != db.write {
		errs = append(errs, db.read.Close())
	}
	db.stmtMu.Lock()
	for _, st := range db.stmts {
		errs = append(errs, st.Close())
	}
	db.stmts = nil
	db.stmtMu.Unlock()
	errs = append(errs, db.write.Close())
	if db.pool != nil {
		db.pool.Close()
	}
	return errors.Join(errs...)
}

// Tx is a write transaction. Functions registered with AfterCommit run once
// it has committed (for wake-ups that must not fire before the data is
// visible).
type Tx struct {
	*sql.Tx
	db    *DB
	after []func()
	done  bool
	// nested: a savepoint's view of a shared transaction (InGroupTx),
	// which its function may not end.
	nested bool
}

// Begin starts a write transaction.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	return &Tx{Tx: tx, db: db}, nil
}

// Dialect tells which backend the transaction runs on.
func (tx *Tx) Dialect() Dialect { return tx.db.dialect }

// AfterCommit registers f to run after a successful commit.
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// Commit commits and then runs the AfterCommit functions.
func (tx *Tx) Commit() error {
	if tx.nested {
		return errors.New("commit: a grouped transaction commits by itself")
	}
	if tx.done {
		return sql.ErrTxDone
	}
	tx.done = true
	if err := tx.Tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, f := range tx.after {
		f()
	}
	return nil
}

// Rollback abandons the transaction; it is a no-op after Commit.
func (tx *Tx) Rollback() error {
	if tx.nested {
		return errors.New("rollback: return an error to undo a grouped transaction's writes")
	}
	if tx.done {
		return nil
	}
	tx.done = true
	return tx.Tx.Rollback()
}

// Prepare parses queries once on the SQLite writer connection so that
// ExecCached and QueryCached reuse them. Call it outside any transaction (the
// writer has one connection). On PostgreSQL it does nothing: pgx keeps its
// own per-connection statement cache.
//
// The lock on the statements is not held while a statement is prepared:
// preparing waits for the writer's one connection, and a transaction that
// holds that connection may itself look up a cached statement (that wait
// once stalled a start-up for the whole 10-second timeout).
func (db *DB) Prepare(ctx context.Context, queries ...string) error {
	if db.dialect != SQLite {
		return nil
	}
	for _, q := range queries {
		db.stmtMu.Lock()
		closed := db.stmts == nil
		_, done := db.stmts[q]
		db.stmtMu.Unlock()
		switch {
		case closed:
			return errors.New("prepare statements: database is closed")
		case done:
			continue
		}
		st, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare statement: %w", err)
		}
		db.stmtMu.Lock()
		if _, dup := db.stmts[q]; dup || db.stmts == nil {
			st.Close() // prepared meanwhile, or the database closed
		} else {
			db.stmts[q] = st
		}
		db.stmtMu.Unlock()
	}
	return nil
}

// PrepareHot is Prepare for a domain's statements of every request, called
// as the domain is made: it gives the writer at most ten seconds, and a
// failure (a schema not migrated yet) is returned for the caller to log, as
// it only costs speed: the Cached calls then parse each time.
func (db *DB) PrepareHot(queries ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return db.Prepare(ctx, queries...)
}

// stmt returns the prepared writer statement for query, or nil when it was
// not prepared.
func (db *DB) stmt(query string) *sql.Stmt {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	return db.stmts[query]
}

// ExecCached runs a statement that the caller runs often with a fixed text:
// on SQLite it is parsed once and kept; PostgreSQL's driver caches by itself.
func (tx *Tx) ExecCached(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st := tx.db.stmt(query)
	if st == nil {
		return tx.ExecContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

// ExecCached runs a prepared statement outside any transaction, as a
// write of its own (Tx.ExecCached inside one).
func (db *DB) ExecCached(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := db.stmt(query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return db.write.ExecContext(ctx, query, args...)
}

// QueryCached is ExecCached for statements that return rows.
func (tx *Tx) QueryCached(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st := tx.db.stmt(query)
	if st == nil {
		return tx.QueryContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// QueryRowCached is ExecCached for statements that return one row.
func (tx *Tx) QueryRowCached(ctx context.Context, query string, args ...any) *sql.Row {
	st := tx.db.stmt(query)
	if st == nil {
		return tx.QueryRowContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

// readStmt returns a statement prepared on the SQLite reader pool (the pool
// prepares it on each connection as needed), or nil on PostgreSQL, whose
// driver caches statements itself, or when preparing fails.
func (db *DB) readStmt(ctx context.Context, query string) *sql.Stmt {
	if db.dialect != SQLite {
		return nil
	}
	if st, ok := db.readStmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil // the plain call reports the error
	}
	if prev, loaded := db.readStmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// ReadRow runs a read-only query that returns one row on the reader pool,
// parsing each distinct query text once on SQLite. Use it for the fixed
// query texts of hot paths.
func (db *DB) ReadRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := db.readStmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return db.read.QueryRowContext(ctx, query, args...)
}

// ReadQuery is ReadRow for queries that return many rows.
func (db *DB) ReadQuery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := db.readStmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.read.QueryContext(ctx, query, args...)
}

// InTx runs fn in a write transaction, committing when fn returns nil and
// rolling back otherwise.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // rollback after commit is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
