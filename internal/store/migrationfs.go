package store

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// layers is a read-only folder made of several: a name opens in the first
// layer that has it, and a folder lists the entries of every layer. The
// migrations of a dialect are the layers of migrations/shared (steps whose
// SQL both dialects run as written) and of the dialect's own folder; a file
// name in two layers is an error, not a silent choice of one.
type layers []fs.FS

// Open opens name in the first layer that has it.
func (l layers) Open(name string) (fs.File, error) {
	for _, layer := range l {
		f, err := layer.Open(name)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// ReadDir lists folder name across the layers, sorted by name.
func (l layers) ReadDir(name string) ([]fs.DirEntry, error) {
	var out []fs.DirEntry
	found := false
	for _, layer := range l {
		entries, err := fs.ReadDir(layer, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		for _, e := range entries {
			if slices.ContainsFunc(out, func(o fs.DirEntry) bool { return o.Name() == e.Name() }) {
				return nil, fmt.Errorf("migrations: %s is in two folders", e.Name())
			}
			out = append(out, e)
		}
	}
	if !found {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// migrationSource is the folder of dialect d's migrations.
func migrationSource(d Dialect) (fs.FS, error) {
	own := map[Dialect]string{SQLite: "migrations/sqlite", Postgres: "migrations/postgres"}[d]
	if own == "" {
		return nil, fmt.Errorf("migrations: no dialect %v", d)
	}
	var l layers
	for _, dir := range []string{"migrations/shared", own} {
		sub, err := fs.Sub(migrationFiles, dir)
		if err != nil {
			return nil, fmt.Errorf("migrations %s: %w", dir, err)
		}
		l = append(l, sub)
	}
	return l, nil
}
