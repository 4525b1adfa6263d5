// Package cas speaks provhub's CAS protocol (api/cas.yaml): the wire types
// of its commands and replies, and an HTTP client. The real Conax interface
// is proprietary; this small JSON protocol stands in for it, and a real
// adapter can replace the client behind the pay-TV domain's port. The
// package imports nothing else of provhub.
package cas
