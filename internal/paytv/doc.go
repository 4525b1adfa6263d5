// Package paytv is the pay-TV domain: the CRM reference data provhub keeps a
// copy of (organisations, units, users, subscriptions, services, smartcards
// and STBs), CRM sessions, and provisioning requests with their life cycle
// PENDING -> COMPLETED | REJECTED. A request is stored with its job in one
// transaction; the job sends it to the conditional-access system through
// the CAS port (one request at a time per smartcard, EXPRESS before
// REGULAR, retried while the CAS is unavailable). HTTP lives elsewhere
// (package crmapi); this package holds the rules and the SQL.
package paytv
