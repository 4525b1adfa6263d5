// Package partner keeps the registry of the systems that call provhub's
// partner-facing APIs (transit entity servers and wallet servers), and
// authenticates their calls: by a client certificate that the TLS layer
// verified against the hub's client CA and whose fingerprint is
// registered, or by a signature over the request made with the partner's
// secret (for deployments where TLS ends at a proxy). A partner acts only
// for the issuers it is registered for.
//
// The signature is package reqsign's. A timestamp outside the window, or a
// nonce already seen in it (by any instance: nonces are kept in the
// database), is refused. The standard library has every primitive; no
// library implements this exact scheme.
package partner
