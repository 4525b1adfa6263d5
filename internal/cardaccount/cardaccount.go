package cardaccount

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/refusal"
	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
)

// Source is where the wallet got the card account from (cardSource).
type Source string

const (
	OnFile     Source = "ON-FILE"
	UserInput  Source = "USER-INPUT"
	ClientSDK  Source = "CLIENT-SDK"
	ReaderMode Source = "READER-MODE"
)

// Descriptor is a cardAccountDescriptor: one of its two members is set.
type Descriptor struct {
	WalletCardAccountID   string
	OpaqueCardAccountData string
}

// ErrorKind classifies refusals; the API maps each to its status code.
type ErrorKind int

const (
	// KindBadFormat: a member is malformed or does not fit cardSource (112).
	KindBadFormat ErrorKind = iota + 1
	// KindUnknownAccount: no such card account for this issuer and partner (116).
	KindUnknownAccount
	// KindBlocked: the issuer suspended the card (159).
	KindBlocked
	// KindInvalidInfo: opaqueCardAccountData that does not open, expired
	// or of another issuer, or last digits that do not match (166).
	KindInvalidInfo
	// KindDeclined: the card or its consumer cannot take a digital card
	// now, or an on-file id of another wallet account (170).
	KindDeclined
	// KindOTPWrong: the OTP is wrong, used already, or cannot be checked (420).
	KindOTPWrong
	// KindOTPLocked: too many wrong OTPs in a row (421).
	KindOTPLocked
)

// KindOf returns the kind of a refusal of this package, 0 for any other error.
func KindOf(err error) ErrorKind { return refusal.KindOf[ErrorKind](err) }

func errorf(kind ErrorKind, format string, args ...any) error {
	return refusal.New(kind, format, args...)
}

// Config sets up a Service.
type Config struct {
	DB      *store.DB
	Key     *sealed.Key
	Issuers *issuer.Service
	Clock   func() time.Time
	// DataTTL is how long opaqueCardAccountData is good for [15m].
	DataTTL time.Duration
}

// Service resolves descriptors and checks eligibility and proofs.
type Service struct {
	db      *store.DB
	key     *sealed.Key
	issuers *issuer.Service
	now     func() time.Time
	ttl     time.Duration
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Key == nil || cfg.Issuers == nil {
		return nil, errors.New("cardaccount: Config.DB, Config.Key and Config.Issuers are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.DataTTL <= 0 {
		cfg.DataTTL = 15 * time.Minute
	}
	return &Service{db: cfg.DB, key: cfg.Key, issuers: cfg.Issuers, now: cfg.Clock, ttl: cfg.DataTTL}, nil
}

// dataOwner binds opaque data to its issuer: it opens only for that issuerId.
func dataOwner(issuerID string) string { return "opaqueCardAccountData:" + issuerID }

// opaque is the sealed content of opaqueCardAccountData.
type opaque struct {
	Card    string `json:"c"`
	Expires int64  `json:"e"`
	Issued  int64  `json:"i"`
}

// MaxDataLength bounds opaqueCardAccountData (ours; the published length
// is not known).
const MaxDataLength = 512

// IssueData makes the opaqueCardAccountData an issuer's back end hands the
// wallet app for one of its cards, and says when it expires. The card must
// be registered and not deleted.
func (s *Service) IssueData(ctx context.Context, issuerID, cardID string) (string, time.Time, error) {
	if _, err := s.issuers.Profile(ctx, issuerID, cardID); err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	exp := now.Add(s.ttl)
	raw, _ := json.Marshal(opaque{Card: cardID, Expires: exp.Unix(), Issued: now.Unix()})
	return s.key.Seal(raw, dataOwner(issuerID)), exp.UTC().Truncate(time.Second), nil
}

// openData reads opaqueCardAccountData presented for issuerID.
func (s *Service) openData(issuerID, data string) (string, error) {
	if !sealed.IsSealed(data) || len(data) > MaxDataLength {
		return "", errorf(KindBadFormat, "cardAccountDescriptor.opaqueCardAccountData is not data the issuer obtained from this hub")
	}
	raw, err := s.key.Open(data, dataOwner(issuerID))
	if err != nil {
		return "", errorf(KindInvalidInfo, "cardAccountDescriptor.opaqueCardAccountData does not open for issuer %s (made for another issuer, by another hub, or altered)", issuerID)
	}
	var o opaque
	if err := json.Unmarshal(raw, &o); err != nil || o.Card == "" {
		return "", errorf(KindInvalidInfo, "cardAccountDescriptor.opaqueCardAccountData is not readable")
	}
	if s.now().Unix() >= o.Expires {
		return "", errorf(KindInvalidInfo, "cardAccountDescriptor.opaqueCardAccountData expired at %s; the issuer makes a new one", time.Unix(o.Expires, 0).UTC().Format(time.RFC3339))
	}
	return o.Card, nil
}

// Account is a card account a descriptor named, with what the issuer
// registered for it.
type Account struct {
	IssuerID string
	CardID   string
	Profile  *issuer.Profile
	// OnFile is the wallet card account row an ON-FILE descriptor named.
	OnFile *WalletCardAccount
}

// Resolve finds the card account a descriptor names for a wallet partner
// and checks it may be provisioned. An empty source is taken from the
// descriptor's member.
func (s *Service) Resolve(ctx context.Context, partnerID, issuerID string, src Source, d Descriptor) (*Account, error) {
	if (d.WalletCardAccountID == "") == (d.OpaqueCardAccountData == "") {
		return nil, errorf(KindBadFormat, "cardAccountDescriptor carries walletCardAccountId (ON-FILE) or opaqueCardAccountData (other sources), one of them")
	}
	if src == "" {
		src = UserInput
		if d.WalletCardAccountID != "" {
			src = OnFile
		}
	}
	a := &Account{IssuerID: issuerID}
	switch {
	case src == OnFile && d.WalletCardAccountID == "":
		return nil, errorf(KindBadFormat, "cardSource ON-FILE names the card account with cardAccountDescriptor.walletCardAccountId")
	case src != OnFile && d.OpaqueCardAccountData == "":
		return nil, errorf(KindBadFormat, "cardSource %s names the card account with cardAccountDescriptor.opaqueCardAccountData", src)
	case src == OnFile:
		w, err := s.walletCardAccount(ctx, partnerID, issuerID, d.WalletCardAccountID)
		if err != nil {
			return nil, err
		}
		a.CardID, a.OnFile = w.CardAccountID, w
	default:
		card, err := s.openData(issuerID, d.OpaqueCardAccountData)
		if err != nil {
			return nil, err
		}
		a.CardID = card
	}
	p, err := s.issuers.Profile(ctx, issuerID, a.CardID)
	if issuer.KindOf(err) == issuer.KindNotFound {
		return nil, errorf(KindUnknownAccount, "no card account of issuer %s matches the descriptor", issuerID)
	}
	if err != nil {
		return nil, err
	}
	a.Profile = p
	return a, eligible(p)
}

// eligible applies the issuer's state to provisioning.
func eligible(p *issuer.Profile) error {
	switch {
	case p.State == issuer.CardDeleted:
		return errorf(KindUnknownAccount, "no card account of issuer %s matches the descriptor", p.IssuerID)
	case p.State == issuer.CardSuspended:
		return errorf(KindBlocked, "the issuer has suspended this card; it cannot be provisioned")
	case p.State == issuer.CardInactive:
		return errorf(KindDeclined, "the card is not active yet")
	case p.OngoingOperation != "":
		return errorf(KindDeclined, "the card is being deleted")
	case p.ConsumerState != "" && p.ConsumerState != issuer.ConsumerActive:
		return errorf(KindDeclined, "the card's end user is being deleted")
	}
	return nil
}

var lastDigitsPattern = regexp.MustCompile(`^[0-9]{4,5}$`)

// CheckLastDigits checks the card's last digits, as the user gave them,
// against those the issuer registered (the last four of them when one side
// gives four and the other five). A card registered without them cannot be
// checked, and accepts any well-formed value.
func CheckLastDigits(p *issuer.Profile, digits string) error {
	if !lastDigitsPattern.MatchString(digits) {
		return errorf(KindBadFormat, "cardLastDigits is 4 or 5 digits")
	}
	if p.LastDigits == "" {
		return nil
	}
	n := min(len(digits), len(p.LastDigits))
	if !equal(digits[len(digits)-n:], p.LastDigits[len(p.LastDigits)-n:]) {
		return errorf(KindInvalidInfo, "cardLastDigits do not match the card")
	}
	return nil
}

// WalletCardAccount is the id a wallet partner keeps on file for a card account.
type WalletCardAccount struct {
	ID, PartnerID, IssuerID, CardAccountID, WalletAccountID string
}

func (s *Service) walletCardAccount(ctx context.Context, partnerID, issuerID, id string) (*WalletCardAccount, error) {
	w := WalletCardAccount{ID: id, PartnerID: partnerID, IssuerID: issuerID}
	err := s.db.Reader().QueryRowContext(ctx, `SELECT card_account_id, wallet_account_id FROM wallet_card_accounts
		WHERE wallet_card_account_id = $1 AND partner_id = $2 AND issuer_id = $3`, id, partnerID, issuerID).Scan(&w.CardAccountID, &w.WalletAccountID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errorf(KindUnknownAccount, "unknown walletCardAccountId %s for issuer %s", id, issuerID)
	case err != nil:
		return nil, fmt.Errorf("read wallet card account: %w", err)
	}
	return &w, nil
}

// CheckWalletAccount refuses an on-file id presented for another wallet
// account than the one it was handed to.
func (a *Account) CheckWalletAccount(walletAccountID string) error {
	if a.OnFile != nil && a.OnFile.WalletAccountID != "" && a.OnFile.WalletAccountID != walletAccountID {
		return errorf(KindDeclined, "walletCardAccountId %s belongs to another wallet account", a.OnFile.ID)
	}
	return nil
}

// WalletCardAccountID returns the partner's id for the card account,
// making it on first use.
func (s *Service) WalletCardAccountID(ctx context.Context, partnerID, issuerID, cardID, walletAccountID string) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	if _, err := s.db.Writer().ExecContext(ctx, `INSERT INTO wallet_card_accounts (wallet_card_account_id, partner_id, issuer_id, card_account_id,
		wallet_account_id, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partner_id, issuer_id, card_account_id) DO NOTHING`,
		"wca-"+hex.EncodeToString(b[:]), partnerID, issuerID, cardID, walletAccountID, s.now().UnixMicro()); err != nil {
		return "", fmt.Errorf("store wallet card account: %w", err)
	}
	var id string
	if err := s.db.Writer().QueryRowContext(ctx, `SELECT wallet_card_account_id FROM wallet_card_accounts
		WHERE partner_id = $1 AND issuer_id = $2 AND card_account_id = $3`, partnerID, issuerID, cardID).Scan(&id); err != nil {
		return "", fmt.Errorf("read wallet card account: %w", err)
	}
	return id, nil
}

// NewOTPKey makes issuerID a new OTP key, replacing any other, and returns
// it as base64 text: the issuer keeps it secret and computes its OTPs with
// it (see OTP). The hub keeps it sealed.
func (s *Service) NewOTPKey(ctx context.Context, issuerID string) (string, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealedKey := s.key.Seal(key, otpOwner(issuerID))
	if _, err := s.db.Writer().ExecContext(ctx, `INSERT INTO issuer_otp_keys (issuer_id, secret, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (issuer_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at`, issuerID, sealedKey, s.now().UnixMicro()); err != nil {
		return "", fmt.Errorf("store OTP key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

func otpOwner(issuerID string) string { return "otp-key:" + issuerID }

func (s *Service) otpKey(ctx context.Context, issuerID string) ([]byte, error) {
	var text string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT secret FROM issuer_otp_keys WHERE issuer_id = $1`, issuerID).Scan(&text)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read OTP key: %w", err)
	}
	key, err := s.key.Open(text, otpOwner(issuerID))
	if err != nil {
		return nil, fmt.Errorf("OTP key of %s: %w", issuerID, err)
	}
	return key, nil
}

// Lockout: after MaxOTPFailures wrong OTPs in a row, a card account's OTPs
// are refused for OTPLockout.
const (
	MaxOTPFailures = 5
	OTPLockout     = 15 * time.Minute
)

var otpPattern = regexp.MustCompile(`^[0-9]{6}$`)

// VerifyOTP checks an issuer OTP for a card account and uses it up: the
// current or the previous time step, never one accepted before.
func (s *Service) VerifyOTP(ctx context.Context, issuerID, cardID, otp string) error {
	if !otpPattern.MatchString(otp) {
		return errorf(KindBadFormat, "issuerOtp is 6 digits")
	}
	key, err := s.otpKey(ctx, issuerID)
	if err != nil {
		return err
	}
	if key == nil {
		return errorf(KindOTPWrong, "issuer %s has no OTP key: its OTPs cannot be checked", issuerID)
	}
	if _, err := s.db.Writer().ExecContext(ctx, `INSERT INTO otp_state (issuer_id, card_account_id) VALUES ($1, $2)
		ON CONFLICT (issuer_id, card_account_id) DO NOTHING`, issuerID, cardID); err != nil {
		return fmt.Errorf("OTP state: %w", err)
	}
	if err := s.CheckLocked(ctx, issuerID, cardID); err != nil {
		return err
	}
	step := Step(s.now())
	for _, c := range []int64{step, step - 1} {
		if !equal(OTP(key, issuerID, cardID, c), otp) {
			continue
		}
		// Use it up; a concurrent call with the same OTP finds it used.
		res, err := s.db.Writer().ExecContext(ctx, `UPDATE otp_state SET last_step = $3, failures = 0
			WHERE issuer_id = $1 AND card_account_id = $2 AND last_step < $3`, issuerID, cardID, c)
		if err != nil {
			return fmt.Errorf("use OTP: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		return errorf(KindOTPWrong, "this OTP was used already")
	}
	if err := s.RecordWrongProof(ctx, issuerID, cardID); err != nil {
		return err
	}
	return errorf(KindOTPWrong, "the OTP is wrong or expired")
}

// CheckLocked refuses (421) a card account whose proofs (OTPs, last
// digits) were wrong MaxOTPFailures times in a row, until OTPLockout has
// passed.
func (s *Service) CheckLocked(ctx context.Context, issuerID, cardID string) error {
	var locked int64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT locked_until FROM otp_state WHERE issuer_id = $1 AND card_account_id = $2`,
		issuerID, cardID).Scan(&locked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("OTP state: %w", err)
	}
	if s.now().UnixMicro() < locked {
		return errorf(KindOTPLocked, "too many wrong OTPs or card digits for this card account; try again after %s",
			time.UnixMicro(locked).UTC().Format(time.RFC3339))
	}
	return nil
}

// RecordWrongProof counts a wrong OTP or wrong last digits for a card
// account, and locks it after MaxOTPFailures in a row: neither can be
// guessed by trying them all.
func (s *Service) RecordWrongProof(ctx context.Context, issuerID, cardID string) error {
	if _, err := s.db.Writer().ExecContext(ctx, `INSERT INTO otp_state (issuer_id, card_account_id) VALUES ($1, $2)
		ON CONFLICT (issuer_id, card_account_id) DO NOTHING`, issuerID, cardID); err != nil {
		return fmt.Errorf("OTP state: %w", err)
	}
	if _, err := s.db.Writer().ExecContext(ctx, `UPDATE otp_state SET failures = failures + 1,
		locked_until = CASE WHEN failures + 1 >= $3 THEN $4 ELSE locked_until END
		WHERE issuer_id = $1 AND card_account_id = $2`, issuerID, cardID, MaxOTPFailures, s.now().Add(OTPLockout).UnixMicro()); err != nil {
		return fmt.Errorf("count a wrong proof: %w", err)
	}
	if _, err := s.db.Writer().ExecContext(ctx, `UPDATE otp_state SET failures = 0 WHERE issuer_id = $1 AND card_account_id = $2 AND failures >= $3`,
		issuerID, cardID, MaxOTPFailures); err != nil {
		return fmt.Errorf("count a wrong proof: %w", err)
	}
	return nil
}
