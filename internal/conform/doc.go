// Package conform is provhub's conformance kit: it runs the published
// rules of the wallet-server API (api/wallet.yaml), the TES device gateway
// (api/tes.yaml) and provhub's CAS protocol (api/cas.yaml) against a
// server someone else wrote, and reports, rule by rule, what the contract
// says, the request sent, the answer got and whether it passed. provhub's
// own simulators implement these rules; the kit holds any server to them.
//
// Rules come in three kinds: input rules (a required member missing is
// 111, a broken length, pattern, enum or type is 112, member by member;
// the published headers), answer rules (every answer is well formed) and
// behaviour rules (unknown card 119, unknown task 121, one task per secure
// element, state rules, task ids idempotent, a command loop that ends as
// documented and applies a purchase once when a step is repeated, the
// CAS's request ids). Behaviour rules need state the server must be told
// about, from a Fixture; without it they are skipped, and the report says
// so. Rules that change state do so only on the fixture's card, account or
// smartcard.
//
// The kit speaks plain HTTP and JSON built by hand (it must send what a
// client library would refuse to build); the FeliCa card of the TES loops
// is provhub's card emulator (internal/sim/felicacard), holding the
// fixture's balance.
package conform
