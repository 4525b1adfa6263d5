package issuer

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/outcome"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/transit"
)

// Config sets up a Service.
type Config struct {
	DB *store.DB
	// Engine runs the service's jobs, and Jobs is the registry that engine
	// was made with: New registers the service's job kinds in it, so the
	// engine must not have started yet (required).
	Engine  *engine.Engine
	Jobs    *engine.Registry
	Transit *transit.Service
	// Assets holds the card art and terms a card may name (required).
	Assets *asset.Store
	Logger *slog.Logger
	Clock  func() time.Time
	// Outcomes counts the operations that end (nil: not counted).
	Outcomes *outcome.Counters
	// OperationRetention is how long operations are kept [90 days].
	OperationRetention time.Duration
	// PurgeInterval is how often old operations are removed [1h].
	PurgeInterval time.Duration
	// PollSchedule is the wait before each look at an operation's wallet
	// tasks; the last entry repeats [200ms 500ms 1s 2s 5s].
	PollSchedule []time.Duration
	// WaitLimit ends an operation FAILED when its wallet tasks are not done
	// this long after it started [24h].
	WaitLimit time.Duration
}

// Service runs the issuer domain.
type Service struct {
	cfg     Config
	db      *store.DB
	transit *transit.Service
	log     *slog.Logger
	now     func() time.Time
	engine  *engine.Engine
}

// New returns a Service whose job kinds it registers in cfg.Jobs.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil || cfg.Jobs == nil {
		return nil, errors.New("issuer: Config.Engine and Config.Jobs are required")
	}
	if cfg.DB == nil || cfg.Transit == nil || cfg.Assets == nil {
		return nil, errors.New("issuer: Config.DB, Config.Transit and Config.Assets are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.OperationRetention <= 0 {
		cfg.OperationRetention = 90 * 24 * time.Hour
	}
	if cfg.PurgeInterval <= 0 {
		cfg.PurgeInterval = time.Hour
	}
	if len(cfg.PollSchedule) == 0 {
		cfg.PollSchedule = []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second}
	}
	if cfg.WaitLimit <= 0 {
		cfg.WaitLimit = 24 * time.Hour
	}
	s := &Service{cfg: cfg, db: cfg.DB, transit: cfg.Transit, log: cfg.Logger.With("component", "issuer"), now: cfg.Clock, engine: cfg.Engine}
	s.registerJobs(cfg.Jobs)
	return s, nil
}

// registerJobs adds the issuer job kinds to reg.
func (s *Service) registerJobs(reg *engine.Registry) {
	engine.Register(reg, s.runOperation, engine.KindOptions{MaxAttempts: 25, Timeout: time.Minute})
	engine.Register(reg, s.purge, engine.KindOptions{MaxAttempts: 5, Timeout: 5 * time.Minute})
}

func newOperationID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "op-" + hex.EncodeToString(b[:])
}

// consumerTx reads a consumer in tx; nil when unknown.
func consumerTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string) (*Consumer, error) {
	c := Consumer{IssuerID: issuerID, ConsumerID: consumerID}
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT state, created_at FROM issuer_consumers WHERE issuer_id = $1 AND consumer_id = $2`,
		issuerID, consumerID).Scan(&c.State, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read consumer: %w", err)
	}
	c.CreatedAt = time.UnixMicro(created).UTC()
	return &c, nil
}

// RegisterConsumerWithCards registers an end user (if new) together with
// cards that are already registered: each card without a consumer becomes
// the consumer's, a card that is already the consumer's stays so, and one
// of another consumer, a deleted one or one being deleted refuses the whole
// call. Calling again with new cards adds them.
func (s *Service) RegisterConsumerWithCards(ctx context.Context, issuerID, consumerID string, cardIDs []string, by Requestor) error {
	if len(cardIDs) == 0 {
		return errorf(KindBadInput, "cards must name at least one card")
	}
	return s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := s.ensureConsumerTx(ctx, tx, issuerID, consumerID, by); err != nil {
			return err
		}
		now := s.now().UnixMicro()
		for _, cardID := range cardIDs {
			c, err := cardTx(ctx, tx, issuerID, cardID)
			switch {
			case err != nil:
				return err
			case c == nil:
				return errorf(KindNotFound, "unknown card %s: register it first (PUT /cards/{cardId})", cardID)
			case c.State == CardDeleted:
				return errorf(KindForbidden, "card %s is deleted", cardID)
			case c.OngoingOperation != "":
				return errorf(KindForbidden, "card %s is being deleted", cardID)
			case c.ConsumerID == consumerID:
				continue
			case c.ConsumerID != "":
				return errorf(KindConflict, "card %s belongs to another consumer", cardID)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET consumer_id = $3, updated_at = $4 WHERE issuer_id = $1 AND card_id = $2 AND consumer_id = ''`,
				issuerID, cardID, consumerID, now); err != nil {
				return fmt.Errorf("assign card %s: %w", cardID, err)
			}
		}
		return nil
	})
}

// ownedCard refuses an operation on a card that no consumer holds yet.
func ownedCard(c *cardRow) error {
	if c.ConsumerID == "" {
		return errorf(KindForbidden, "card %s has no consumer yet (PUT /consumers/{consumerId}/cards gives it one)", c.CardID)
	}
	return nil
}

// usable refuses a consumer that is deleted or being deleted.
func usable(c *Consumer) error {
	switch c.State {
	case ConsumerDeleted:
		return errorf(KindForbidden, "consumer %s was deleted; a deleted consumerId can never be used again", c.ConsumerID)
	case ConsumerDeleting:
		return errorf(KindForbidden, "consumer %s is being deleted", c.ConsumerID)
	}
	return nil
}

// ensureConsumerTx registers a consumer unless it exists, recording a
// REGISTER operation; a deleted or deleting consumer is refused.
func (s *Service) ensureConsumerTx(ctx context.Context, tx *store.Tx, issuerID, consumerID string, by Requestor) (*Consumer, error) {
	c, err := consumerTx(ctx, tx, issuerID, consumerID)
	if err != nil {
		return nil, err
	}
	if c != nil {
		return c, usable(c)
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_consumers (issuer_id, consumer_id, state, created_at, updated_at) VALUES ($1, $2, 'ACTIVE', $3, $3)`,
		issuerID, consumerID, now.UnixMicro()); err != nil {
		return nil, fmt.Errorf("register consumer: %w", err)
	}
	op := &Operation{IssuerID: issuerID, ConsumerID: consumerID, Type: OpRegister, Status: StatusSuccessful, StartTime: now, EndTime: &now}
	if err := s.insertOperationTx(ctx, tx, op, by); err != nil {
		return nil, err
	}
	return &Consumer{IssuerID: issuerID, ConsumerID: consumerID, State: ConsumerActive, CreatedAt: now}, nil
}

// RegisterConsumer registers an end user; registering one that exists is
// harmless; a deleted consumerId is refused.
func (s *Service) RegisterConsumer(ctx context.Context, issuerID, consumerID string, by Requestor) error {
	return s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		_, err := s.ensureConsumerTx(ctx, tx, issuerID, consumerID, by)
		return err
	})
}

// Consumer returns an end user (any state).
func (s *Service) Consumer(ctx context.Context, issuerID, consumerID string) (*Consumer, error) {
	c := Consumer{IssuerID: issuerID, ConsumerID: consumerID}
	var created int64
	err := s.db.ReadRow(ctx, `SELECT state, created_at FROM issuer_consumers WHERE issuer_id = $1 AND consumer_id = $2`,
		issuerID, consumerID).Scan(&c.State, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(KindNotFound, "unknown consumer %s", consumerID)
	}
	if err != nil {
		return nil, fmt.Errorf("read consumer: %w", err)
	}
	c.CreatedAt = time.UnixMicro(created).UTC()
	return &c, nil
}

// ensureAccountTx links accountID to the consumer, creating it if needed.
func (s *Service) ensureAccountTx(ctx context.Context, tx *store.Tx, issuerID, accountID, consumerID, productID, state string) error {
	var owner string
	err := tx.QueryRowContext(ctx, `SELECT consumer_id FROM issuer_accounts WHERE issuer_id = $1 AND account_id = $2`, issuerID, accountID).Scan(&owner)
	now := s.now().UnixMicro()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if state == "" {
			state = "ACTIVE"
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO issuer_accounts (issuer_id, account_id, consumer_id, account_product_id, state, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, issuerID, accountID, consumerID, nullString(productID), state, now)
		if err != nil {
			return fmt.Errorf("register account: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read account: %w", err)
	case owner != consumerID:
		return errorf(KindConflict, "account %s belongs to another consumer", accountID)
	case productID == "" && state == "":
		return nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE issuer_accounts SET account_product_id = COALESCE($3, account_product_id), state = COALESCE($4, state), updated_at = $5
		WHERE issuer_id = $1 AND account_id = $2`, issuerID, accountID, nullString(productID), nullString(state), now)
	if err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	return nil
}

// RegisterAccount links an account to an existing consumer (the
// deprecated account call); the consumer must be registered and usable.
func (s *Service) RegisterAccount(ctx context.Context, issuerID, accountID, consumerID, productID, state string) error {
	return s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		c, err := consumerTx(ctx, tx, issuerID, consumerID)
		if err != nil {
			return err
		}
		if c == nil {
			return errorf(KindNotFound, "unknown consumer %s", consumerID)
		}
		if err := usable(c); err != nil {
			return err
		}
		return s.ensureAccountTx(ctx, tx, issuerID, accountID, consumerID, productID, state)
	})
}

// RegisterCard registers a card for a consumer, registering the consumer
// (and the account, when named) if needed. Registering a card again for the
// same consumer updates its product and account; a deleted card's id may be
// registered anew.
func (s *Service) RegisterCard(ctx context.Context, issuerID, cardID string, in CardInput, by Requestor) error {
	switch in.State {
	case "":
		in.State = CardActive
	case CardActive, CardInactive:
	default:
		return errorf(KindBadInput, "state must be ACTIVE or INACTIVE")
	}
	if in.ConsumerID == "" && in.AccountID != "" {
		return errorf(KindBadInput, "a card registered without a consumer has no account either")
	}
	show, err := s.showing(ctx, issuerID, in)
	if err != nil {
		return err
	}
	return s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if in.ConsumerID != "" {
			if _, err := s.ensureConsumerTx(ctx, tx, issuerID, in.ConsumerID, by); err != nil {
				return err
			}
		}
		if in.AccountID != "" {
			if err := s.ensureAccountTx(ctx, tx, issuerID, in.AccountID, in.ConsumerID, "", ""); err != nil {
				return err
			}
		}
		existing, err := cardTx(ctx, tx, issuerID, cardID)
		if err != nil {
			return err
		}
		now := s.now().UnixMicro()
		switch {
		case existing == nil:
			_, err = tx.ExecContext(ctx, `INSERT INTO issuer_cards (issuer_id, card_id, consumer_id, account_id, card_product_id, state, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, issuerID, cardID, in.ConsumerID, nullString(in.AccountID), in.CardProductID, string(in.State), now)
		case existing.State == CardDeleted:
			_, err = tx.ExecContext(ctx, `UPDATE issuer_cards SET consumer_id = $3, account_id = $4, card_product_id = $5, state = $6,
				state_reason = NULL, ongoing_operation = NULL, held_digital_cards = NULL, last_digits = NULL, terms_id = NULL, card_art = NULL,
				created_at = $7, updated_at = $7
				WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID, in.ConsumerID, nullString(in.AccountID), in.CardProductID, string(in.State), now)
		case existing.ConsumerID != in.ConsumerID && existing.ConsumerID != "":
			return errorf(KindConflict, "card %s belongs to another consumer", cardID)
		case existing.ConsumerID != in.ConsumerID && existing.OngoingOperation == "":
			// A card registered without a consumer gets one.
			_, err = tx.ExecContext(ctx, `UPDATE issuer_cards SET consumer_id = $3, account_id = COALESCE($4, account_id), card_product_id = $5, updated_at = $6
				WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID, in.ConsumerID, nullString(in.AccountID), in.CardProductID, now)
		case existing.OngoingOperation != "":
			return errorf(KindForbidden, "card %s is being deleted", cardID)
		default:
			_, err = tx.ExecContext(ctx, `UPDATE issuer_cards SET account_id = COALESCE($3, account_id), card_product_id = $4, updated_at = $5
				WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID, nullString(in.AccountID), in.CardProductID, now)
		}
		if err != nil {
			return fmt.Errorf("register card: %w", err)
		}
		if show.set {
			if _, err := tx.ExecContext(ctx, `UPDATE issuer_cards SET last_digits = COALESCE($3, last_digits),
				terms_id = CASE WHEN $4 THEN $5 ELSE terms_id END, card_art = CASE WHEN $6 THEN $7 ELSE card_art END
				WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID, nullString(in.LastDigits),
				in.TermsID != nil, show.terms, in.SetCardArt, show.art); err != nil {
				return fmt.Errorf("register card: %w", err)
			}
		}
		return nil
	})
}

// shown is what a registration sets of what a card shows, as stored.
type shown struct {
	set   bool
	terms any // NULL or a guid
	art   any // NULL or a JSON array of guids
}

// showing checks what a card registration says the card shows: its last
// digits, and terms and art that are the issuer's own assets of the right
// kind.
func (s *Service) showing(ctx context.Context, issuerID string, in CardInput) (shown, error) {
	var sh shown
	if in.LastDigits != "" {
		if len(in.LastDigits) < 4 || len(in.LastDigits) > 5 || strings.Trim(in.LastDigits, "0123456789") != "" {
			return sh, errorf(KindBadInput, "lastDigits is 4 or 5 digits")
		}
		sh.set = true
	}
	if in.TermsID != nil {
		sh.set = true
		if *in.TermsID != "" && *in.TermsID != asset.NoTerms {
			if err := s.requireAssets(ctx, issuerID, asset.Terms, "termsAndConditionsId", *in.TermsID); err != nil {
				return sh, err
			}
			sh.terms = strings.ToLower(*in.TermsID)
		}
	}
	if in.SetCardArt {
		sh.set = true
		if len(in.CardArt) > 8 {
			return sh, errorf(KindBadInput, "cardArtManifest has at most 8 assets")
		}
		if len(in.CardArt) > 0 {
			guids := make([]string, len(in.CardArt))
			for i, g := range in.CardArt {
				guids[i] = strings.ToLower(g)
			}
			if err := s.requireAssets(ctx, issuerID, asset.CardArt, "cardArtManifest", guids...); err != nil {
				return sh, err
			}
			raw, _ := json.Marshal(guids)
			sh.art = string(raw)
		}
	}
	return sh, nil
}

func (s *Service) requireAssets(ctx context.Context, issuerID string, kind asset.Kind, member string, guids ...string) error {
	err := s.cfg.Assets.Require(ctx, issuerID, kind, guids...)
	switch asset.KindOf(err) {
	case 0:
		return err
	case asset.KindNotFound:
		return errorf(KindBadInput, "%s: %s (upload it first)", member, err.Error())
	}
	return errorf(KindBadInput, "%s: %s", member, err.Error())
}

// Profile is what provisioning needs of a card: its state and its end
// user's, and what the issuer registered for wallets to show and check.
type Profile struct {
	IssuerID, CardID string
	State            CardState
	OngoingOperation string
	// ConsumerState is "" for a card registered without an end user.
	ConsumerState ConsumerState
	LastDigits    string
	TermsID       string
	CardArt       []string
}

// Profile returns the provisioning profile of a registered card (KindNotFound
// when there is none).
func (s *Service) Profile(ctx context.Context, issuerID, cardID string) (*Profile, error) {
	c, err := scanCard(s.db.ReadRow(ctx, `SELECT `+cardColumns+` FROM issuer_cards WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID))
	if err != nil {
		return nil, err
	}
	if c == nil || c.State == CardDeleted {
		return nil, errorf(KindNotFound, "unknown card %s", cardID)
	}
	p := &Profile{IssuerID: issuerID, CardID: cardID, State: c.State, OngoingOperation: c.OngoingOperation,
		LastDigits: c.LastDigits, TermsID: c.TermsID, CardArt: c.CardArt}
	if c.ConsumerID != "" {
		cons, err := s.Consumer(ctx, issuerID, c.ConsumerID)
		if err != nil && KindOf(err) != KindNotFound {
			return nil, err
		}
		if cons != nil {
			p.ConsumerState = cons.State
		}
	}
	return p, nil
}

const cardColumns = `issuer_id, card_id, consumer_id, account_id, card_product_id, state, state_reason, ongoing_operation, held_digital_cards,
	last_digits, terms_id, card_art, created_at, updated_at`

type cardRow struct {
	Card
	held string
}

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

func cardTx(ctx context.Context, tx *store.Tx, issuerID, cardID string) (*cardRow, error) {
	return scanCard(tx.QueryRowContext(ctx, `SELECT `+cardColumns+` FROM issuer_cards WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID))
}

// Card returns a card with its digital cards.
func (s *Service) Card(ctx context.Context, issuerID, cardID string) (*Card, error) {
	c, err := scanCard(s.db.ReadRow(ctx, `SELECT `+cardColumns+` FROM issuer_cards WHERE issuer_id = $1 AND card_id = $2`, issuerID, cardID))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errorf(KindNotFound, "unknown card %s", cardID)
	}
	dcs, err := s.transit.CardsOfAccount(ctx, issuerID, cardID)
	if err != nil {
		return nil, err
	}
	for _, dc := range dcs {
		c.DigitalCards = append(c.DigitalCards, digitalCard(dc.Card))
	}
	return &c.Card, nil
}

func digitalCard(c transit.Card) DigitalCard {
	return DigitalCard{DigitalCardID: c.WalletCardID, CardID: c.CardAccountID, State: digitalState(c.State)}
}

func digitalState(s transit.CardState) DigitalCardState {
	switch s {
	case transit.Active:
		return DigitalActive
	case transit.Suspended:
		return DigitalSuspended
	case transit.PendingPerso:
		return DigitalInactive
	}
	return DigitalDeleted
}

// DigitalCard returns a digital card by its id (the walletCardId); its
// card must be registered with the issuer.
func (s *Service) DigitalCard(ctx context.Context, issuerID, digitalCardID string) (*DigitalCard, error) {
	tc, _, err := s.digitalCard(ctx, issuerID, digitalCardID)
	if err != nil {
		return nil, err
	}
	dc := digitalCard(*tc)
	return &dc, nil
}

func (s *Service) digitalCard(ctx context.Context, issuerID, digitalCardID string) (*transit.Card, *Card, error) {
	tc, err := s.transit.CardByWalletID(ctx, issuerID, digitalCardID)
	if transit.KindOf(err) == transit.KindUnknownCard {
		return nil, nil, errorf(KindNotFound, "unknown digital card %s", digitalCardID)
	}
	if err != nil {
		return nil, nil, err
	}
	c, err := scanCard(s.db.ReadRow(ctx, `SELECT `+cardColumns+` FROM issuer_cards WHERE issuer_id = $1 AND card_id = $2`, issuerID, tc.CardAccountID))
	if err != nil {
		return nil, nil, err
	}
	if c == nil {
		return nil, nil, errorf(KindNotFound, "unknown digital card %s", digitalCardID)
	}
	return tc, &c.Card, nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
