// Package apdu encodes and decodes smart-card messages: ISO/IEC 7816-4
// command and response APDUs (short and extended length), BER-TLV data
// objects, and the GlobalPlatform card-management commands the provisioning
// flows send (SELECT, GET STATUS, SET STATUS, DELETE, INSTALL, STORE DATA).
//
// It is written by hand, as pure functions without I/O: the Go libraries
// found for APDUs are tied to PC/SC readers or cover one of these parts
// only, and the decoders here face untrusted input (scripts and answers
// relayed by servers), so they are kept small, strict and fuzzed.
package apdu
