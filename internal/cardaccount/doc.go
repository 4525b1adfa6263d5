// Package cardaccount decides what the wallet server's checkCardAccount and
// provisionCard rest on: which card account a cardAccountDescriptor names,
// whether it may be provisioned, and the proofs that come with it.
//
//   - opaqueCardAccountData (cardSource USER-INPUT, CLIENT-SDK, READER-MODE)
//     is what the issuer's back end hands the wallet app: the hub makes it on
//     the issuer's request (issuer API), sealed with the hub's secret key
//     (AES-256-GCM, package sealed) and bound to the issuer, naming the card
//     account and an expiry. Only the hub reads it; a wallet or a device
//     cannot forge one, move one to another issuer or see the account id.
//   - walletCardAccountId (cardSource ON-FILE) is an id the hub hands a
//     wallet partner the first time it provisions a card account, one per
//     partner and account: the wallet keeps it on file and provisions the
//     account again with it, and no other partner can use it.
//   - The issuer's OTP, optional in provisionCard, is checked when present:
//     a six-digit HOTP (RFC 4226, with HMAC-SHA256) over five-minute time
//     steps, keyed per card account by HMAC-SHA256 of the issuer's OTP key
//     (see OTP); each OTP is accepted once, and five wrong ones in a row
//     lock the account for 15 minutes; so do five wrong card digits, which
//     therefore cannot be found by trying them all.
//
// RFC 4226's truncation is a dozen lines of the standard library's HMAC;
// the per-account key derivation is ours, so no OTP library is used.
package cardaccount
