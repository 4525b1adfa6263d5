// Package oauth is the issuer API's authorisation server: it exchanges an
// issuer-signed ES256 assertion (the RFC 7523 jwt-bearer grant) for a
// short-lived access token, a JWT signed with provhub's own key, and checks
// those access tokens on every issuer call.
//
// Keys live in the database so that every instance of a scaled-out hub
// agrees: issuers' public keys by (client id, kid), and provhub's signing
// keys, which rotate (a retired key signs nothing new and keeps verifying
// until the last token it signed has expired). JWT encoding and signature
// checks are golang-jwt's; this package decides which keys and claims are
// acceptable.
package oauth
