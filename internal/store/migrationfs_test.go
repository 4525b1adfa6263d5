package store

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"
)

func TestLayers_OpenTheFirstLayerAndListThemAll(t *testing.T) {
	l := layers{
		fstest.MapFS{"00001_a.sql": {Data: []byte("shared")}},
		fstest.MapFS{"00002_b.sql": {Data: []byte("own")}},
	}
	entries, err := fs.ReadDir(l, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name() != "00001_a.sql" || entries[1].Name() != "00002_b.sql" {
		t.Fatalf("entries %v", entries)
	}
	for name, want := range map[string]string{"00001_a.sql": "shared", "00002_b.sql": "own"} {
		got, err := fs.ReadFile(l, name)
		if err != nil || string(got) != want {
			t.Fatalf("%s: %q %v", name, got, err)
		}
	}
	if _, err := l.Open("00003_c.sql"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open of a missing file: %v", err)
	}
	files, err := fs.Glob(l, "*.sql")
	if err != nil || len(files) != 2 {
		t.Fatalf("glob %v %v", files, err)
	}
}

func TestLayers_RefuseAFileInTwoFolders(t *testing.T) {
	l := layers{
		fstest.MapFS{"00001_a.sql": {Data: []byte("shared")}},
		fstest.MapFS{"00001_a.sql": {Data: []byte("own")}},
	}
	if _, err := fs.ReadDir(l, "."); err == nil || !strings.Contains(err.Error(), "two folders") {
		t.Fatalf("err %v, want the file named in two folders", err)
	}
}

// Every dialect carries the versions 1..N, each once, the same N for
// both; a step a dialect writes as the other does belongs in shared, so
// that it is written once.
func TestMigrations_EveryVersionOncePerDialectAndNoCopies(t *testing.T) {
	own := map[Dialect]map[int64][]byte{}
	latest := map[Dialect]int64{}
	for _, d := range []Dialect{SQLite, Postgres} {
		src, err := migrationSource(d)
		if err != nil {
			t.Fatal(err)
		}
		files, err := fs.Glob(src, "*.sql")
		if err != nil || len(files) == 0 {
			t.Fatalf("%v: %v %v", d, files, err)
		}
		for i, f := range files {
			v, err := goose.NumericComponent(f)
			if err != nil || v != int64(i+1) {
				t.Fatalf("%v: file %s is version %d (%v), want %d", d, f, v, err, i+1)
			}
		}
		latest[d] = int64(len(files))
		dir := map[Dialect]string{SQLite: "migrations/sqlite", Postgres: "migrations/postgres"}[d]
		mine, err := fs.Glob(migrationFiles, dir+"/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		own[d] = map[int64][]byte{}
		for _, f := range mine {
			v, _ := goose.NumericComponent(f)
			own[d][v], _ = fs.ReadFile(migrationFiles, f)
		}
	}
	if latest[SQLite] != latest[Postgres] {
		t.Fatalf("SQLite has %d migrations, PostgreSQL %d", latest[SQLite], latest[Postgres])
	}
	for v, sqlite := range own[SQLite] {
		pg, ok := own[Postgres][v]
		if !ok {
			t.Fatalf("version %d is SQLite's own but shared for PostgreSQL", v)
		}
		if bytes.Equal(sqlite, pg) {
			t.Errorf("version %d is the same in both dialects: move it to migrations/shared", v)
		}
	}
	if len(own[SQLite]) != len(own[Postgres]) {
		t.Fatalf("own steps: SQLite %d, PostgreSQL %d", len(own[SQLite]), len(own[Postgres]))
	}
}
