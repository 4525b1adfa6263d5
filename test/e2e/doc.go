// Package e2e holds end-to-end tests: the hub and the simulators run in the
// test process and are driven over HTTP through the public APIs, as a
// client would; every request and response is checked against api/*.yaml.
//
// Each test starts a hub and simulators of its own on a database of its
// own, so the tests run in parallel (t.Parallel); the browser tests do not,
// so that Chromium renders on a machine no other hub keeps busy. Under
// -short each runs on SQLite alone.
package e2e
