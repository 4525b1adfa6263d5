package issuer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// The SQL of the issuer_cards table, a named function a use (now is Unix
// microseconds, as the callers keep it).

const cardColumns = `issuer_id, card_id, consumer_id, account_id, card_product_id, state, state_reason, ongoing_operation, held_digital_cards,
	last_digits, terms_id, card_art, created_at, updated_at`

const selectCardSQL = `SELECT ` + cardColumns + ` FROM issuer_cards WHERE issuer_id = $1 AND card_id = $2`

// cardRow is a card as stored: with the digital cards its suspension
// suspended, which its resumption resumes.
type cardRow struct {
	Card
	held string
}

// heldDigitalCards lists the digital cards a card's suspension suspended.
func (c *cardRow) heldDigitalCards() []string {
	if c.held == "" {
		return nil
	}
	return strings.Split(c.held, ",")
}

// scanCard reads a card's row; nil when there is none.
func scanCard(row *sql.Row) (*cardRow, error) {
	var (
		c                            cardRow
		account, reason, ongoing, hd sql.NullString
		digits, terms, art           sql.NullString
		created, updated             int64
	)
	err := row.Scan(&c.IssuerID, &c.CardID, &c.ConsumerID, &account, &c.CardProductID, &c.State, &reason, &ongoing, &hd,
		&digits, &terms, &art, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read card: %w", err)
	}
	c.AccountID, c.StateReason, c.OngoingOperation, c.held = account.String, reason.String, ongoing.String, hd.String
	c.LastDigits, c.TermsID = digits.String, terms.String
	if art.Valid && art.String != "" {
		if err := json.Unmarshal([]byte(art.String), &c.CardArt); err != nil {
			return nil, fmt.Errorf("read card art of %s: %w", c.CardID, err)
		}
	}
	c.CreatedAt, c.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return &c, nil
}

// cardTx reads a card in tx; nil when unknown.
func cardTx(ctx context.Context, tx *store.Tx, issuerID, cardID string) (*cardRow, error) {
	return scanCard(tx.QueryRowContext(ctx, selectCardSQL, issuerID, cardID))
}

// readCard reads a card outside any transaction; nil when unknown.
func readCard(ctx context.Context, db *store.DB, issuerID, cardID string) (*cardRow, error) {
	return scanCard(db.ReadRow(ctx, selectCardSQL, issuerID, cardID))
}

// insertCardTx stores a card registered for the first time.
func insertCardTx(ctx context.Context, tx *store.Tx, issuerID, cardID string, in CardInput, now int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_cards (issuer_id, card_id, consumer_id, account_id, card_product_id, state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, issuerID, cardID, in.ConsumerID, nullString(in.AccountID), in.CardProductID, string(in.State), now); err != nil {
		return fmt.Errorf("register card %s: %w", cardID, err)
	}
	return nil
}

// renewCardTx registers a deleted card's id anew: nothing of the deleted
// card stays.
func renewCardTx(ctx context.Context, tx *store.Tx, issuerID, cardID string, in CardInput, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET consumer_id = $3, account_id = $4, card_product_id = $5, state = $6,
		state_reason = NULL, ongoing_operation = NULL, held_digital_cards = NULL, last_digits = NULL, terms_id = NULL, card_art = NULL,
		created_at = $7, updated_at = $7
		WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID, in.ConsumerID, nullString(in.AccountID), in.CardProductID, string(in.State), now); err != nil {
		return fmt.Errorf("register card %s anew: %w", cardID, err)
	}
	return nil
}

// updateCardRegistrationTx registers a card again: its consumer (given
// once, to a card registered without one), its product, and its account
// when one is named.
func updateCardRegistrationTx(ctx context.Context, tx *store.Tx, issuerID, cardID string, in CardInput, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET consumer_id = $3, account_id = COALESCE($4, account_id), card_product_id = $5, updated_at = $6
		WHERE issuer_id = $1 AND card_id = $2 AND consumer_id IN ('', $3)`, issuerID, cardID, in.ConsumerID, nullString(in.AccountID), in.CardProductID, now); err != nil {
		return fmt.Errorf("register card %s: %w", cardID, err)
	}
	return nil
}

// setCardShownTx writes what a registration says the card shows.
func setCardShownTx(ctx context.Context, tx *store.Tx, issuerID, cardID string, sh shown) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET last_digits = COALESCE($3, last_digits),
		terms_id = CASE WHEN $4 THEN $5 ELSE terms_id END, card_art = CASE WHEN $6 THEN $7 ELSE card_art END
		WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID, nullString(sh.digits),
		sh.setTerms, sh.terms, sh.setArt, sh.art); err != nil {
		return fmt.Errorf("register what card %s shows: %w", cardID, err)
	}
	return nil
}

// assignCardTx gives a card without a consumer to consumerID.
func assignCardTx(ctx context.Context, tx *store.Tx, issuerID, cardID, consumerID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET consumer_id = $3, updated_at = $4 WHERE issuer_id = $1 AND card_id = $2 AND consumer_id = ''`,
		issuerID, cardID, consumerID, now); err != nil {
		return fmt.Errorf("assign card %s: %w", cardID, err)
	}
	return nil
}

// updateCardTx writes a card change.
func updateCardTx(ctx context.Context, tx *store.Tx, issuerID, cardID string, ch cardChange, now int64) error {
	var err error
	if ch.deleting {
		_, err = tx.ExecContext(ctx, `UPDATE issuer_cards SET ongoing_operation = 'DELETE', updated_at = $3 WHERE issuer_id = $1 AND card_id = $2`,
			issuerID, cardID, now)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE issuer_cards SET state = $3, state_reason = $4, updated_at = $5 WHERE issuer_id = $1 AND card_id = $2`,
			issuerID, cardID, string(ch.state), nullString(ch.reason), now)
	}
	if err != nil {
		return fmt.Errorf("update card %s: %w", cardID, err)
	}
	return nil
}

// markAccountCardsDeletingTx marks the cards of an account, but those
// deleted, as being deleted: no other operation starts on them.
func markAccountCardsDeletingTx(ctx context.Context, tx *store.Tx, issuerID, accountID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET ongoing_operation = 'DELETE', updated_at = $3
		WHERE issuer_id = $1 AND account_id = $2 AND state <> 'DELETED'`, issuerID, accountID, now); err != nil {
		return fmt.Errorf("mark the cards of account %s: %w", accountID, err)
	}
	return nil
}

// releaseCardTx ends the deletion mark of a card whose deletion failed.
func releaseCardTx(ctx context.Context, tx *store.Tx, issuerID, cardID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET ongoing_operation = NULL, updated_at = $3 WHERE issuer_id = $1 AND card_id = $2`,
		issuerID, cardID, now); err != nil {
		return fmt.Errorf("release card %s: %w", cardID, err)
	}
	return nil
}

// releaseAccountCardsTx ends the deletion mark of the cards of an account
// whose deletion failed (the cards it deleted stay deleted).
func releaseAccountCardsTx(ctx context.Context, tx *store.Tx, issuerID, accountID string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET ongoing_operation = NULL, updated_at = $3 WHERE issuer_id = $1 AND account_id = $2
		AND state <> 'DELETED'`, issuerID, accountID, now); err != nil {
		return fmt.Errorf("release the cards of account %s: %w", accountID, err)
	}
	return nil
}

// setHeldDigitalCardsTx remembers the digital cards a card's suspension
// suspended; none forgets them.
func setHeldDigitalCardsTx(ctx context.Context, tx *store.Tx, issuerID, cardID string, held []string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET held_digital_cards = $3 WHERE issuer_id = $1 AND card_id = $2`,
		issuerID, cardID, nullString(strings.Join(held, ","))); err != nil {
		return fmt.Errorf("digital cards held by card %s: %w", cardID, err)
	}
	return nil
}

// markCardDeletedTx ends a card's deletion: DELETED for reason, its marks
// cleared.
func markCardDeletedTx(ctx context.Context, tx *store.Tx, issuerID, cardID, reason string, now int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET state = 'DELETED', state_reason = $3, ongoing_operation = NULL, held_digital_cards = NULL,
		updated_at = $4 WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID, nullString(reason), now); err != nil {
		return fmt.Errorf("mark card %s deleted: %w", cardID, err)
	}
	return nil
}

// consumerCardIDsTx lists the ids of every card of a consumer.
func consumerCardIDsTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT card_id FROM issuer_cards WHERE issuer_id = $1 AND consumer_id = $2 ORDER BY card_id`, issuerID, consumerID)
	if err != nil {
		return nil, fmt.Errorf("cards of consumer %s: %w", consumerID, err)
	}
	return store.Strings(rows)
}

// accountCardIDsTx lists the ids of the cards of an account not deleted.
func accountCardIDsTx(ctx context.Context, tx *store.Tx, issuerID, accountID string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT card_id FROM issuer_cards WHERE issuer_id = $1 AND account_id = $2 AND state <> 'DELETED' ORDER BY card_id`,
		issuerID, accountID)
	if err != nil {
		return nil, fmt.Errorf("cards of account %s: %w", accountID, err)
	}
	return store.Strings(rows)
}
