package apiref

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/provhub/provhub/api"
)

// Prefix is where the reference lives.
const Prefix = "/reference/"

//go:embed static
var static embed.FS

// RedocVersion is the version of the embedded bundle (static/SHA256SUMS
// names it too).
const RedocVersion = "2.5.2"

var pages = template.Must(template.New("reference").Parse(`{{define "index"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>provhub API reference</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/reference/static/reference.css"></head>
<body class="index"><h1>provhub API reference</h1><ul>
{{range .}}<li><a href="/reference/{{.Name}}">{{.Title}}</a> ({{.Version}}; <a href="/openapi/{{.File}}">{{.File}}</a>)</li>
{{end}}</ul><p><a href="/">provhub</a></p></body></html>
{{end}}{{define "page"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · provhub API reference</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/reference/static/reference.css">
<script src="/reference/static/redoc.standalone.js" defer></script>
<script src="/reference/static/reference.js" defer></script></head>
<body><nav class="top"><a href="/">provhub</a> · <a href="/reference/">API reference</a> · {{.Title}} · <a href="/openapi/{{.File}}">{{.File}}</a></nav>
<div id="reference" data-spec="/openapi/{{.File}}"></div></body></html>
{{end}}`))

// document is one API document as the reference lists it.
type document struct {
	api.Document
	// Name is the document's file name without ".yaml": its page's path.
	Name string
}

func documents() []document {
	var out []document
	for _, d := range api.Documents() {
		out = append(out, document{Document: d, Name: strings.TrimSuffix(d.File, ".yaml")})
	}
	return out
}

// Handler serves the reference under Prefix: an index of the documents,
// a page per document, and the renderer's files.
func Handler() http.Handler {
	files, _ := fs.Sub(static, "static")
	assets := http.StripPrefix(Prefix+"static/", http.FileServerFS(files))
	docs := documents()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		// Redoc styles its elements at run time (inline style elements)
		// and runs its search in a worker made from a blob; nothing else
		// is allowed, and nothing comes from another origin.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'")
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		if strings.HasPrefix(name, "static/") {
			if name != "static/SHA256SUMS" {
				h.Set("Cache-Control", "public, max-age=86400")
			}
			assets.ServeHTTP(w, r)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		if name == "" {
			_ = pages.ExecuteTemplate(w, "index", docs)
			return
		}
		for _, d := range docs {
			if d.Name == name {
				_ = pages.ExecuteTemplate(w, "page", d)
				return
			}
		}
		http.NotFound(w, r)
	})
}
