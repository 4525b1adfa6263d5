package transit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The SQL of the transit_cards table, a named function a use (now is Unix
// microseconds where a function takes a transaction, as the callers keep
// it). The statements of every request are in hotStatements.

const cardColumns = `card_id, issuer_id, card_account_id, wallet_card_id, se_id, device_id, instance_aid, state, metadata, created_at, updated_at`

const (
	selectCardSQL         = `SELECT ` + cardColumns + ` FROM transit_cards WHERE card_id = $1`
	selectCardByWalletSQL = `SELECT ` + cardColumns + ` FROM transit_cards WHERE wallet_card_id = $1`
	setCardMetadataSQL    = `UPDATE transit_cards SET metadata = $2, updated_at = $3 WHERE card_id = $1`
	setCardStateSQL       = `UPDATE transit_cards SET state = $2, updated_at = $3 WHERE card_id = $1`
)

// cardTx reads a card inside tx.
func cardTx(ctx context.Context, tx *store.Tx, cardID string) (*Card, error) {
	return scanCardRow(tx.QueryRowCached(ctx, selectCardSQL, cardID))
}

// readCard reads a card outside any transaction.
func readCard(ctx context.Context, db *store.DB, cardID string) (*Card, error) {
	return scanCardRow(db.ReadRow(ctx, selectCardSQL, cardID))
}

// readCardByWalletID reads the card of a walletCardId.
func readCardByWalletID(ctx context.Context, db *store.DB, walletCardID string) (*Card, error) {
	return scanCardRow(db.ReadRow(ctx, selectCardByWalletSQL, walletCardID))
}

// insertCard stores a card provisioned for the first time, PENDING_PERSO.
func insertCard(ctx context.Context, db *store.DB, c *Card, now time.Time) error {
	_, err := db.Writer().ExecContext(ctx, `INSERT INTO transit_cards (card_id, issuer_id, card_account_id, wallet_card_id,
		se_id, device_id, instance_aid, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING_PERSO', $8, $8)`,
		c.CardID, c.IssuerID, c.CardAccountID, c.WalletCardID, c.SEID, nullString(c.DeviceID), c.InstanceAID, now.UnixMicro())
	if err != nil {
		return fmt.Errorf("store card %s: %w", c.CardID, err)
	}
	return nil
}

// reprovisionCard gives a DELETED or ERASED card a new digital card
// (PENDING_PERSO again); it reports false when the card is in another
// state or its previous card still has tasks queued or running.
func reprovisionCard(ctx context.Context, db *store.DB, c *Card, now time.Time) (bool, error) {
	res, err := db.Writer().ExecContext(ctx, `UPDATE transit_cards SET card_account_id = $2, wallet_card_id = $3, se_id = $4,
		device_id = $5, instance_aid = $6, state = 'PENDING_PERSO', metadata = NULL, created_at = $7, updated_at = $7
		WHERE card_id = $1 AND state IN ('DELETED', 'ERASED') AND NOT EXISTS (SELECT 1 FROM transit_tasks
			WHERE card_id = $1 AND status IN ('QUEUED', 'PROCESSING'))`,
		c.CardID, c.CardAccountID, c.WalletCardID, c.SEID, nullString(c.DeviceID), c.InstanceAID, now.UnixMicro())
	if err != nil {
		return false, fmt.Errorf("provision card %s again: %w", c.CardID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func setCardMetadataTx(ctx context.Context, tx *store.Tx, cardID string, metadata []byte, now int64) error {
	if _, err := tx.ExecCached(ctx, setCardMetadataSQL, cardID, string(metadata), now); err != nil {
		return fmt.Errorf("card %s metadata: %w", cardID, err)
	}
	return nil
}

func setCardStateTx(ctx context.Context, tx *store.Tx, cardID string, state CardState, now int64) error {
	if _, err := tx.ExecCached(ctx, setCardStateSQL, cardID, string(state), now); err != nil {
		return fmt.Errorf("card %s state: %w", cardID, err)
	}
	return nil
}

// eraseCardTx removes a card's personal data: its account, wallet card,
// metadata and device, its tasks' payloads and messages, and the wallets'
// on-file ids of its account.
func eraseCardTx(ctx context.Context, tx *store.Tx, cardID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE transit_cards SET state = 'ERASED', card_account_id = NULL, wallet_card_id = NULL,
			metadata = NULL, device_id = NULL, updated_at = $2 WHERE card_id = $1`, cardID, now); err != nil {
		return fmt.Errorf("erase card %s: %w", cardID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE transit_tasks SET payload = NULL, message = NULL WHERE card_id = $1`, cardID); err != nil {
		return fmt.Errorf("erase card %s tasks: %w", cardID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM wallet_card_accounts WHERE card_account_id = $1 AND issuer_id IN
			(SELECT issuer_id FROM transit_cards WHERE card_id = $1)`, cardID); err != nil {
		return fmt.Errorf("erase card %s wallet accounts: %w", cardID, err)
	}
	return nil
}

// cardIDsOfAccountTx lists the cards (not erased) of an issuer's card
// account.
func cardIDsOfAccountTx(ctx context.Context, tx *store.Tx, issuerID, cardAccountID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT card_id FROM transit_cards WHERE issuer_id = $1 AND card_account_id = $2 AND state <> 'ERASED' ORDER BY card_id`,
		issuerID, cardAccountID)
	if err != nil {
		return nil, fmt.Errorf("cards of account %s: %w", cardAccountID, err)
	}
	return store.Strings(rows)
}

// removeCardTx deletes a card and its tasks; a card with tasks queued or
// running is kept and their number returned.
func removeCardTx(ctx context.Context, tx *store.Tx, cardID string) (pending int, err error) {
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM transit_tasks WHERE card_id = $1 AND status IN ('QUEUED', 'PROCESSING')`, cardID).Scan(&pending); err != nil {
		return 0, fmt.Errorf("pending tasks of %s: %w", cardID, err)
	}
	if pending > 0 {
		return pending, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM transit_tasks WHERE card_id = $1`, cardID); err != nil {
		return 0, fmt.Errorf("remove tasks of %s: %w", cardID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM transit_cards WHERE card_id = $1`, cardID); err != nil {
		return 0, fmt.Errorf("remove card %s: %w", cardID, err)
	}
	return 0, nil
}

// cardsOfSecureElements reads the cards (not erased) of a page of secure
// elements, by secure-element id then card id.
func cardsOfSecureElements(ctx context.Context, db *store.DB, q store.ListQuery, limit int) ([]Card, error) {
	rows, err := db.ReadQuery(ctx, `SELECT `+cardColumns+` FROM transit_cards WHERE state <> 'ERASED' AND se_id IN (
			SELECT DISTINCT se_id FROM transit_cards WHERE state <> 'ERASED' AND se_id > $1
			AND ($2 = '' OR se_id = $2 OR device_id = $2 OR card_id = $2 OR wallet_card_id = $2)
			ORDER BY se_id LIMIT $3)
		ORDER BY se_id, card_id`, q.Before, q.Search, limit)
	if err != nil {
		return nil, fmt.Errorf("secure elements: %w", err)
	}
	return store.Collect(rows, func(r store.Scanner) (Card, error) {
		c, err := scanCardRow(r)
		if err != nil {
			return Card{}, err
		}
		return *c, nil
	})
}

func scanCardRow(row store.Scanner) (*Card, error) {
	var (
		c                       Card
		account, wallet, device sql.NullString
		meta                    sql.NullString
		created, updated        int64
	)
	err := row.Scan(&c.CardID, &c.IssuerID, &account, &wallet, &c.SEID, &device, &c.InstanceAID, &c.State, &meta, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(KindUnknownCard, "unknown card")
	}
	if err != nil {
		return nil, fmt.Errorf("read card: %w", err)
	}
	c.CardAccountID, c.WalletCardID, c.DeviceID = account.String, wallet.String, device.String
	if meta.Valid {
		c.Metadata = json.RawMessage(meta.String)
	}
	c.CreatedAt, c.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return &c, nil
}
