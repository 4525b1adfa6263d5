// Package api embeds provhub's OpenAPI documents so the server can serve
// them at /openapi/ and tests can validate traffic against them.
package api

import (
	"embed"
	"net/http"
)

//go:embed *.yaml
var Files embed.FS

// Handler serves the documents under /openapi/.
func Handler() http.Handler {
	return http.StripPrefix("/openapi/", http.FileServerFS(Files))
}
