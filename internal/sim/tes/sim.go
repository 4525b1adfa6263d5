package tes

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/sim/fault"
	"github.com/provhub/provhub/internal/sim/felicacard"
	"github.com/provhub/provhub/internal/southbound"
	ws "github.com/provhub/provhub/internal/tes"
	"github.com/provhub/provhub/internal/wire"
)

// The card layout is felicacard's transit card.
const (
	SystemCode    = felicacard.TransitSystemCode
	PurseService  = felicacard.PurseService
	PurseBlock    = felicacard.PurseBlock
	ServiceName   = felicacard.ServiceName
	maxReaderFail = 3
)

var (
	purseArea    = fmt.Sprintf("%04X", felicacard.PurseArea)
	purseAreaKey = fmt.Sprintf("%04X", felicacard.PurseAreaKey)
)

// Config sets up a Simulator.
type Config struct {
	Logger *slog.Logger
	Clock  func() time.Time
	// SessionTTL ends a loop that has not finished this long after it
	// started (322) [2m].
	SessionTTL time.Duration
	// ReaderModeAttempts is how many refused reader-mode attempts a device
	// may make before it gets 192 [3].
	ReaderModeAttempts int
	Seed               uint64
	Faults             Faults
}

// Account is a card account (for stored value, the card id is the account
// id).
type Account struct {
	ID          string `json:"cardAccountId"`
	IssuerID    string `json:"issuerId"`
	DeviceID    string `json:"deviceId,omitempty"`
	Balance     int64  `json:"balance"`
	Blacklisted bool   `json:"blacklisted,omitempty"`
	Expired     bool   `json:"expired,omitempty"`
	Deleted     bool   `json:"deleted,omitempty"`
	// Parked is set when the card's balance was moved to the account.
	Parked bool `json:"parked,omitempty"`
	// parking is the purse a park wrote (balance 0) and the balance it
	// moves, kept until the park finishes, whatever loop finishes it.
	parking *pending
	// FromCard is the IDm of the physical card a reader-mode ingestion
	// created the account from.
	FromCard string `json:"fromCard,omitempty"`
}

// Purchase is money to add to (or take from) an account.
type Purchase struct {
	ID            string `json:"purchaseId"`
	CardAccountID string `json:"cardAccountId"`
	Amount        int64  `json:"amount"`
	Applied       bool   `json:"applied"`
	// writing is the purse a top-up wrote, kept until it is applied, so
	// that any later loop that reads it applies the purchase (once).
	writing *pending
}

type pending struct {
	purse   felica.Purse
	balance int64
}

// ExternalCard is a physical card the TES knows for reader mode.
type ExternalCard struct {
	IDm         string `json:"idm"`
	Blacklisted bool   `json:"blacklisted,omitempty"`
	Expired     bool   `json:"expired,omitempty"`
	// Account is set once the card has been ingested.
	Account string `json:"cardAccountId,omitempty"`
}

// Stats counts the simulator's work.
type Stats struct {
	Calls            int `json:"calls"`
	PurchasesApplied int `json:"purchases_applied"`
	Parked           int `json:"parked"`
	Ingested         int `json:"ingested"`
	Replays          int `json:"replays"`
}

// session is one loop.
type session struct {
	op, issuer, card, device, purchase string
	contents                           *ws.CardContents
	stage                              int
	idm                                felica.IDm
	started                            time.Time
	// last answer and the responses it answered, for replays.
	lastKey    string
	lastAnswer []byte
	done       bool
}

// Simulator is a TES device gateway.
type Simulator struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	mux *http.ServeMux

	mu        sync.Mutex
	rng       *rand.Rand
	faults    Faults
	stats     Stats
	issuers   map[string]bool
	accounts  map[string]*Account
	purchases map[string]*Purchase
	externals map[string]*ExternalCard
	sessions  map[string]*session
	failures  map[string]int // refused reader-mode attempts per device
	nextAcct  int
}

// New returns a Simulator.
func New(cfg Config) (*Simulator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 2 * time.Minute
	}
	if cfg.ReaderModeAttempts <= 0 {
		cfg.ReaderModeAttempts = maxReaderFail
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	s := &Simulator{cfg: cfg, log: cfg.Logger.With("component", "sim-tes"), now: cfg.Clock, mux: http.NewServeMux(),
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x7e5)), faults: cfg.Faults,
		issuers: map[string]bool{}, accounts: map[string]*Account{}, purchases: map[string]*Purchase{},
		externals: map[string]*ExternalCard{}, sessions: map[string]*session{}, failures: map[string]int{}}
	base := "/tes/devicegtwapi/1/0"
	s.mux.HandleFunc("POST "+base+ws.PathCardCommands, s.serve(ws.PathCardCommands))
	s.mux.HandleFunc("POST "+base+ws.PathParkCardCommands, s.serve(ws.PathParkCardCommands))
	s.mux.HandleFunc("POST "+base+ws.PathReaderModeCommands, s.serve(ws.PathReaderModeCommands))
	s.mountAdmin()
	return s, nil
}

// ServeHTTP serves the gateway and the admin endpoints.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// AddIssuer registers an issuer.
func (s *Simulator) AddIssuer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuers[id] = true
}

// AddAccount registers (or replaces) a card account; its issuer is
// registered too.
func (s *Simulator) AddAccount(a Account) error {
	if a.ID == "" || len(a.ID) > 48 || a.IssuerID == "" || len(a.IssuerID) > 16 || a.Balance < 0 {
		return fmt.Errorf("an account needs an id (1 to 48), an issuer (1 to 16) and a balance >= 0")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issuers[a.IssuerID] = true
	cp := a
	s.accounts[a.ID] = &cp
	return nil
}

// AddPurchase registers a purchase for an account.
func (s *Simulator) AddPurchase(p Purchase) error {
	if p.ID == "" || len(p.ID) > 64 {
		return fmt.Errorf("a purchase needs an id of 1 to 64 characters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[p.CardAccountID]; !ok {
		return fmt.Errorf("unknown card account %s", p.CardAccountID)
	}
	cp := p
	cp.Applied = false
	s.purchases[p.ID] = &cp
	return nil
}

// AddExternalCard registers a physical card for reader mode.
func (s *Simulator) AddExternalCard(c ExternalCard) error {
	id := strings.ToUpper(c.IDm)
	if b, err := hex.DecodeString(id); err != nil || len(b) != 8 {
		return fmt.Errorf("an external card needs an IDm of 8 bytes in hex")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := c
	cp.IDm = id
	s.externals[id] = &cp
	return nil
}

// AccountState returns a copy of an account.
func (s *Simulator) AccountState(id string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return Account{}, false
	}
	return *a, true
}

// ExternalCardState returns a copy of a physical card the TES knows, by
// its IDm in hex; its Account is set once it has been ingested.
func (s *Simulator) ExternalCardState(idm string) (ExternalCard, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.externals[strings.ToUpper(idm)]
	if !ok {
		return ExternalCard{}, false
	}
	return *c, true
}

// PurchaseState returns a copy of a purchase.
func (s *Simulator) PurchaseState(id string) (Purchase, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.purchases[id]
	if !ok {
		return Purchase{}, false
	}
	return *p, true
}

// Stats returns the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// reply is an answer: a status or the next batch / the end.
type reply struct {
	code     int
	message  string
	commands []ws.Command
	balance  *int64
	account  string
}

func fail(code int, format string, args ...any) reply {
	return reply{code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Simulator) serve(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kind, lat := s.fault(path)
		fault.Sleep(r.Context(), lat)
		if kind == "error" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		raw, err := readBody(w, r)
		var out []byte
		switch {
		case err != nil:
			out = s.encode("unknown", fail(ws.StatusBadFormat, "%v", err))
		case kind == "code":
			s.mu.Lock()
			code := s.faults.Code
			s.mu.Unlock()
			out = s.encode(sessionOf(raw), fail(code, "statusCode %d (fault knob)", code))
		default:
			out = s.handle(path, r.Header.Get("x-actor-id"), raw)
		}
		if kind == "lose" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var raw json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&raw); err != nil {
		return nil, fmt.Errorf("the body is not JSON")
	}
	return raw, nil
}

func (s *Simulator) encode(sessionID string, rep reply) []byte {
	res := ws.CommandsResponse{
		ResponseHeader: ws.ResponseHeader{ResponseID: fmt.Sprintf("tes-%d", s.rng.Uint64()), SessionID: sessionID,
			GenerationDateTime: s.now().UTC().Format(time.RFC3339), StatusCode: rep.code, StatusMessage: rep.message},
		Commands: rep.commands, Balance: rep.balance, CardAccountID: rep.account,
	}
	if rep.code == 0 && res.ResponseHeader.StatusMessage == "" {
		res.ResponseHeader.StatusMessage = "OK"
	}
	out, _ := json.Marshal(res)
	return out
}

// request is every operation's body, read leniently.
type request struct {
	RequestHeader *ws.RequestHeader `json:"requestHeader"`
	IssuerID      string            `json:"issuerId"`
	CardID        string            `json:"cardId"`
	PurchaseID    string            `json:"purchaseId"`
	DeviceID      string            `json:"deviceId"`
	Operation     string            `json:"operation"`
	CardContents  *ws.CardContents  `json:"cardContents"`
	StatusCode    *int              `json:"statusCode"`
	StatusMessage string            `json:"statusMessage"`
	Responses     []ws.Response     `json:"responses"`
	// ResponseTimeMs is a number (double) when present.
	ResponseTimeMs json.RawMessage `json:"responseTimeMs"`
}

// sessionOf is the loop a request belongs to: its requestHeader's
// sessionId, or, for a request that carries only the published members
// (requestHeader is our assumption), its device, which runs one loop at a
// time.
func sessionOf(raw []byte) string {
	var req request
	_ = json.Unmarshal(raw, &req)
	return req.session()
}

func (r *request) session() string {
	switch {
	case r.RequestHeader != nil && r.RequestHeader.SessionID != "":
		return r.RequestHeader.SessionID
	case r.DeviceID != "":
		return "device:" + r.DeviceID
	}
	return "unknown"
}

func (s *Simulator) handle(path, actor string, raw []byte) []byte {
	b, err := wire.Decode(raw)
	if err != nil {
		return s.encode("unknown", fail(ws.StatusBadFormat, "%v", err))
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		return s.encode("unknown", fail(ws.StatusBadFormat, "the body does not have the operation's shape: %v", err))
	}
	sessionID := req.session()
	if rep, ok := validate(path, actor, b, &req); !ok {
		return s.encode(sessionID, rep)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Calls++
	sess := s.sessions[sessionID]
	key := responsesKey(req.StatusCode, req.Responses)
	if sess != nil && sess.lastAnswer != nil && sess.lastKey == key {
		s.stats.Replays++
		return sess.lastAnswer // a repeated request: the same answer
	}
	rep := s.step(path, &req, sessionID, sess)
	out := s.encode(sessionID, rep)
	if sess = s.sessions[sessionID]; sess != nil {
		sess.lastKey, sess.lastAnswer = key, out
		if rep.code != 0 || len(rep.commands) == 0 {
			sess.done = true
		}
	}
	return out
}

func responsesKey(status *int, rs []ws.Response) string {
	var b strings.Builder
	if status != nil {
		b.WriteString(strconv.Itoa(*status))
	}
	b.WriteByte('|')
	for _, r := range rs {
		b.WriteString(r.ID)
		b.WriteByte('=')
		b.WriteString(strings.ToUpper(r.Data))
		b.WriteByte(';')
	}
	return b.String()
}

// TES members' published forms (api/tes.yaml).
var (
	issuerIDText      = wire.Text{Required: true, Min: 1, Max: 16}
	deviceIDText      = wire.Text{Required: true, Min: 1, Max: 48}
	purchaseIDText    = wire.Text{Max: 64}
	cardIDText        = wire.Text{Max: 48}
	statusMessageText = wire.Text{Max: 256}
	responseIDText    = wire.Text{Required: true, Min: 1, Max: 64}
	responseDataText  = wire.Text{Required: true, Max: 512, Pattern: southbound.HexPattern}
)

// validate applies the published lengths and what each operation needs:
// b is the body as sent, req the same read into the operation's shape.
func validate(path, actor string, b wire.Object, req *request) (reply, bool) {
	switch {
	case actor == "":
		return fail(ws.StatusMissing, "x-actor-id is missing"), false
	case len(actor) > 32:
		return fail(ws.StatusBadFormat, "x-actor-id is longer than 32 characters"), false
	}
	refuse := func(err error) (reply, bool) {
		p := wire.ProblemOf(err)
		if p == nil {
			return fail(ws.StatusBadFormat, "%v", err), false
		}
		return fail(southbound.StatusOf(p), "%s", p.Error()), false
	}
	if _, err := southbound.ReadRequestHeader(b, false); err != nil {
		return refuse(err)
	}
	if _, _, err := b.Number("responseTimeMs", false); err != nil {
		return refuse(err)
	}
	for _, m := range []struct {
		name string
		t    wire.Text
	}{
		{"issuerId", issuerIDText}, {"deviceId", deviceIDText}, {"purchaseId", purchaseIDText},
		{"cardId", cardIDText}, {"statusMessage", statusMessageText},
	} {
		if _, err := b.String(m.name, m.t); err != nil {
			return refuse(err)
		}
	}
	if path != ws.PathReaderModeCommands && req.CardID == "" {
		return fail(ws.StatusMissing, "cardId is required"), false
	}
	want := map[string][]string{ws.PathCardCommands: {ws.OpTopUp, ws.OpReadBalance, ""},
		ws.PathParkCardCommands: {ws.OpPark, ""}, ws.PathReaderModeCommands: {ws.OpReaderMode, ""}}[path]
	if !slices.Contains(want, req.Operation) {
		return fail(ws.StatusBadFormat, "operation %q is not one of this call's", req.Operation), false
	}
	if req.Operation == ws.OpTopUp && req.PurchaseID == "" {
		return fail(ws.StatusMissing, "purchaseId is required for a top-up"), false
	}
	responses, err := b.Objects("responses", false)
	if err != nil {
		return refuse(err)
	}
	for _, r := range responses {
		if _, err := r.String("id", responseIDText); err != nil {
			return refuse(err)
		}
		if _, err := r.String("data", responseDataText); err != nil {
			return refuse(err)
		}
	}
	if path == ws.PathReaderModeCommands && len(req.Responses) == 0 && req.CardContents == nil {
		return fail(ws.StatusMissing, "cardContents is required to start reader mode"), false
	}
	return reply{}, true
}

// step moves a loop on. Called with s.mu held.
func (s *Simulator) step(path string, req *request, sessionID string, sess *session) reply {
	now := s.now()
	if sess == nil {
		if len(req.Responses) > 0 {
			return fail(ws.StatusUnknownSession, "no loop %s", sessionID)
		}
		for _, other := range s.sessions {
			if other.device == req.DeviceID && !other.done && now.Sub(other.started) < s.cfg.SessionTTL {
				return fail(ws.StatusBusy, "another operation runs for device %s", req.DeviceID)
			}
		}
		sess = &session{op: req.Operation, issuer: req.IssuerID, card: req.CardID, device: req.DeviceID, purchase: req.PurchaseID,
			contents: req.CardContents, started: now}
		if sess.op == "" {
			sess.op = map[string]string{ws.PathCardCommands: ws.OpReadBalance, ws.PathParkCardCommands: ws.OpPark, ws.PathReaderModeCommands: ws.OpReaderMode}[path]
		}
		if rep, ok := s.admit(path, sess); !ok {
			if path == ws.PathReaderModeCommands && rep.code != ws.StatusReaderModeExceeded {
				s.failures[req.DeviceID]++
			}
			return rep
		}
		s.sessions[sessionID] = sess
		return s.poll()
	}
	if sess.done {
		return fail(ws.StatusFailed, "loop %s has ended", sessionID)
	}
	if now.Sub(sess.started) >= s.cfg.SessionTTL {
		sess.done = true
		return fail(ws.StatusTTLExpired, "loop %s started %s ago", sessionID, now.Sub(sess.started).Round(time.Second))
	}
	if req.StatusCode != nil && *req.StatusCode != 0 {
		return fail(*req.StatusCode, "the device reported %d: %s", *req.StatusCode, req.StatusMessage)
	}
	return s.advance(sess, req.Responses)
}

// admit checks that a loop may start.
func (s *Simulator) admit(path string, sess *session) (reply, bool) {
	if !s.issuers[sess.issuer] {
		return fail(ws.StatusUnknownIssuer, "unknown issuer %s", sess.issuer), false
	}
	if path == ws.PathReaderModeCommands {
		if s.failures[sess.device] >= s.cfg.ReaderModeAttempts {
			return fail(ws.StatusReaderModeExceeded, "device %s made %d refused reader-mode attempts", sess.device, s.failures[sess.device]), false
		}
		c := sess.contents
		if !strings.EqualFold(c.SystemCode, fmt.Sprintf("%04X", SystemCode)) {
			return fail(ws.StatusBadSystemCode, "system code %s is not supported", c.SystemCode), false
		}
		if c.CardServiceID != ServiceName {
			return fail(ws.StatusBadService, "service %q is not supported", c.CardServiceID), false
		}
		areaOK := false
		for _, a := range c.AreaCodeList {
			areaOK = areaOK || (strings.EqualFold(a.AreaCode, purseArea) && strings.EqualFold(a.KeyVersion, purseAreaKey))
		}
		if !areaOK {
			return fail(ws.StatusBadAreaData, "the purse area %s with key version %s is missing", purseArea, purseAreaKey), false
		}
		idm, err := hex.DecodeString(c.IDm)
		if err != nil || len(idm) != 8 {
			return fail(ws.StatusBadFormat, "idm must be 8 bytes in hex"), false
		}
		ext := s.externals[strings.ToUpper(c.IDm)]
		switch {
		case ext == nil:
			return fail(ws.StatusBadAreaData, "card %s is not one of ours", c.IDm), false
		case ext.Blacklisted:
			return fail(ws.StatusBlacklisted, "card %s is blacklisted", c.IDm), false
		case ext.Expired:
			return fail(ws.StatusExpired, "card %s is expired", c.IDm), false
		case ext.Account != "":
			return fail(ws.StatusAlreadyProvisioned, "card %s was ingested as %s", c.IDm, ext.Account), false
		}
		copy(sess.idm[:], idm)
		return reply{}, true
	}
	a := s.accounts[sess.card]
	switch {
	case a == nil || a.IssuerID != sess.issuer:
		return fail(ws.StatusUnknownCard, "unknown card %s", sess.card), false
	case a.DeviceID != "" && a.DeviceID != sess.device:
		return fail(ws.StatusUnknownDevice, "card %s is not on device %s", sess.card, sess.device), false
	case a.Deleted || a.Parked:
		return fail(ws.StatusDeleted, "card %s is deleted or parked", sess.card), false
	case a.Blacklisted:
		return fail(ws.StatusBlacklisted, "card %s is blacklisted", sess.card), false
	case a.Expired:
		return fail(ws.StatusExpired, "card %s is expired", sess.card), false
	}
	if sess.op == ws.OpTopUp {
		p := s.purchases[sess.purchase]
		if p == nil || p.CardAccountID != sess.card {
			return fail(ws.StatusFailed, "unknown purchase %s for card %s", sess.purchase, sess.card), false
		}
		if p.Applied {
			bal := a.Balance
			return reply{balance: &bal, message: "purchase already applied"}, false
		}
	}
	return reply{}, true
}

func (s *Simulator) poll() reply {
	p, _ := felica.Polling(SystemCode, 0x00, 0x00).Encode()
	return reply{commands: []ws.Command{{ID: "poll", Kind: ws.KindFeliCa, Data: strings.ToUpper(hex.EncodeToString(p))}}}
}

func command(id string, c felica.Command) ws.Command {
	p, _ := c.Encode()
	return ws.Command{ID: id, Kind: ws.KindFeliCa, Data: strings.ToUpper(hex.EncodeToString(p))}
}

// response finds and decodes the response to command id.
func response(rs []ws.Response, id string) (felica.Response, bool) {
	for _, r := range rs {
		if r.ID == id {
			raw, err := hex.DecodeString(r.Data)
			if err != nil {
				return felica.Response{}, false
			}
			res, err := felica.DecodeResponse(raw)
			return res, err == nil
		}
	}
	return felica.Response{}, false
}

func readPurse(rs []ws.Response, id string) (felica.Purse, bool) {
	res, ok := response(rs, id)
	if !ok || !res.OK() || len(res.Data) != 1 {
		return felica.Purse{}, false
	}
	p, err := felica.ParsePurse(res.Data[0])
	return p, err == nil
}

// advance runs the loop's next stage on the previous batch's responses.
func (s *Simulator) advance(sess *session, rs []ws.Response) reply {
	switch sess.stage {
	case 0: // the polling answered: learn the IDm, read the purse
		res, ok := response(rs, "poll")
		if !ok || res.Code != felica.CodePolling+1 {
			return fail(ws.StatusIncomplete, "no answer to the polling")
		}
		if sess.op == ws.OpReaderMode && res.IDm != sess.idm {
			return fail(ws.StatusBadAreaData, "the card answering is not the card described")
		}
		sess.idm, sess.stage = res.IDm, 1
		return reply{commands: []ws.Command{command("read", felica.Read(sess.idm, PurseService, PurseBlock))}}
	case 1: // the purse was read
		purse, ok := readPurse(rs, "read")
		if !ok {
			return fail(ws.StatusIncomplete, "the purse could not be read")
		}
		return s.decide(sess, purse)
	case 2: // written, and read back
		if w, ok := response(rs, "write"); !ok || !w.OK() {
			return fail(ws.StatusIncomplete, "the purse write failed")
		}
		purse, ok := readPurse(rs, "verify")
		if !ok || purse != s.expected(sess).purse {
			return fail(ws.StatusIncomplete, "the purse does not hold what was written")
		}
		return s.finish(sess)
	}
	return fail(ws.StatusFailed, "the loop is in no known stage")
}

// expected is the write a top-up or park is waiting to see.
func (s *Simulator) expected(sess *session) *pending {
	if sess.op == ws.OpTopUp {
		return s.purchases[sess.purchase].writing
	}
	return s.accounts[sess.card].parking
}

// decide chooses what to do with the purse just read.
func (s *Simulator) decide(sess *session, purse felica.Purse) reply {
	switch sess.op {
	case ws.OpReadBalance:
		bal := int64(purse.Balance)
		return reply{balance: &bal}
	case ws.OpReaderMode:
		return s.ingest(sess, purse)
	}
	if w := s.expected(sess); w != nil && purse == w.purse {
		return s.finish(sess) // written by an earlier run of this loop or another
	}
	switch sess.op {
	case ws.OpTopUp:
		p := s.purchases[sess.purchase]
		next := int64(purse.Balance) + p.Amount
		if next < 0 {
			return fail(ws.StatusInsufficient, "balance %d cannot pay %d", purse.Balance, -p.Amount)
		}
		if next > 0xFFFFFFFF {
			return fail(ws.StatusFailed, "the balance would overflow the purse")
		}
		p.writing = &pending{purse: felica.Purse{Balance: uint32(next), Counter: purse.Counter + 1}, balance: next}
	case ws.OpPark:
		s.accounts[sess.card].parking = &pending{purse: felica.Purse{Balance: 0, Counter: purse.Counter + 1}, balance: int64(purse.Balance)}
	}
	sess.stage = 2
	return reply{commands: []ws.Command{
		command("write", felica.Write(sess.idm, PurseService, PurseBlock, s.expected(sess).purse.Block())),
		command("verify", felica.Read(sess.idm, PurseService, PurseBlock)),
	}}
}

// finish ends a top-up or park whose card holds what was written.
func (s *Simulator) finish(sess *session) reply {
	a := s.accounts[sess.card]
	switch sess.op {
	case ws.OpTopUp:
		p := s.purchases[sess.purchase]
		if !p.Applied {
			p.Applied, a.Balance = true, p.writing.balance
			p.writing = nil
			s.stats.PurchasesApplied++
		}
	case ws.OpPark:
		if !a.Parked {
			a.Parked, a.Balance = true, a.parking.balance
			a.parking = nil
			s.stats.Parked++
		}
	}
	bal := a.Balance
	return reply{balance: &bal}
}

// ingest creates the account of a physical card whose purse was read.
func (s *Simulator) ingest(sess *session, purse felica.Purse) reply {
	s.nextAcct++
	id := "RM-" + strconv.Itoa(s.nextAcct)
	idm := strings.ToUpper(hex.EncodeToString(sess.idm[:]))
	s.accounts[id] = &Account{ID: id, IssuerID: sess.issuer, DeviceID: sess.device, Balance: int64(purse.Balance), FromCard: idm}
	s.externals[idm].Account = id
	delete(s.failures, sess.device)
	s.stats.Ingested++
	bal := int64(purse.Balance)
	return reply{balance: &bal, account: id}
}
