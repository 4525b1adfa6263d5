// Package auth holds the secrets side of logging in: slow password hashes
// (bcrypt from golang.org/x/crypto), random session tokens that are stored
// only as hashes, and a limiter of failed logins. It keeps no state of its
// own beyond the limiter's in-memory window and knows nothing of any API.
package auth
