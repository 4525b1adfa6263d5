// Package transit is the transit domain of the hub: digital (wallet) cards
// on the secure elements of devices, their life cycle (PENDING_PERSO,
// ACTIVE, SUSPENDED, DELETED, ERASED) and metadata, and the wallet-server
// tasks that change them. A task is an engine job whose subject is the
// secure element, so one secure element runs one task at a time in the
// order asked; its taskId is derived from the job and is the same on every
// retry. The job calls sendScript or updateCard, then polls getTaskStatus by
// snoozing (no worker waits), and moves the card's state in the transaction
// that completes it. Device operations (top-up, park, reader mode) relay a
// TES's command loop to a device, step by recorded step, after a REDIRECT
// task sends the device to the hub. HTTP lives in package transitapi.
package transit
