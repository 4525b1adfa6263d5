// Package api embeds provhub's OpenAPI documents so the server can serve
// them at /openapi/ and tests can validate traffic against them.
package api

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed *.yaml
var Files embed.FS

// Document is one embedded API document.
type Document struct {
	File, Title, Version string
}

// Documents lists the embedded documents with their titles, by file name.
func Documents() []Document {
	names, _ := fs.Glob(Files, "*.yaml")
	out := make([]Document, 0, len(names))
	for _, n := range names {
		raw, _ := Files.ReadFile(n)
		d := Document{File: n}
		// The info block's first title and version lines; no YAML parser
		// is needed for two scalars.
		for _, line := range strings.Split(string(raw), "\n") {
			t := strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(t, "title:"); ok && d.Title == "" {
				d.Title = strings.Trim(strings.TrimSpace(v), `"`)
			}
			if v, ok := strings.CutPrefix(t, "version:"); ok && d.Version == "" && strings.HasPrefix(line, "  ") {
				d.Version = strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
		out = append(out, d)
	}
	return out
}

var index = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>provhub API documents</title><link rel="icon" href="data:,"></head>
<body><h1>provhub API documents</h1><ul>
{{range .}}<li><a href="/openapi/{{.File}}">{{.File}}</a>: {{.Title}} ({{.Version}})</li>
{{end}}</ul></body></html>
`))

// Handler serves the documents under /openapi/: an index of them, and each
// as text (a browser shows it rather than download it).
func Handler() http.Handler {
	files := http.StripPrefix("/openapi/", http.FileServerFS(Files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/openapi/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = index.Execute(w, Documents())
			return
		}
		if strings.HasSuffix(r.URL.Path, ".yaml") {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		files.ServeHTTP(w, r)
	})
}
