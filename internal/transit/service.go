package transit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/outcome"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/wallet"
)

// WalletServer is the port to the wallet server; *wallet.Client is one.
type WalletServer interface {
	Header(sessionID string) wallet.RequestHeader
	SendScript(ctx context.Context, req wallet.SendScriptRequest) error
	UpdateCard(ctx context.Context, req wallet.UpdateCardRequest) error
	GetTaskStatus(ctx context.Context, req wallet.GetTaskStatusRequest) (string, error)
	PushNotification(ctx context.Context, req wallet.PushNotificationRequest) error
}

// Config sets up a Service.
type Config struct {
	DB *store.DB
	// Engine runs the service's jobs, and Jobs is the registry that engine
	// was made with: New registers the service's job kinds in it, so the
	// engine must not have started yet (required).
	Engine *engine.Engine
	Jobs   *engine.Registry
	Wallet WalletServer
	Logger *slog.Logger
	Clock  func() time.Time
	// Outcomes counts the wallet tasks and device operations that end, and
	// the failed calls to the wallet server and the TES (nil: not counted).
	Outcomes *outcome.Counters
	// PackageAID is the load file (and module) of the transit applet; each
	// card gets an instance AID made of it and four random bytes
	// [A0000001515350].
	PackageAID apdu.AID
	// Attempts and RetryFor are the retry budget of a wallet task (and a
	// notification) while the wallet server is unavailable or busy: it is
	// FAILED once either is used up, the time counted from its first failed
	// attempt [100, 10m: an outage of 5 minutes and more is ridden out].
	Attempts int
	RetryFor time.Duration
	// RetryBackoff gives the wait before retry n [the engine's, at most
	// 30s].
	RetryBackoff func(attempt int) time.Duration
	// PollSchedule is the wait before each getTaskStatus poll; the last
	// entry repeats [100ms 200ms 500ms 1s 2s 5s].
	PollSchedule []time.Duration
	// InlinePollFor is how long the run that calls the wallet server may
	// go on polling the task itself, at the PollSchedule's first waits,
	// before it snoozes [250ms]: most tasks end within it, and are then
	// recorded without a second claim. 0 takes the default; negative
	// polls only in later runs.
	InlinePollFor time.Duration
	// MaxPolls bounds the polls of one task before it is FAILED [360].
	MaxPolls int

	// TES is the transit entity server's device gateway; without one, the
	// device operations (top-up, park, reader mode) are refused.
	TES TES
	// OperationTTL is how long a device operation may take [2m].
	OperationTTL time.Duration
	// TESRetryFor is how long one relay step keeps asking a TES that is
	// unavailable before the device is told to repeat the step [2s]
	// (a device's call must not hang); TESRetryWait is the wait between
	// the calls [200ms]. Across steps, an operation rides out a TES outage
	// until its OperationTTL, as the device repeats each step it is told to.
	TESRetryFor  time.Duration
	TESRetryWait time.Duration
	// DeviceTokenKey makes each device operation's token (HMAC-SHA256 of
	// the operation id): the same on every instance and every retry of the
	// REDIRECT, never stored (required with a TES).
	DeviceTokenKey []byte
	// Assets are the issuers' card art: a METADATA_UPDATE names only art
	// of the card's issuer (nil: not checked, for benchmarks).
	Assets *asset.Store
	// OperationsPerSE bounds the device operations started on one secure
	// element within OperationsWindow [10 per 10m]: a caller allowed to
	// start them cannot keep a device busy for good.
	OperationsPerSE  int
	OperationsWindow time.Duration
}

// Service runs the transit domain.
type Service struct {
	cfg    Config
	db     *store.DB
	log    *slog.Logger
	now    func() time.Time
	engine *engine.Engine
	early  *earlyPolls
}

// New returns a Service whose job kinds it registers in cfg.Jobs.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil || cfg.Jobs == nil {
		return nil, errors.New("transit: Config.Engine and Config.Jobs are required")
	}
	if cfg.DB == nil || cfg.Wallet == nil {
		return nil, errors.New("transit: Config.DB and Config.Wallet are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.PackageAID == nil {
		cfg.PackageAID = apdu.AID{0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50}
	}
	if !cfg.PackageAID.Valid() || len(cfg.PackageAID) > 12 {
		return nil, errors.New("transit: PackageAID must have 5 to 12 bytes")
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 100
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 10 * time.Minute
	}
	if cfg.RetryBackoff == nil {
		cfg.RetryBackoff = engine.CappedBackoff(30 * time.Second)
	}
	if cfg.InlinePollFor == 0 {
		cfg.InlinePollFor = 250 * time.Millisecond
	}
	if len(cfg.PollSchedule) == 0 {
		cfg.PollSchedule = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second}
	}
	if cfg.MaxPolls <= 0 {
		cfg.MaxPolls = 360
	}
	if cfg.OperationTTL <= 0 {
		cfg.OperationTTL = 2 * time.Minute
	}
	if cfg.TESRetryFor <= 0 {
		cfg.TESRetryFor = 2 * time.Second
	}
	if cfg.TESRetryWait <= 0 {
		cfg.TESRetryWait = 200 * time.Millisecond
	}
	if cfg.TES != nil && len(cfg.DeviceTokenKey) < 16 {
		return nil, errors.New("transit: Config.DeviceTokenKey (at least 16 bytes) is required with a TES")
	}
	if cfg.OperationsPerSE <= 0 {
		cfg.OperationsPerSE = 10
	}
	if cfg.OperationsWindow <= 0 {
		cfg.OperationsWindow = 10 * time.Minute
	}
	s := &Service{cfg: cfg, db: cfg.DB, log: cfg.Logger.With("component", "transit"), now: cfg.Clock, engine: cfg.Engine,
		early: newEarlyPolls(cfg.PollSchedule[0])}
	if err := cfg.DB.PrepareHot(slices.Concat(hotStatements, operationHotStatements, notificationHotStatements)...); err != nil {
		s.log.Warn("transit statements stay unprepared", "err", err)
	}
	s.registerJobs(cfg.Jobs)
	return s, nil
}

// registerJobs adds the transit job kinds to reg.
func (s *Service) registerJobs(reg *engine.Registry) {
	engine.Register(reg, s.runTask, engine.KindOptions{MaxAttempts: s.cfg.Attempts, Timeout: time.Minute, Backoff: s.cfg.RetryBackoff})
	engine.Register(reg, s.runOperation, engine.KindOptions{MaxAttempts: s.cfg.Attempts, Timeout: time.Minute, Backoff: s.cfg.RetryBackoff})
	engine.Register(reg, s.runNotify, engine.KindOptions{MaxAttempts: s.cfg.Attempts, Timeout: time.Minute, Backoff: s.cfg.RetryBackoff})
}

// ProvisionInput asks for a digital card of a card account on a secure
// element; the card account was resolved and found eligible by the caller.
type ProvisionInput struct {
	IssuerID, CardAccountID, SEID, DeviceID string
}

// NewWalletCardID returns a wallet card id the hub assigns: "pvw-" and 32
// hex digits.
func NewWalletCardID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "pvw-" + hex.EncodeToString(b)
}

// ProvisionCard records a digital card for a card account on a secure
// element, PENDING_PERSO, with a wallet card id and an applet instance the
// hub chooses, and returns it; its cardId is the card account id (for
// stored-value transit accounts they are the same). A card account has one
// digital card at a time: asking again for the same secure element while it
// is not deleted returns the same card (a wallet server repeating a call
// whose answer it lost), another secure element is 167. A card account
// whose digital card was DELETED or ERASED may be provisioned again, once
// that card's tasks have ended: it gets a new wallet card id and instance.
func (s *Service) ProvisionCard(ctx context.Context, in ProvisionInput) (*Card, error) {
	seID := strings.ToUpper(in.SEID)
	c, err := s.Card(ctx, in.CardAccountID)
	switch {
	case KindOf(err) == KindUnknownCard:
		c = nil
	case err != nil:
		return nil, err
	}
	if c != nil && c.State != Deleted && c.State != Erased {
		if c.IssuerID != in.IssuerID || c.SEID != seID {
			return nil, errorf(KindAlreadyProvisioned, "card account %s has a digital card on another secure element", in.CardAccountID)
		}
		return c, nil
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	instance := append(append(apdu.AID{}, s.cfg.PackageAID...), suffix...)
	now := s.now()
	wc := NewWalletCardID()
	fresh := &Card{CardID: in.CardAccountID, IssuerID: in.IssuerID, CardAccountID: in.CardAccountID, WalletCardID: wc,
		SEID: seID, DeviceID: in.DeviceID, InstanceAID: instance.String()}
	if c == nil {
		if err := insertCard(ctx, s.db, fresh, now); err != nil {
			if _, gerr := s.Card(ctx, in.CardAccountID); gerr == nil {
				// Another call provisioned it meanwhile: answer as it did.
				return s.ProvisionCard(ctx, in)
			}
			return nil, err
		}
	} else {
		if c.IssuerID != in.IssuerID {
			return nil, errorf(KindAlreadyProvisioned, "card account %s is provisioned for another issuer", in.CardAccountID)
		}
		done, err := reprovisionCard(ctx, s.db, fresh, now)
		if err != nil {
			return nil, err
		}
		if !done {
			if again, gerr := s.Card(ctx, in.CardAccountID); gerr == nil && again.State != Deleted && again.State != Erased {
				return s.ProvisionCard(ctx, in)
			}
			return nil, errorf(KindNotAllowed, "the card account's previous digital card still has tasks to end; ask again later")
		}
	}
	s.log.InfoContext(ctx, "card provisioned", "card_id", in.CardAccountID, "se_id", seID, "wallet_card_id", wc)
	return s.Card(ctx, in.CardAccountID)
}

// SubmitPersoData builds the card's personalisation script (INSTALL of its
// instance, SELECT, STORE DATA blocks) and queues it for the wallet server.
func (s *Service) SubmitPersoData(ctx context.Context, issuerID, cardID string, dgis []apdu.DGI) (*Task, error) {
	if len(dgis) == 0 {
		return nil, errorf(KindMissing, "personalisation data is empty")
	}
	c, err := s.issuerCard(ctx, issuerID, cardID)
	if err != nil {
		return nil, err
	}
	instance, _ := hex.DecodeString(c.InstanceAID)
	install, err := apdu.InstallCommand(apdu.Install{LoadFile: s.cfg.PackageAID, Module: s.cfg.PackageAID, Instance: instance, Privileges: []byte{0x00}})
	if err != nil {
		return nil, err
	}
	perso, err := apdu.PersoScript(instance, dgis, wallet.MaxStoreDataBlock)
	if err != nil {
		return nil, errorf(KindBadFormat, "personalisation data: %v", err)
	}
	cmds := append([]apdu.Command{install}, perso...)
	names := []string{"install", "select"}
	for range perso[1:] {
		names = append(names, "store data")
	}
	return s.queue(ctx, c, OpPersonalize, scriptPayload{Commands: cmds, Names: names})
}

// UpdateState queues SUSPEND, RESUME, DELETE or ERASE.
func (s *Service) UpdateState(ctx context.Context, issuerID, cardID string, op Operation) (*Task, error) {
	switch op {
	case OpSuspend, OpResume, OpDelete, OpErase:
	default:
		return nil, errorf(KindBadFormat, "action must be DELETE, SUSPEND, RESUME or ERASE")
	}
	c, err := s.issuerCard(ctx, issuerID, cardID)
	if err != nil {
		return nil, err
	}
	return s.queue(ctx, c, op, nil)
}

// UpdateMetadata queues a METADATA_UPDATE carrying descriptor.
func (s *Service) UpdateMetadata(ctx context.Context, issuerID, cardID string, descriptor wallet.CardDescriptor) (*Task, error) {
	c, err := s.issuerCard(ctx, issuerID, cardID)
	if err != nil {
		return nil, err
	}
	// The card art a wallet is told about is art it can fetch: the
	// issuer's own CARD_ART assets.
	if len(descriptor.CardArtManifest) > 0 && s.cfg.Assets != nil {
		for i, g := range descriptor.CardArtManifest {
			descriptor.CardArtManifest[i] = strings.ToLower(g)
		}
		if err := s.cfg.Assets.Require(ctx, issuerID, asset.CardArt, descriptor.CardArtManifest...); err != nil {
			if asset.KindOf(err) != 0 {
				return nil, errorf(KindBadFormat, "cardDescriptor.cardArtManifest: %s", err.Error())
			}
			return nil, err
		}
	}
	return s.queue(ctx, c, OpMetadataUpdate, descriptor)
}

type scriptPayload struct {
	Commands []apdu.Command
	Names    []string
}

// ScriptLine is one command of a task's script as the console shows it:
// a STORE DATA carries personalisation data, which is replaced by zeros
// of its length and marked Withheld.
type ScriptLine struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	APDU     string `json:"apdu"`
	Withheld bool   `json:"withheld,omitempty"`
}

// outlineOf is a script without its personalisation data.
func outlineOf(script []wallet.APDUCommand) []ScriptLine {
	out := make([]ScriptLine, 0, len(script))
	for _, c := range script {
		l := ScriptLine{ID: c.MessageID, Name: c.MessageName, APDU: c.Data}
		b, err := hex.DecodeString(c.Data)
		cmd, perr := apdu.ParseCommand(b)
		switch {
		case err != nil || perr != nil:
			l.APDU, l.Withheld = "", true // not a command: nothing of it is kept
		case cmd.INS == 0xE2:
			cmd.Data = make([]byte, len(cmd.Data))
			if zeroed, err := cmd.Bytes(); err == nil {
				l.APDU = strings.ToUpper(hex.EncodeToString(zeroed))
			} else {
				l.APDU = ""
			}
			l.Withheld = true
		}
		out = append(out, l)
	}
	return out
}

// queue checks op against the state the card will have once its queued
// tasks are done, and stores the task with its job in one transaction.
func (s *Service) queue(ctx context.Context, c *Card, op Operation, payload any) (*Task, error) {
	var raw, outline []byte
	switch p := payload.(type) {
	case scriptPayload:
		script, err := wallet.Script("cmd", p.Commands, p.Names)
		if err != nil {
			return nil, errorf(KindBadFormat, "script: %v", err)
		}
		raw, _ = json.Marshal(script)
		outline, _ = json.Marshal(outlineOf(script))
	case nil:
	default:
		raw, _ = json.Marshal(p)
	}
	var t *Task
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		var err error
		t, err = s.queueTx(ctx, tx, c, op, raw, outline)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "wallet task queued", "task_id", t.TaskID, "card_id", c.CardID, "operation", op)
	return t, nil
}

// QueueTx queues SUSPEND, RESUME or DELETE of a card in the caller's
// transaction (another domain acting on the card: the issuer API), with
// the same state checks as UpdateState.
func (s *Service) QueueTx(ctx context.Context, tx *store.Tx, cardID string, op Operation) (*Task, error) {
	switch op {
	case OpSuspend, OpResume, OpDelete:
	default:
		return nil, errorf(KindBadFormat, "operation must be SUSPEND, RESUME or DELETE")
	}
	c, err := cardTx(ctx, tx, cardID)
	if err != nil {
		return nil, err
	}
	if c.State == Erased {
		return nil, errorf(KindUnknownCard, "card %s is erased", cardID)
	}
	t, err := s.queueTx(ctx, tx, c, op, nil, nil)
	if err != nil {
		return nil, err
	}
	tx.AfterCommit(func() {
		s.log.InfoContext(ctx, "wallet task queued", "task_id", t.TaskID, "card_id", c.CardID, "operation", op)
	})
	return t, nil
}

// projected returns the state a card will have once its queued tasks are
// done, and how many tasks are queued or running.
func (s *Service) projected(ctx context.Context, tx *store.Tx, c *Card) (CardState, int, error) {
	ops, err := pendingOperationsTx(ctx, tx, c.CardID)
	if err != nil {
		return "", 0, err
	}
	projected := c.State
	for _, pending := range ops {
		projected = target(pending, projected)
	}
	return projected, len(ops), nil
}

func (s *Service) queueTx(ctx context.Context, tx *store.Tx, c *Card, op Operation, raw, outline []byte) (*Task, error) {
	projected, _, err := s.projected(ctx, tx, c)
	if err != nil {
		return nil, err
	}
	if !allowed(op, projected) {
		return nil, errorf(KindNotAllowed, "%s is not allowed for a card that is (or will be) %s", op, projected)
	}
	job, err := s.engine.Insert(ctx, tx, TaskArgs{CardID: c.CardID}, &engine.InsertOpts{Subject: "se:" + c.SEID})
	if err != nil {
		return nil, err
	}
	t := &Task{TaskID: fmt.Sprintf("pvh-%d", job.ID), CardID: c.CardID, SEID: c.SEID, Operation: op, Status: TaskQueued, JobID: job.ID}
	if err := insertTaskTx(ctx, tx, t, raw, outline, s.now().UnixMicro()); err != nil {
		return nil, err
	}
	return t, nil
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func (s *Service) issuerCard(ctx context.Context, issuerID, cardID string) (*Card, error) {
	c, err := s.Card(ctx, cardID)
	if err != nil {
		return nil, err
	}
	if c.IssuerID != issuerID || c.State == Erased {
		return nil, errorf(KindUnknownCard, "no card %s of issuer %s", cardID, issuerID)
	}
	return c, nil
}

// Card returns a card by its cardId.
func (s *Service) Card(ctx context.Context, cardID string) (*Card, error) {
	return readCard(ctx, s.db, cardID)
}

func (s *Service) cardByWalletID(ctx context.Context, walletCardID string) (*Card, error) {
	return readCardByWalletID(ctx, s.db, walletCardID)
}

// Tasks returns a card's tasks in the order they were asked.
func (s *Service) Tasks(ctx context.Context, cardID string) ([]Task, error) {
	return tasksOfCard(ctx, s.db, cardID)
}

// AccountCard is a card of a card account with its queued or running tasks.
type AccountCard struct {
	Card
	// Projected is the state the card will have once those tasks are done.
	Projected CardState
	Pending   int
}

// CardsOfAccountTx returns the cards (not erased) of an issuer's card
// account, read in tx.
func (s *Service) CardsOfAccountTx(ctx context.Context, tx *store.Tx, issuerID, cardAccountID string) ([]AccountCard, error) {
	ids, err := cardIDsOfAccountTx(ctx, tx, issuerID, cardAccountID)
	if err != nil {
		return nil, err
	}
	out := make([]AccountCard, 0, len(ids))
	for _, id := range ids {
		c, err := cardTx(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		projected, pending, err := s.projected(ctx, tx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, AccountCard{Card: *c, Projected: projected, Pending: pending})
	}
	return out, nil
}

// CardsOfAccount is CardsOfAccountTx in a read transaction of its own.
func (s *Service) CardsOfAccount(ctx context.Context, issuerID, cardAccountID string) ([]AccountCard, error) {
	var out []AccountCard
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = s.CardsOfAccountTx(ctx, tx, issuerID, cardAccountID)
		return err
	})
	return out, err
}

// CardByWalletID returns an issuer's card by its walletCardId.
func (s *Service) CardByWalletID(ctx context.Context, issuerID, walletCardID string) (*Card, error) {
	c, err := s.cardByWalletID(ctx, walletCardID)
	if err != nil {
		return nil, err
	}
	if c.IssuerID != issuerID || c.State == Erased {
		return nil, errorf(KindUnknownCard, "no card with walletCardId %s", walletCardID)
	}
	return c, nil
}

// TasksByIDTx returns the tasks named, read in tx.
func (s *Service) TasksByIDTx(ctx context.Context, tx *store.Tx, taskIDs []string) ([]Task, error) {
	out := make([]Task, 0, len(taskIDs))
	for _, id := range taskIDs {
		t, err := taskTx(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if t != nil {
			out = append(out, *t)
		}
	}
	return out, nil
}

// RemoveCardsTx physically removes cards and their tasks (the end of a
// consumer's deletion: nothing of the person stays). Cards with queued or
// running tasks are refused.
func (s *Service) RemoveCardsTx(ctx context.Context, tx *store.Tx, cardIDs []string) error {
	for _, id := range cardIDs {
		pending, err := removeCardTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if pending > 0 {
			return errorf(KindNotAllowed, "card %s still has %d task(s) queued or running", id, pending)
		}
	}
	return nil
}

// TaskView is a wallet task with its card, for the operator console.
type TaskView struct {
	Task
	WalletCardID string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// RecentTasks returns the newest wallet tasks, optionally in one status.
//
// q.Status is a task status; q.Search finds the tasks of a task, card,
// wallet card or secure element id; q.Before is a task id.
func (s *Service) RecentTasks(ctx context.Context, q store.ListQuery) ([]TaskView, error) {
	return recentTasks(ctx, s.db, q, min(max(q.Limit, 1), 500))
}

// TaskDetail returns any wallet task with the outline of its script (none
// for a task that carries no script), for the operator console.
func (s *Service) TaskDetail(ctx context.Context, taskID string) (*TaskView, []ScriptLine, error) {
	v, outline, err := taskViewOf(ctx, s.db, taskID)
	if err != nil {
		return nil, nil, err
	}
	var lines []ScriptLine
	if outline != "" {
		if err := json.Unmarshal([]byte(outline), &lines); err != nil {
			return nil, nil, fmt.Errorf("task %s: stored outline: %w", taskID, err)
		}
	}
	return v, lines, nil
}

// RecentOperations returns the newest device operations.
//
// q.Status is an operation status; q.Search finds the operations of an
// operation, card, purchase, secure element or device id; q.Before is an
// operation id.
func (s *Service) RecentOperations(ctx context.Context, q store.ListQuery) ([]*DeviceOperation, error) {
	return recentOperations(ctx, s.db, q, min(max(q.Limit, 1), 500))
}

// SecureElement is a secure element with the cards on it.
type SecureElement struct {
	SEID, DeviceID string
	Cards          []Card
}

// SecureElements returns the secure elements that hold a card (erased
// cards aside), with their cards, by secure-element id.
//
// q.Search finds the secure element of a secure element, device, card or
// wallet card id; q.Before is the secure-element id the page starts after;
// q.Limit counts secure elements.
func (s *Service) SecureElements(ctx context.Context, q store.ListQuery) ([]SecureElement, error) {
	cards, err := cardsOfSecureElements(ctx, s.db, q, min(max(q.Limit, 1), 500))
	if err != nil {
		return nil, err
	}
	var out []SecureElement
	for _, c := range cards {
		if len(out) == 0 || out[len(out)-1].SEID != c.SEID {
			out = append(out, SecureElement{SEID: c.SEID, DeviceID: c.DeviceID})
		}
		last := &out[len(out)-1]
		last.Cards = append(last.Cards, c)
	}
	return out, nil
}

// Resendable tells whether a FAILED task of op can be sent again: not a
// personalisation or a metadata update, whose payload is not kept.
func Resendable(op Operation) bool { return op != OpPersonalize && op != OpMetadataUpdate }

// ResendTask asks again what a FAILED wallet task asked (an operator's
// retry, once the cause is fixed), as a new task: a new taskId, so the
// wallet server carries it out rather than answer with the old task, and
// the FAILED one stays on record. Only state changes that carry no payload
// can be sent again (SUSPEND, RESUME, DELETE, ERASE, REDIRECT): a
// personalisation script and metadata are not kept once a task has ended.
func (s *Service) ResendTask(ctx context.Context, taskID string) (*Task, error) {
	var t *Task
	err := s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		failed, err := taskTx(ctx, tx, taskID)
		switch {
		case err != nil:
			return err
		case failed == nil:
			return errorf(KindUnknownCard, "unknown task %s", taskID)
		case failed.Status != TaskFailed:
			return errorf(KindNotAllowed, "task %s is %s; only a FAILED task can be sent again", taskID, failed.Status)
		case !Resendable(failed.Operation):
			return errorf(KindNotAllowed, "a %s task cannot be sent again: its payload is not kept; ask the TES again", failed.Operation)
		}
		c, err := cardTx(ctx, tx, failed.CardID)
		if err != nil {
			return err
		}
		t, err = s.queueTx(ctx, tx, c, failed.Operation, nil, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "wallet task sent again", "failed_task_id", taskID, "task_id", t.TaskID)
	return t, nil
}

// TaskOutcomeCounts counts the wallet tasks changed since a time by status
// and the wallet server's status code ("FAILED 432"); a task retrying the
// wallet server counts as "QUEUED retrying" (or PROCESSING).
func (s *Service) TaskOutcomeCounts(ctx context.Context, since time.Time) (map[string]int, error) {
	return taskOutcomes(ctx, s.db, since.UnixMicro())
}

// OperationOutcomeCounts counts the device operations started since a
// time by status and the TES's final status code ("FAILED 162").
func (s *Service) OperationOutcomeCounts(ctx context.Context, since time.Time) (map[string]int, error) {
	return operationOutcomes(ctx, s.db, since.UnixMicro())
}
