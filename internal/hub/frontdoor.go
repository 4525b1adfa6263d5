package hub

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/provhub/provhub/api"
)

var frontDoor = template.Must(template.New("front").Funcs(template.FuncMap{
	"trim": func(file string) string { return strings.TrimSuffix(file, ".yaml") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>provhub</title><link rel="icon" href="data:,"></head>
<body>
<h1>provhub{{with .Version}} {{.}}{{end}}</h1>
<p>A provisioning hub: every provisioning request to a device, accepted, stored, carried out, retried and reported.</p>
<h2>For operators</h2>
<ul>
<li><a href="/console/">The console</a>: dashboard, jobs, CRM requests, issuer operations, transit, devices</li>
<li><a href="/healthz">/healthz</a> (the process runs), <a href="/readyz">/readyz</a> (the database answers and its schema is current){{if .Metrics}}, <a href="/metrics">/metrics</a> (Prometheus){{end}}</li>
</ul>
<h2>APIs</h2>
<ul>
{{range .Documents}}<li><a href="/reference/{{trim .File}}">{{.Title}}</a> ({{.Version}}): the rendered reference, or <a href="/openapi/{{.File}}">{{.File}}</a> as text</li>
{{end}}</ul>
<p><a href="/reference/">Every API reference</a> · <a href="/openapi/">every document</a></p>
</body></html>
`))

type frontDoorPage struct {
	Version   string
	Metrics   bool
	Documents []api.Document
}

// frontDoorHandler answers GET / with what the hub serves; any other path
// that no route takes is a 404.
func frontDoorHandler(version string, metrics bool) http.HandlerFunc {
	page := frontDoorPage{Version: version, Metrics: metrics, Documents: api.Documents()}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_ = frontDoor.Execute(w, page)
	}
}
