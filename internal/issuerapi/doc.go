// Package issuerapi serves the issuer API over HTTP: the OAuth 2.0 token
// endpoint (jwt-bearer grant) under /authz/v1 and the banking calls under
// /banking/v1 (consumers, accounts, cards, digital cards and consumer
// operations). Every banking call needs a bearer token of the path's
// issuer; every malformed input is a 400 with {"error": ...}. The domain
// lives in package issuer, the tokens in package oauth; api/issuer.yaml is
// the wire contract.
package issuerapi
