package issuer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The SQL of the issuer_consumers and issuer_accounts tables, a named
// function a use (now is Unix microseconds, as the callers keep it).

const selectConsumerSQL = `SELECT state, created_at FROM issuer_consumers WHERE issuer_id = $1 AND consumer_id = $2`

// scanConsumer reads a consumer's row; nil when there is none.
func scanConsumer(row *sql.Row, issuerID, consumerID string) (*Consumer, error) {
	c := Consumer{IssuerID: issuerID, ConsumerID: consumerID}
	var created int64
	err := row.Scan(&c.State, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read consumer %s: %w", consumerID, err)
	}
	c.CreatedAt = time.UnixMicro(created).UTC()
	return &c, nil
}

// consumerTx reads a consumer in tx; nil when unknown.
func consumerTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string) (*Consumer, error) {
	return scanConsumer(tx.QueryRowContext(ctx, selectConsumerSQL, issuerID, consumerID), issuerID, consumerID)
}

// readConsumer reads a consumer outside any transaction; nil when unknown.
func readConsumer(ctx context.Context, db *store.DB, issuerID, consumerID string) (*Consumer, error) {
	return scanConsumer(db.ReadRow(ctx, selectConsumerSQL, issuerID, consumerID), issuerID, consumerID)
}

// insertConsumerTx stores a new consumer, ACTIVE.
func insertConsumerTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_consumers (issuer_id, consumer_id, state, created_at, updated_at) VALUES ($1, $2, 'ACTIVE', $3, $3)`,
		issuerID, consumerID, now); err != nil {
		return fmt.Errorf("register consumer %s: %w", consumerID, err)
	}
	return nil
}

// setConsumerStateTx moves a consumer to state (DELETING when its deletion
// is accepted, DELETED when it is done: the row stays and burns the id).
func setConsumerStateTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string, state ConsumerState, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_consumers SET state = $3, updated_at = $4 WHERE issuer_id = $1 AND consumer_id = $2`,
		issuerID, consumerID, string(state), now); err != nil {
		return fmt.Errorf("consumer %s %s: %w", consumerID, state, err)
	}
	return nil
}

// releaseConsumerTx makes a consumer whose deletion failed ACTIVE again; a
// consumer in any other state is left as it is.
func releaseConsumerTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_consumers SET state = 'ACTIVE', updated_at = $3 WHERE issuer_id = $1 AND consumer_id = $2 AND state = 'DELETING'`,
		issuerID, consumerID, now); err != nil {
		return fmt.Errorf("release consumer %s: %w", consumerID, err)
	}
	return nil
}

// removeConsumerDataTx removes what a deleted consumer leaves but its
// operations and its row: what wallets hold for its cards (their on-file
// ids and the state of their OTPs), its cards, its accounts and the task
// links of its operations.
func removeConsumerDataTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string) error {
	for _, q := range []string{
		`DELETE FROM wallet_card_accounts WHERE issuer_id = $1 AND card_account_id IN (SELECT card_id FROM issuer_cards WHERE issuer_id = $1 AND consumer_id = $2)`,
		`DELETE FROM otp_state WHERE issuer_id = $1 AND card_account_id IN (SELECT card_id FROM issuer_cards WHERE issuer_id = $1 AND consumer_id = $2)`,
		`DELETE FROM issuer_cards WHERE issuer_id = $1 AND consumer_id = $2`,
		`DELETE FROM issuer_accounts WHERE issuer_id = $1 AND consumer_id = $2`,
		`DELETE FROM issuer_operation_tasks WHERE operation_id IN (SELECT operation_id FROM issuer_operations WHERE issuer_id = $1 AND consumer_id = $2)`,
	} {
		if _, err := tx.ExecContext(ctx, q, issuerID, consumerID); err != nil {
			return fmt.Errorf("remove the data of consumer %s: %w", consumerID, err)
		}
	}
	return nil
}

// accountOwnerTx returns the consumer of an account; found is false when
// the account is unknown.
func accountOwnerTx(ctx context.Context, tx *store.Tx, issuerID, accountID string) (owner string, found bool, err error) {
	err = tx.QueryRowContext(ctx, `SELECT consumer_id FROM issuer_accounts WHERE issuer_id = $1 AND account_id = $2`, issuerID, accountID).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read account %s: %w", accountID, err)
	}
	return owner, true, nil
}

// insertAccountTx stores a consumer's new account.
func insertAccountTx(ctx context.Context, tx *store.Tx, issuerID, accountID, consumerID, productID, state string, now int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_accounts (issuer_id, account_id, consumer_id, account_product_id, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`, issuerID, accountID, consumerID, nullString(productID), state, now); err != nil {
		return fmt.Errorf("register account %s: %w", accountID, err)
	}
	return nil
}

// updateAccountTx sets an account's product and state; "" keeps either.
func updateAccountTx(ctx context.Context, tx *store.Tx, issuerID, accountID, productID, state string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_accounts SET account_product_id = COALESCE($3, account_product_id), state = COALESCE($4, state), updated_at = $5
		WHERE issuer_id = $1 AND account_id = $2`, issuerID, accountID, nullString(productID), nullString(state), now); err != nil {
		return fmt.Errorf("update account %s: %w", accountID, err)
	}
	return nil
}

// removeAccountTx removes an account; its cards stay, without it.
func removeAccountTx(ctx context.Context, tx *store.Tx, issuerID, accountID string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET account_id = NULL WHERE issuer_id = $1 AND account_id = $2`, issuerID, accountID); err != nil {
		return fmt.Errorf("unlink the cards of account %s: %w", accountID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM issuer_accounts WHERE issuer_id = $1 AND account_id = $2`, issuerID, accountID); err != nil {
		return fmt.Errorf("remove account %s: %w", accountID, err)
	}
	return nil
}
