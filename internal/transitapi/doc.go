// Package transitapi serves the calls that make the hub act in the transit
// flows: the wallet server's provisionCard, the transit entity server's
// submitCardPersoData, updateCardState, updateCardMetadata, topupCard,
// parkCard and getOperationStatus (api/transit.yaml), and the device's
// getDeviceCommands and startReaderMode (api/device.yaml). It validates the
// wire form (111 missing, 112 bad format), calls the transit domain and
// answers with a responseHeader; it holds no business rule and no SQL.
package transitapi
