package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"modernc.org/sqlite"

	"github.com/provhub/provhub/internal/store"
)

// CountCompilations counts, from now on, the SQLite statements the writer
// connection of db compiles, by the actions SQLite asks its authorizer
// about: one call per table, column or command a statement touches, made
// while the statement is compiled and never while it runs, so a prepared
// statement run again adds nothing unless SQLite compiles it anew. count
// says which actions to count; BEGIN and COMMIT (AuthTransaction) are the
// driver's, which it compiles each time. Installing the authorizer expires
// every prepared statement of the connection: each compiles once more at
// its next run.
func CountCompilations(t testing.TB, db *store.DB, count func(sqlite.AuthorizerActionCode) bool) *atomic.Int64 {
	t.Helper()
	if db.Dialect() != store.SQLite {
		t.Fatal("CountCompilations: an SQLite database is needed")
	}
	ctx := context.Background()
	var n atomic.Int64
	conn, err := db.Writer().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(driverConn any) error {
		r, ok := driverConn.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("the SQLite driver takes no authorizer")
		}
		return r.RegisterAuthorizer(func(action sqlite.AuthorizerActionCode, _, _, _, _ string) sqlite.AuthorizerReturnCode {
			if count(action) {
				n.Add(1)
			}
			return sqlite.AuthorizerOK
		})
	})
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return &n
}
