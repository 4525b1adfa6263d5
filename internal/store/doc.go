// Package store opens provhub's database, SQLite (embedded, one instance) or
// PostgreSQL (shared by many instances), applies the embedded migrations and
// runs transactions.
//
// Both backends are reached through database/sql so that every repository
// and the job engine are written once against one contract; where their SQL
// differs the caller branches on Dialect. Queries use $N placeholders, which
// both drivers bind by position.
//
// SQLite runs in WAL mode with synchronous=FULL: a committed transaction
// survives power loss. Writes go through a single connection (SQLite allows
// one writer at a time, so a pool would only add lock contention); reads use
// a separate pool of query-only connections.
package store
