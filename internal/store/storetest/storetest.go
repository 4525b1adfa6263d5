// Package storetest gives tests a fresh, migrated database on each backend,
// so a test written once runs against SQLite and PostgreSQL.
//
// PostgreSQL is found through PROVHUB_TEST_POSTGRES (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). Every test gets
// its own schema, dropped at the end, so packages run in parallel. When
// PostgreSQL cannot be reached the test fails: the shared contract is only
// proven when both backends ran.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provhub/provhub/internal/store"
)

// DefaultPostgresURL is used when PROVHUB_TEST_POSTGRES is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresURL returns the server the tests use.
func PostgresURL() string {
	if u := os.Getenv("PROVHUB_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Backends lists the dialects every shared test runs on.
var Backends = []store.Dialect{store.SQLite, store.Postgres}

// Each runs fn once per backend as a subtest, each with a fresh migrated DB.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Backends {
		t.Run(d.String(), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// InTx runs f in a write transaction of db and fails the test when f or
// the commit does.
func InTx(t testing.TB, db *store.DB, f func(tx *store.Tx) error) {
	t.Helper()
	if err := db.InTx(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

// Open returns a fresh migrated database of the given dialect, closed and
// removed when the test ends.
func Open(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	u := NewURL(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, store.Config{URL: u})
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", d, err)
	}
	return db
}

// NewURL makes an empty database of the given dialect (a file in a temporary
// folder, or a new PostgreSQL schema) and returns its URL; it is removed when
// the test ends. Tests that start other processes pass them this URL.
func NewURL(t testing.TB, d store.Dialect) string {
	t.Helper()
	switch d {
	case store.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "provhub.db")
	case store.Postgres:
		return newSchema(t)
	default:
		t.Fatalf("unknown dialect %v", d)
		return ""
	}
}

func newSchema(t testing.TB) string {
	t.Helper()
	base := PostgresURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL is required for the shared store tests and is not reachable at %s: %v\n"+
			"start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"+
			"or point PROVHUB_TEST_POSTGRES at a server (trust auth, an existing database)", store.Redact(base), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// GenericPlan returns PostgreSQL's generic plan of query (EXPLAIN's JSON),
// the plan a statement cached by the driver runs with once PostgreSQL stops
// planning it for each call's values. params are SQL literals for $1, $2…
// (e.g. `'{a,b}'::text[]`). A plan that looks right for one call's values can
// be wrong in its generic form; statements on hot paths are checked here.
func GenericPlan(t testing.TB, db *store.DB, query string, params ...string) string {
	t.Helper()
	if db.Dialect() != store.Postgres {
		t.Fatalf("GenericPlan: %s has no generic plans", db.Dialect())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Pool().Acquire(ctx)
	if err != nil {
		t.Fatalf("GenericPlan: %v", err)
	}
	defer conn.Release()
	simple := pgx.QueryExecModeSimpleProtocol
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan", simple); err != nil {
		t.Fatalf("GenericPlan: %v", err)
	}
	defer conn.Exec(context.Background(), "RESET plan_cache_mode; DEALLOCATE ALL", simple) //nolint:errcheck // best effort on a test connection
	if _, err := conn.Exec(ctx, "PREPARE provhub_plan AS "+query, simple); err != nil {
		t.Fatalf("GenericPlan: prepare %q: %v", query, err)
	}
	var plan string
	execute := "EXPLAIN (FORMAT JSON) EXECUTE provhub_plan"
	if len(params) > 0 {
		execute += "(" + strings.Join(params, ", ") + ")"
	}
	if err := conn.QueryRow(ctx, execute, simple).Scan(&plan); err != nil {
		t.Fatalf("GenericPlan: explain %q: %v", query, err)
	}
	return plan
}

// SeqScans lists the tables a plan from GenericPlan reads whole.
func SeqScans(t testing.TB, plan string) []string {
	t.Helper()
	var root []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &root); err != nil {
		t.Fatalf("SeqScans: %v", err)
	}
	var tables []string
	var walk func(n planNode)
	walk = func(n planNode) {
		if n.NodeType == "Seq Scan" {
			tables = append(tables, n.Relation)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	for _, r := range root {
		walk(r.Plan)
	}
	return tables
}

type planNode struct {
	NodeType string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Plans    []planNode `json:"Plans"`
}

// SQLitePlan returns SQLite's query plan of query (EXPLAIN QUERY PLAN's
// details, a line each) with args bound.
func SQLitePlan(t testing.TB, db *store.DB, query string, args ...any) string {
	t.Helper()
	if db.Dialect() != store.SQLite {
		t.Fatalf("SQLitePlan: %s is not SQLite", db.Dialect())
	}
	rows, err := db.Writer().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("SQLitePlan: explain %q: %v", query, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatalf("SQLitePlan: %v", err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("SQLitePlan: %v", err)
	}
	return strings.Join(lines, "\n")
}
