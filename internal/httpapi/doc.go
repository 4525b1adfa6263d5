// Package httpapi is the HTTP plumbing every provhub API shares: correlation
// ids, access logs, Prometheus metrics, panic recovery, body limits, server
// timeouts, health endpoints, and the writers of the three error styles
// (wallet/TES responseHeader status codes, issuer HTTP errors, CRM status
// envelopes) so each API answers errors its own documented way.
package httpapi
