package wallet

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/sim/fault"
	"github.com/provhub/provhub/internal/sim/felicacard"
	ws "github.com/provhub/provhub/internal/wallet"
)

// Stats count what the simulator answered.
type Stats struct {
	SendScript    int `json:"send_script"`
	UpdateCard    int `json:"update_card"`
	GetTaskStatus int `json:"get_task_status"`
	// PushNotification counts pushNotification calls (repeats included).
	PushNotification int `json:"push_notification"`
	// Busy counts 321 answers given because a task was running on the
	// secure element (not the forced ones): a hub that serializes per
	// secure element causes none.
	Busy      int `json:"busy"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	// MaxRunning is the most tasks that ran at once (on different secure
	// elements).
	MaxRunning int `json:"max_running"`
	// Applied counts the tasks carried out (ended COMPLETED or FAILED);
	// the journal at /admin/applied lists them.

	// Provisioned counts the cards the published flow provisioned.
	Provisioned int `json:"provisioned"`
	// AssetsFetched counts getAsset calls; AssetsVerified the assets that
	// were what they claimed (and are held since), AssetsRejected those
	// that were not.
	AssetsFetched  int `json:"assets_fetched"`
	AssetsVerified int `json:"assets_verified"`
	AssetsRejected int `json:"assets_rejected"`
}

// Config sets up a Simulator.
type Config struct {
	Logger *slog.Logger
	// TaskDelay is how long a task stays PROCESSING before it runs [20ms].
	TaskDelay time.Duration
	Faults    Faults
	Seed      uint64
	// HubURL is the hub's base URL, which devices call after a REDIRECT
	// (the hub's device API); SetHubURL can set it later.
	HubURL string
	// PartnerID and PartnerSecret are the simulator's credentials as a
	// wallet-server partner of the hub, with which it signs the calls it
	// makes for its devices (startReaderMode); SetPartner can set them
	// later.
	PartnerID, PartnerSecret string
	// DeviceRetryFor is how long a device keeps calling a hub that cannot
	// be reached or answers 921 before it gives the loop up [30s]: a
	// phone retries through a hub's restart.
	DeviceRetryFor time.Duration
}

type card struct {
	id, seID   string
	instance   apdu.AID
	deleted    bool
	descriptor json.RawMessage
	redirects  int
	// redirect is what the last REDIRECT told the device.
	redirect ws.RedirectData
	// felica is the transit card the applet holds, for command loops.
	felica *felicacard.Card
}

type task struct {
	id, seID, op string
	cardID       string
	status       string
	message      string
}

type device struct {
	deviceID string
	se       *secureElement
	pod      string
	// external is the physical card held to the reader, for reader mode.
	external *felicacard.Card
	runs     []DeviceRun
	// notifications are what the wallet server pushed to the device.
	notifications []DeviceNotification
}

// Simulator is an in-memory wallet server. It is an http.Handler.
type Simulator struct {
	log     *slog.Logger
	delay   time.Duration
	mux     *http.ServeMux
	mu      sync.Mutex
	devices map[string]*device // by seId (upper case)
	cards   map[string]*card
	tasks   map[string]*task // by seId + "/" + taskId
	running map[string]string
	faults  Faults
	rng     *mrand.Rand
	stats   Stats
	journal []AppliedTask
	wg      sync.WaitGroup
	// retryFor is Config.DeviceRetryFor.
	retryFor time.Duration
	// hubURL is where devices call the hub's device API.
	hubURL  string
	podURLs map[string]string
	client  *http.Client
	// partnerID and partnerSecret sign startReaderMode and the wallet
	// server's calls on the hub.
	partnerID, partnerSecret string
	// walletAPIURL is where the hub serves the wallet server's calls.
	walletAPIURL string
	// assets are the assets fetched and verified, by GUID.
	assets map[string]FetchedAsset
}

// New returns a simulator with no devices.
func New(cfg Config) (*Simulator, error) {
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TaskDelay <= 0 {
		cfg.TaskDelay = 20 * time.Millisecond
	}
	if cfg.DeviceRetryFor <= 0 {
		cfg.DeviceRetryFor = 30 * time.Second
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	s := &Simulator{log: cfg.Logger.With("component", "wallet_sim"), delay: cfg.TaskDelay,
		devices: map[string]*device{}, cards: map[string]*card{}, tasks: map[string]*task{}, running: map[string]string{},
		faults: cfg.Faults, rng: mrand.New(mrand.NewPCG(seed, seed+1)), hubURL: strings.TrimRight(cfg.HubURL, "/"),
		client: &http.Client{Timeout: 30 * time.Second}, partnerID: cfg.PartnerID, partnerSecret: cfg.PartnerSecret,
		retryFor: cfg.DeviceRetryFor, assets: map[string]FetchedAsset{}}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /sendScript", s.handle("sendScript", s.sendScript))
	s.mux.HandleFunc("POST /updateCard", s.handle("updateCard", s.updateCard))
	s.mux.HandleFunc("POST /getTaskStatus", s.handle("getTaskStatus", s.getTaskStatus))
	s.mux.HandleFunc("POST /pushNotification", s.handle("pushNotification", s.pushNotification))
	s.mux.HandleFunc("GET /admin/secure-elements/{se_id}/notifications", s.adminNotifications)
	s.mux.HandleFunc("POST /admin/devices", s.adminAddDevice)
	s.mux.HandleFunc("POST /admin/cards", s.adminAddCard)
	s.mux.HandleFunc("POST /admin/provision", s.adminProvision)
	s.mux.HandleFunc("GET /admin/assets", func(w http.ResponseWriter, _ *http.Request) { fault.WriteJSON(w, http.StatusOK, s.Assets()) })
	s.mux.HandleFunc("GET /admin/secure-elements/{se_id}", s.adminSecureElement)
	fault.Mount(s.mux, s.Faults, s.SetFaults)
	s.mux.HandleFunc("GET /admin/applied", func(w http.ResponseWriter, _ *http.Request) { fault.WriteJSON(w, http.StatusOK, s.Applied()) })
	s.mux.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, _ *http.Request) { fault.WriteJSON(w, http.StatusOK, s.Stats()) })
	s.mux.HandleFunc("PUT /admin/cards/{wallet_card_id}/balance", s.adminSetBalance)
	s.mux.HandleFunc("POST /admin/secure-elements/{se_id}/external-card", s.adminHoldCard)
	s.mux.HandleFunc("POST /admin/secure-elements/{se_id}/reader-mode", s.adminReaderMode)
	s.mux.HandleFunc("GET /admin/secure-elements/{se_id}/runs", func(w http.ResponseWriter, r *http.Request) {
		fault.WriteJSON(w, http.StatusOK, s.Runs(r.PathValue("se_id")))
	})
	return s, nil
}

func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Wait returns when every started task has finished (for tests and shutdown).
func (s *Simulator) Wait() { s.wg.Wait() }

// AddDevice registers a device and its secure element.
func (s *Simulator) AddDevice(seID, deviceID string) error {
	if !seIDPattern.MatchString(seID) {
		return fmt.Errorf("seId %q is not 1 to 24 hex bytes", seID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := normalizeSE(seID)
	if _, ok := s.devices[id]; !ok {
		s.devices[id] = &device{deviceID: deviceID, se: newSecureElement(id)}
	}
	return nil
}

// AddCard registers a wallet card on a device. With an instance AID it
// also installs that applet instance (selectable, not yet personalised);
// without one, the card's instance is the first one a script sent for the
// card installs (as when the hub provisions it).
func (s *Simulator) AddCard(walletCardID, seID string, instanceAID apdu.AID) error {
	if walletCardID == "" || len(walletCardID) > 64 || (instanceAID != nil && !instanceAID.Valid()) {
		return errors.New("a wallet card needs an id of 1 to 64 characters and, if given, a 5 to 16 byte instance AID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[normalizeSE(seID)]
	if !ok {
		return fmt.Errorf("unknown secure element %s", seID)
	}
	if _, exists := s.cards[walletCardID]; exists {
		return fmt.Errorf("wallet card %s exists", walletCardID)
	}
	s.cards[walletCardID] = &card{id: walletCardID, seID: normalizeSE(seID), instance: instanceAID}
	if instanceAID != nil {
		d.se.instances[key(instanceAID)] = &instance{aid: instanceAID, state: apdu.StateSelectable, data: map[uint16][]byte{}}
	}
	return nil
}

// InstanceState is what the emulator holds for one applet instance.
type InstanceState struct {
	AID    string            `json:"aid"`
	State  byte              `json:"state"`
	Locked bool              `json:"locked"`
	Data   map[string]string `json:"data"` // DGI (hex) -> value (hex)
}

// SecureElementState is a secure element as the emulator holds it, with
// the hub pod that last called about it.
type SecureElementState struct {
	SEID      string          `json:"se_id"`
	DeviceID  string          `json:"device_id"`
	LastPod   string          `json:"last_pod"`
	Instances []InstanceState `json:"instances"`
}

// SecureElement returns a copy of a secure element's state.
func (s *Simulator) SecureElement(seID string) (SecureElementState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[normalizeSE(seID)]
	if !ok {
		return SecureElementState{}, false
	}
	out := SecureElementState{SEID: d.se.id, DeviceID: d.deviceID, LastPod: d.pod, Instances: []InstanceState{}}
	for _, inst := range d.se.instances {
		is := InstanceState{AID: key(inst.aid), State: inst.state, Locked: inst.locked, Data: map[string]string{}}
		for dgi, v := range inst.data {
			is.Data[fmt.Sprintf("%04X", dgi)] = hex.EncodeToString(v)
		}
		out.Instances = append(out.Instances, is)
	}
	sort.Slice(out.Instances, func(i, j int) bool { return out.Instances[i].AID < out.Instances[j].AID })
	return out, true
}

// Stats returns the counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

var seIDPattern = regexp.MustCompile(`^([0-9a-fA-F][0-9a-fA-F]){1,24}$`)

func normalizeSE(id string) string {
	b, err := hex.DecodeString(id)
	if err != nil {
		return id
	}
	return key(b)
}

// reply is an operation's answer: a status code and, for getTaskStatus, the
// task state.
type reply struct {
	code       int
	message    string
	taskStatus string
}

type operation func(pod string, req body) reply

// handle wraps an operation with decoding, fault injection and the answer.
func (s *Simulator) handle(name string, op operation) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		req, decodeErr := decode(raw)
		sessionID := req.sessionID()
		if err != nil {
			decodeErr = &fieldError{code: ws.StatusBadFormat, msg: "body too large or unreadable"}
		}
		s.mu.Lock()
		f := &s.faults
		latency := time.Duration(f.LatencyMS) * time.Millisecond
		hang := time.Duration(f.HangMS) * time.Millisecond
		drawn := fault.Draw(s.rng, name, f.knobs())
		codeNow := 0
		if drawn == "code" {
			codeNow = f.Code
		}
		errorNow, busyNow, timeoutNow, malformedNow := drawn == "error", drawn == "busy", drawn == "timeout", drawn == "malformed"
		failedNow, serverErrorNow := drawn == "failed", drawn == "server_error"
		s.mu.Unlock()
		fault.Sleep(r.Context(), latency)
		if errorNow {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var rep reply
		switch {
		case decodeErr != nil:
			rep = decodeErr.reply()
		case busyNow:
			rep = reply{code: ws.StatusDeviceBusy, message: "another operation is running on this device"}
		case codeNow != 0:
			rep = reply{code: codeNow, message: fmt.Sprintf("statusCode %d (fault knob)", codeNow)}
		case failedNow:
			rep = reply{code: ws.StatusOperationFailed, message: "operation failed (fault knob)"}
		case serverErrorNow:
			rep = reply{code: ws.StatusServerError, message: "unexpected server error (fault knob)"}
		case r.Header.Get("x-pod") == "":
			rep = reply{code: ws.StatusMissing, message: "x-pod header is missing"}
		case len(r.Header.Get("x-pod")) > 128:
			rep = reply{code: ws.StatusBadFormat, message: "x-pod header is longer than 128 characters"}
		default:
			rep = op(r.Header.Get("x-pod"), req)
		}
		s.log.InfoContext(r.Context(), "wallet call", "operation", name, "status_code", rep.code)
		if timeoutNow {
			if hang <= 0 {
				hang = 30 * time.Second
			}
			fault.Sleep(r.Context(), hang)
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		if malformedNow {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"responseHeader": {"statusCode": `))
			return
		}
		hdr := ws.ResponseHeader{ResponseID: newID(), SessionID: sessionID,
			GenerationDateTime: time.Now().UTC().Format(time.RFC3339), StatusCode: rep.code, StatusMessage: rep.message}
		if name == "getTaskStatus" {
			fault.WriteJSON(w, http.StatusOK, ws.GetTaskStatusResponse{ResponseHeader: hdr, TaskStatus: rep.taskStatus})
			return
		}
		fault.WriteJSON(w, http.StatusOK, ws.HeaderOnlyResponse{ResponseHeader: hdr})
	}
}

func (s *Simulator) sendScript(pod string, req body) reply {
	if e := req.need("requestHeader", "taskId", "walletCardId", "seId", "apduCommands"); e != nil {
		return e.reply()
	}
	var cmds [][]byte
	var ids []string
	if e := req.script(&cmds, &ids); e != nil {
		return e.reply()
	}
	seID, taskID, cardID := normalizeSE(req.str("seId")), req.str("taskId"), req.str("walletCardId")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.SendScript++
	if t, ok := s.tasks[seID+"/"+taskID]; ok {
		return s.repeat(seID, pod, t, "sendScript")
	}
	d, c, rep := s.lookup(seID, cardID)
	if c == nil {
		return rep
	}
	d.pod = pod
	if c.deleted {
		return reply{code: ws.StatusNotAllowed, message: "the card is deleted"}
	}
	if rep, busy := s.busy(seID); busy {
		return rep
	}
	t := s.start(seID, taskID, cardID, "sendScript")
	s.later(t, func() {
		sess := d.se.session()
		defer func() {
			if c.instance == nil && sess.installed != nil {
				c.instance = sess.installed
			}
		}()
		for i, cmd := range cmds {
			res, _ := apdu.ParseResponse(sess.exec(cmd))
			if !res.OK() {
				t.status, t.message = ws.TaskFailed, fmt.Sprintf("command %s failed with SW %04X", ids[i], res.SW)
				return
			}
		}
		t.status = ws.TaskCompleted
	})
	return reply{code: ws.StatusOK}
}

func (s *Simulator) updateCard(pod string, req body) reply {
	if e := req.need("requestHeader", "taskId", "walletCardId", "seId", "operation"); e != nil {
		return e.reply()
	}
	op := req.str("operation")
	switch op {
	case ws.OpSuspend, ws.OpResume, ws.OpDelete, ws.OpMetadataUpdate, ws.OpRedirect, ws.OpErase:
	default:
		return reply{code: ws.StatusBadFormat, message: "operation must be SUSPEND, RESUME, DELETE, METADATA_UPDATE, REDIRECT or ERASE"}
	}
	descriptor, hasDescriptor, err := req.Object.Object("cardDescriptor", false)
	if err != nil {
		return refusal(err).reply()
	}
	if hasDescriptor {
		if e := checkDescriptor(descriptor); e != nil {
			return e.reply()
		}
	}
	if op == ws.OpMetadataUpdate && !hasDescriptor {
		return reply{code: ws.StatusMissing, message: "cardDescriptor is required with METADATA_UPDATE"}
	}
	var redirect ws.RedirectData
	if op == ws.OpRedirect {
		raw, ok := req.Raw("redirectData"), req.Has("redirectData")
		if !ok {
			return reply{code: ws.StatusMissing, message: "redirectData is required with REDIRECT"}
		}
		if err := json.Unmarshal(raw, &redirect); err != nil || redirect.OperationID == "" || redirect.DeviceToken == "" ||
			len(redirect.OperationID) > 64 || len(redirect.DeviceToken) > 128 {
			return reply{code: ws.StatusBadFormat, message: "redirectData must be {operationId, deviceToken}"}
		}
	}
	seID, taskID, cardID := normalizeSE(req.str("seId")), req.str("taskId"), req.str("walletCardId")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.UpdateCard++
	// A taskId seen before is that task, even when it has since erased
	// the card: the hub repeats a call whose answer it lost.
	if t, ok := s.tasks[seID+"/"+taskID]; ok {
		return s.repeat(seID, pod, t, op)
	}
	d, c, rep := s.lookup(seID, cardID)
	if c == nil {
		return rep
	}
	d.pod = pod
	inst := d.se.instances[key(c.instance)]
	switch {
	case c.deleted && op != ws.OpErase:
		return reply{code: ws.StatusNotAllowed, message: "the card is deleted"}
	case op == ws.OpSuspend && inst != nil && inst.locked:
		return reply{code: ws.StatusNotAllowed, message: "the card is already suspended"}
	case op == ws.OpResume && (inst == nil || !inst.locked):
		return reply{code: ws.StatusNotAllowed, message: "the card is not suspended"}
	}
	if rep, busy := s.busy(seID); busy {
		return rep
	}
	t := s.start(seID, taskID, cardID, op)
	s.later(t, func() {
		inst := d.se.instances[key(c.instance)]
		switch op {
		case ws.OpSuspend, ws.OpResume:
			if inst == nil {
				t.status, t.message = ws.TaskFailed, "the applet instance is gone"
				return
			}
			inst.locked = op == ws.OpSuspend
		case ws.OpDelete:
			delete(d.se.instances, key(c.instance))
			c.deleted = true
		case ws.OpErase:
			delete(d.se.instances, key(c.instance))
			delete(s.cards, c.id)
		case ws.OpMetadataUpdate:
			c.descriptor = req.Raw("cardDescriptor")
			s.fetchNewArt(c.descriptor)
		case ws.OpRedirect:
			c.redirects++
			c.redirect = redirect
			s.redirected(d, c, redirect)
		}
		t.status = ws.TaskCompleted
	})
	return reply{code: ws.StatusOK}
}

func (s *Simulator) getTaskStatus(pod string, req body) reply {
	if e := req.need("requestHeader", "taskId", "seId"); e != nil {
		return e.reply()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.GetTaskStatus++
	t, ok := s.tasks[normalizeSE(req.str("seId"))+"/"+req.str("taskId")]
	if !ok {
		return reply{code: ws.StatusUnknownTask, message: "no such task on this secure element"}
	}
	if d, ok := s.devices[t.seID]; ok {
		d.pod = pod
	}
	return reply{code: ws.StatusOK, taskStatus: t.status, message: t.message}
}

// lookup finds the device and card; the caller holds mu.
func (s *Simulator) lookup(seID, cardID string) (*device, *card, reply) {
	d, ok := s.devices[seID]
	c, cok := s.cards[cardID]
	if !ok || !cok || c.seID != seID {
		return nil, nil, reply{code: ws.StatusUnknownCard, message: "no such virtual card on this secure element"}
	}
	return d, c, reply{}
}

// repeat answers a taskId seen before: the same operation is acknowledged
// again (the hub retries with the same taskId), another one is refused.
// The caller holds mu.
func (s *Simulator) repeat(seID, pod string, t *task, op string) reply {
	if d, ok := s.devices[seID]; ok {
		d.pod = pod
	}
	if t.op != op {
		return reply{code: ws.StatusBadFormat, message: "taskId was used for another operation"}
	}
	return reply{code: ws.StatusOK}
}

// busy refuses a task while another runs on the secure element; the
// caller holds mu.
func (s *Simulator) busy(seID string) (reply, bool) {
	if id, ok := s.running[seID]; ok {
		s.stats.Busy++
		return reply{code: ws.StatusDeviceBusy, message: "task " + id + " is running on this secure element"}, true
	}
	return reply{}, false
}

// start records a PROCESSING task; the caller holds mu.
func (s *Simulator) start(seID, taskID, cardID, op string) *task {
	t := &task{id: taskID, seID: seID, cardID: cardID, op: op, status: ws.TaskProcessing}
	s.tasks[seID+"/"+taskID] = t
	s.running[seID] = taskID
	s.stats.MaxRunning = max(s.stats.MaxRunning, len(s.running))
	return t
}

// AppliedTask is one task the wallet server carried out on a secure
// element. A task id is carried out once; a repeated call with the same
// id is acknowledged without acting again, and is not journalled.
type AppliedTask struct {
	SEID         string `json:"se_id"`
	TaskID       string `json:"task_id"`
	Operation    string `json:"operation"` // sendScript or the updateCard operation
	WalletCardID string `json:"wallet_card_id"`
	Status       string `json:"status"`
}

// Applied returns the journal of carried-out tasks, in the order they
// ended: what an audit reads to tell that nothing was done twice.
func (s *Simulator) Applied() []AppliedTask {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal)
}

// later runs fn under mu after the task delay and ends the task.
func (s *Simulator) later(t *task, fn func()) {
	s.wg.Add(1)
	time.AfterFunc(s.delay, func() {
		defer s.wg.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		fn()
		delete(s.running, t.seID)
		s.journal = append(s.journal, AppliedTask{SEID: t.seID, TaskID: t.id, Operation: t.op, WalletCardID: t.cardID, Status: t.status})
		if t.status == ws.TaskFailed {
			s.stats.Failed++
		} else {
			s.stats.Completed++
		}
	})
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
