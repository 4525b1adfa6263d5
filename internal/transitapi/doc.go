// Package transitapi serves the calls that make the hub act in the transit
// flows (api/transit.yaml): the wallet server's provisionCard, and the
// transit entity server's submitCardPersoData, updateCardState and
// updateCardMetadata. It validates the wire form (111 missing, 112 bad
// format), calls the transit domain and answers with a responseHeader;
// it holds no business rule and no SQL.
package transitapi
