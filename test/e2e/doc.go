// Package e2e holds end-to-end tests: the hub and the simulators run in the
// test process and are driven over HTTP through the public APIs, as a
// client would; every request and response is checked against api/*.yaml.
package e2e
