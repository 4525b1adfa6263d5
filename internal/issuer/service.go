package issuer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
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
			if err := assignCardTx(ctx, tx, issuerID, cardID, consumerID, now); err != nil {
				return err
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
	if err := insertConsumerTx(ctx, tx, issuerID, consumerID, now.UnixMicro()); err != nil {
		return nil, err
	}
	op := &Operation{IssuerID: issuerID, ConsumerID: consumerID, Type: OpRegister, Status: StatusSuccessful, StartTime: now, EndTime: &now}
	if err := s.recordOperationTx(ctx, tx, op, by); err != nil {
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
	c, err := readConsumer(ctx, s.db, issuerID, consumerID)
	if err == nil && c == nil {
		err = errorf(KindNotFound, "unknown consumer %s", consumerID)
	}
	return c, err
}

// ensureAccountTx links accountID to the consumer, creating it if needed.
func (s *Service) ensureAccountTx(ctx context.Context, tx *store.Tx, issuerID, accountID, consumerID, productID, state string) error {
	owner, found, err := accountOwnerTx(ctx, tx, issuerID, accountID)
	now := s.now().UnixMicro()
	switch {
	case err != nil:
		return err
	case !found:
		if state == "" {
			state = "ACTIVE"
		}
		return insertAccountTx(ctx, tx, issuerID, accountID, consumerID, productID, state, now)
	case owner != consumerID:
		return errorf(KindConflict, "account %s belongs to another consumer", accountID)
	case productID == "" && state == "":
		return nil
	}
	return updateAccountTx(ctx, tx, issuerID, accountID, productID, state, now)
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
			err = insertCardTx(ctx, tx, issuerID, cardID, in, now)
		case existing.State == CardDeleted:
			err = renewCardTx(ctx, tx, issuerID, cardID, in, now)
		case existing.ConsumerID != in.ConsumerID && existing.ConsumerID != "":
			return errorf(KindConflict, "card %s belongs to another consumer", cardID)
		case existing.OngoingOperation != "":
			return errorf(KindForbidden, "card %s is being deleted", cardID)
		default:
			// The same consumer, or a card registered without one gets one.
			err = updateCardRegistrationTx(ctx, tx, issuerID, cardID, in, now)
		}
		if err != nil {
			return err
		}
		if show.set {
			return setCardShownTx(ctx, tx, issuerID, cardID, show)
		}
		return nil
	})
}

// shown is what a registration sets of what a card shows, as stored.
type shown struct {
	set      bool
	digits   string // "" keeps the card's
	setTerms bool
	terms    any // NULL or a guid
	setArt   bool
	art      any // NULL or a JSON array of guids
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
		sh.set, sh.digits = true, in.LastDigits
	}
	if in.TermsID != nil {
		sh.set, sh.setTerms = true, true
		if *in.TermsID != "" && *in.TermsID != asset.NoTerms {
			if err := s.requireAssets(ctx, issuerID, asset.Terms, "termsAndConditionsId", *in.TermsID); err != nil {
				return sh, err
			}
			sh.terms = strings.ToLower(*in.TermsID)
		}
	}
	if in.SetCardArt {
		sh.set, sh.setArt = true, true
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
	c, err := readCard(ctx, s.db, issuerID, cardID)
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

// Card returns a card with its digital cards.
func (s *Service) Card(ctx context.Context, issuerID, cardID string) (*Card, error) {
	c, err := readCard(ctx, s.db, issuerID, cardID)
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
	c, err := readCard(ctx, s.db, issuerID, tc.CardAccountID)
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
