// Package wallet speaks the wallet-server API that provhub calls as the
// transit service hub (api/wallet.yaml): the wire types of sendScript,
// updateCard and getTaskStatus, and a client that sets the x-pod header and
// request headers and turns status codes into typed errors, retryable or
// final. It imports nothing else of provhub but the APDU codec.
package wallet
