// Package engine runs durable jobs stored in provhub's database.
//
// It is generic: it knows job kinds, arguments as JSON and handlers, and
// nothing of cards or subscriptions. A job is inserted (inside the caller's
// transaction, so a domain record and its job commit together, or through
// group commit), claimed in batches by workers, run with a lease that a
// heartbeat keeps alive, and finished in batched completions. States and
// guarantees are documented in docs/engine.md.
//
// The engine is written here rather than taken from River because provhub
// needs per-subject serialization (one running job per secure element or
// smartcard, in insertion order, across instances) on both SQLite and
// PostgreSQL, which River's open-source edition does not offer.
package engine
