// Package issuer is the issuer domain of the hub: issuers' end users
// (consumers), their accounts and cards, the digital cards of those cards
// (the transit domain's wallet cards, linked by issuer and card id), and
// the operations recorded for consumers.
//
// An action that reaches a wallet (suspending, resuming or deleting a card
// or a digital card, deleting a consumer) is recorded as a PENDING
// operation together with a job in one transaction. The job queues the
// wallet tasks through the transit domain, waits for them by snoozing, and
// ends the operation SUCCESSFUL or FAILED; a consumer's deletion converges
// on every digital card deleted before it removes the consumer's data and
// burns the consumerId. Operations are kept for a retention period and then
// removed by a periodic job. HTTP lives in package issuerapi.
package issuer
