package wallet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/felica"
	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/sim/felicacard"
	"github.com/provhub/provhub/internal/tes"
	ws "github.com/provhub/provhub/internal/wallet"
)

// DeviceRun is what a simulated device saw of one command loop.
type DeviceRun struct {
	OperationID   string `json:"operationId"`
	Kind          string `json:"kind"` // REDIRECT or READER_MODE
	WalletCardID  string `json:"walletCardId,omitempty"`
	Done          bool   `json:"done"`
	StatusCode    int    `json:"statusCode"`
	StatusMessage string `json:"statusMessage,omitempty"`
	Balance       *int64 `json:"balance,omitempty"`
	CardAccountID string `json:"cardAccountId,omitempty"`
	Steps         int    `json:"steps"`
	// Repeats counts calls the device sent twice (DeviceRepeatNext).
	Repeats int `json:"repeats"`
}

// devicePath is where the hub's device API lives below its base URL.
const devicePath = "/tsh/deviceapi/1/0/"

// SetHubURL tells the simulated devices where the hub is (its base URL);
// without it a REDIRECT only counts.
func (s *Simulator) SetHubURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hubURL = strings.TrimRight(url, "/")
}

// SetPodURL tells the simulated devices where the hub instance that names
// itself pod (in x-pod) is: a device redirected by that instance calls it
// back there, as the published API asks of the pod's routing.
func (s *Simulator) SetPodURL(pod, url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.podURLs == nil {
		s.podURLs = map[string]string{}
	}
	s.podURLs[pod] = strings.TrimRight(url, "/")
}

// hubFor is the hub a device calls: its pod's address when known.
// Called with s.mu held.
func (s *Simulator) hubFor(d *device) string {
	if u, ok := s.podURLs[d.pod]; ok {
		return u
	}
	return s.hubURL
}

// felicaOf returns the FeliCa card of a wallet card, made on first use
// (a transit card with balance 0 and an IDm derived from the card's id).
// Called with s.mu held.
func (s *Simulator) felicaOf(c *card) *felicacard.Card {
	if c.felica == nil {
		sum := sha256.Sum256([]byte(c.id))
		var id felica.IDm
		copy(id[:], sum[:8])
		id[0] = 0x01
		c.felica = felicacard.Transit(id, 0)
	}
	return c.felica
}

// SetCardBalance sets the purse of a wallet card's FeliCa card.
func (s *Simulator) SetCardBalance(walletCardID string, balance uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cards[walletCardID]
	if !ok {
		return fmt.Errorf("unknown wallet card %s", walletCardID)
	}
	return s.felicaOf(c).SetBlock(felicacard.PurseService, felicacard.PurseBlock, felica.Purse{Balance: balance}.Block())
}

// CardPurse reads the purse of a wallet card's FeliCa card.
func (s *Simulator) CardPurse(walletCardID string) (felica.Purse, error) {
	s.mu.Lock()
	c, ok := s.cards[walletCardID]
	var fc *felicacard.Card
	if ok {
		fc = s.felicaOf(c)
	}
	s.mu.Unlock()
	if !ok {
		return felica.Purse{}, fmt.Errorf("unknown wallet card %s", walletCardID)
	}
	return fc.Balance()
}

// HoldExternalCard puts a physical card against a device's reader.
func (s *Simulator) HoldExternalCard(seID string, c *felicacard.Card) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[normalizeSE(seID)]
	if !ok {
		return fmt.Errorf("unknown secure element %s", seID)
	}
	d.external = c
	return nil
}

// Runs returns the command loops a device has run, oldest first.
func (s *Simulator) Runs(seID string) []DeviceRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[normalizeSE(seID)]
	if !ok {
		return nil
	}
	return append([]DeviceRun(nil), d.runs...)
}

// StartReaderMode has a device read the external card it holds and post
// it to the hub; the device then runs the hub's commands on that card.
// contents overrides what the device reports (to present a bad card).
func (s *Simulator) StartReaderMode(seID, issuerID string, contents *tes.CardContents) error {
	s.mu.Lock()
	d, ok := s.devices[normalizeSE(seID)]
	var hub string
	if ok {
		hub = s.hubFor(d)
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("unknown secure element %s", seID)
	case d.external == nil:
		return errors.New("the device holds no external card")
	case hub == "":
		return errors.New("the simulator does not know the hub's address")
	}
	card := d.external
	if contents == nil {
		id, pmm := card.IDm(), card.PMm()
		contents = &tes.CardContents{CardServiceID: felicacard.ServiceName, SystemCode: fmt.Sprintf("%04X", card.SystemCode()),
			IDm: strings.ToUpper(hex.EncodeToString(id[:])), PMm: strings.ToUpper(hex.EncodeToString(pmm[:])),
			AreaCodeList: []tes.Area{{AreaCode: fmt.Sprintf("%04X", felicacard.PurseArea), KeyVersion: fmt.Sprintf("%04X", felicacard.PurseAreaKey)}}}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run := DeviceRun{Kind: "READER_MODE"}
		var ans deviceAnswer
		// The wallet server starts reader mode for its device, as a
		// partner; the answer's device token goes to the device.
		err := s.devicePost(hub, "startReaderMode", map[string]any{"requestHeader": deviceHeader(), "seId": normalizeSE(seID),
			"deviceId": d.deviceID, "issuerId": issuerID, "cardContents": contents}, &ans)
		if err == nil && ans.ResponseHeader.StatusCode == 0 {
			run.OperationID = ans.OperationID
			s.loop(hub, normalizeSE(seID), "", ans.DeviceToken, card, &run)
		} else {
			run.Done, run.StatusCode = true, ans.ResponseHeader.StatusCode
			if err != nil {
				run.StatusCode, run.StatusMessage = -1, err.Error()
			} else {
				run.StatusMessage = ans.ResponseHeader.StatusMessage
			}
		}
		s.record(normalizeSE(seID), run)
	}()
	return nil
}

// redirected runs the command loop a REDIRECT asks for, with the
// operation and device token it carries. Called with s.mu held; the loop
// runs on its own goroutine.
func (s *Simulator) redirected(d *device, c *card, rd ws.RedirectData) {
	hub := s.hubFor(d)
	if hub == "" {
		return
	}
	fc, seID := s.felicaOf(c), c.seID
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run := DeviceRun{Kind: "REDIRECT", WalletCardID: c.id, OperationID: rd.OperationID}
		s.loop(hub, seID, c.id, rd.DeviceToken, fc, &run)
		s.record(seID, run)
	}()
}

// LastRedirect returns what the last completed REDIRECT of a wallet card
// told its device (the operation and its device token), for a device
// played by hand.
func (s *Simulator) LastRedirect(walletCardID string) (ws.RedirectData, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cards[walletCardID]
	if !ok || c.redirect.OperationID == "" {
		return ws.RedirectData{}, false
	}
	return c.redirect, true
}

// SetPartner sets the credentials the simulator signs its calls to the hub
// with, as a wallet-server partner.
func (s *Simulator) SetPartner(id, secret string) {
	s.mu.Lock()
	s.partnerID, s.partnerSecret = id, secret
	s.mu.Unlock()
}

func (s *Simulator) record(seID string, run DeviceRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.devices[seID]; ok {
		d.runs = append(d.runs, run)
	}
	s.log.Info("device loop ended", "se_id", seID, "operation_id", run.OperationID, "status_code", run.StatusCode, "steps", run.Steps)
}

type deviceAnswer struct {
	ResponseHeader struct {
		StatusCode    int    `json:"statusCode"`
		StatusMessage string `json:"statusMessage"`
	} `json:"responseHeader"`
	OperationID   string        `json:"operationId"`
	Step          int           `json:"step"`
	Done          bool          `json:"done"`
	Commands      []tes.Command `json:"commands"`
	Balance       *int64        `json:"balance"`
	CardAccountID string        `json:"cardAccountId"`
	DeviceToken   string        `json:"deviceToken"`
}

func deviceHeader() map[string]string {
	return map[string]string{"requestId": newID(), "sessionId": newID(), "generationDateTime": time.Now().UTC().Format(time.RFC3339)}
}

// loop fetches batches from the hub and runs them on card until done.
func (s *Simulator) loop(hub, seID, walletCardID, token string, card *felicacard.Card, run *DeviceRun) {
	step := 0
	var responses []tes.Response
	var elapsed float64
	for range 200 {
		req := map[string]any{"requestHeader": deviceHeader(), "seId": seID, "step": step, "deviceToken": token}
		if run.OperationID != "" {
			req["operationId"] = run.OperationID
		}
		if walletCardID != "" {
			req["walletCardId"] = walletCardID
		}
		if len(responses) > 0 {
			req["responses"] = responses
			req["responseTimeMs"] = elapsed
		}
		var ans deviceAnswer
		if !s.callHub(hub, req, &ans, run) {
			return
		}
		if ans.OperationID != "" {
			run.OperationID = ans.OperationID
		}
		if ans.Done || ans.ResponseHeader.StatusCode != 0 {
			run.Done, run.StatusCode, run.StatusMessage = ans.Done, ans.ResponseHeader.StatusCode, ans.ResponseHeader.StatusMessage
			run.Balance, run.CardAccountID, run.Steps = ans.Balance, ans.CardAccountID, ans.Step
			return
		}
		start := time.Now()
		responses = responses[:0]
		for _, cmd := range ans.Commands {
			raw, _ := hex.DecodeString(cmd.Data)
			var out []byte
			if cmd.Kind == tes.KindFeliCa {
				out = card.Exec(raw)
			}
			responses = append(responses, tes.Response{ID: cmd.ID, Data: strings.ToUpper(hex.EncodeToString(out))})
		}
		elapsed = float64(time.Since(start).Microseconds()) / 1000
		step = ans.Step
		run.Steps = step
	}
	run.StatusCode, run.StatusMessage = -1, "the loop did not end"
}

// callHub posts one getDeviceCommands, repeating it (with a growing pause,
// at most a second) while the hub answers 921 or cannot be reached, for up
// to Config.DeviceRetryFor; with DeviceRepeatNext the device sends the
// same call twice, as one that lost the first answer.
func (s *Simulator) callHub(hub string, req map[string]any, ans *deviceAnswer, run *DeviceRun) bool {
	s.mu.Lock()
	repeat := s.faults.DeviceRepeatNext > 0
	if repeat {
		s.faults.DeviceRepeatNext--
	}
	s.mu.Unlock()
	if repeat {
		var lost deviceAnswer
		_ = s.devicePost(hub, "getDeviceCommands", req, &lost)
		run.Repeats++
	}
	giveUp := time.Now().Add(s.retryFor)
	for attempt := 1; ; attempt++ {
		err := s.devicePost(hub, "getDeviceCommands", req, ans)
		if err == nil && ans.ResponseHeader.StatusCode != 921 {
			return true
		}
		if time.Now().After(giveUp) {
			break
		}
		time.Sleep(min(time.Duration(20*attempt)*time.Millisecond, time.Second))
	}
	run.StatusCode, run.StatusMessage = -1, "the hub did not answer"
	return false
}

func (s *Simulator) devicePost(hub, op string, body any, into any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hub+devicePath+op, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if op == "startReaderMode" {
		s.mu.Lock()
		id, secret := s.partnerID, s.partnerSecret
		s.mu.Unlock()
		if id != "" {
			reqsign.Sign(req, raw, id, secret, time.Now())
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("hub answered HTTP %d", resp.StatusCode)
	}
	return json.Unmarshal(out, into)
}
