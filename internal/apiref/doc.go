// Package apiref serves a rendered reference of provhub's API documents at
// /reference/: one page per document in api/, drawn in the browser by Redoc
// from the same YAML that /openapi/ serves as text.
//
// Redoc's standalone bundle (MIT, see static/REDOC-LICENSE) is embedded in
// the binary, pinned by version and SHA-256 in static/SHA256SUMS, so a hub
// loads nothing from elsewhere at run time; update.sh fetches a new version
// and rewrites the sums. It changes one thing in the bundle: the address of
// the Redocly logo, which the bundle would fetch from the vendor's CDN,
// becomes an empty inline image. Writing a renderer of our own would repeat a
// well-kept one for no gain.
package apiref
