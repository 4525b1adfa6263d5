package wallet

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/provhub/provhub/internal/reqsign"
	ws "github.com/provhub/provhub/internal/wallet"
)

// walletAPIPath is where the hub serves the wallet server's calls (WS ->
// TSH) below its base URL.
const walletAPIPath = "/tsh/wsapi/1/0/"

// noTerms is the termsAndConditionsId that says no terms apply.
const noTerms = "00000000-0000-0000-0000-000000000000"

// Pod is the x-pod the simulator sends on its calls to the hub.
const Pod = "wallet-sim"

// SetWalletAPIURL tells the simulator where the hub's wallet-server API is
// (its base URL, without /tsh/wsapi/1/0); by default it is the hub URL.
func (s *Simulator) SetWalletAPIURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.walletAPIURL = strings.TrimRight(url, "/")
}

// ProvisionRequest is what a wallet app hands its wallet server to add a
// card: the body of POST /admin/provision.
type ProvisionRequest struct {
	IssuerID string `json:"issuerId"`
	SEID     string `json:"seId"`
	DeviceID string `json:"deviceId,omitempty"`
	// CardSource is ON-FILE (with WalletCardAccountID) or USER-INPUT,
	// CLIENT-SDK, READER-MODE (with OpaqueCardAccountData).
	CardSource            string `json:"cardSource"`
	WalletCardAccountID   string `json:"walletCardAccountId,omitempty"`
	OpaqueCardAccountData string `json:"opaqueCardAccountData,omitempty"`
	LastDigits            string `json:"cardLastDigits"`
	OTP                   string `json:"issuerOtp,omitempty"`
	WalletAccountID       string `json:"walletAccountId,omitempty"`
}

// ProvisionResult is how the published flow ended.
type ProvisionResult struct {
	// Step is the call that ended the flow: checkCardAccount, getAsset,
	// verify (an asset that is not what it claims) or provisionCard.
	Step                string   `json:"step"`
	StatusCode          int      `json:"statusCode"`
	StatusMessage       string   `json:"statusMessage,omitempty"`
	TermsID             string   `json:"termsAndConditionsId,omitempty"`
	CardArt             []string `json:"cardArtManifest,omitempty"`
	WalletCardID        string   `json:"walletCardId,omitempty"`
	WalletCardAccountID string   `json:"walletCardAccountId,omitempty"`
}

// OK tells whether the card was provisioned.
func (r ProvisionResult) OK() bool { return r.Step == "provisionCard" && r.StatusCode == 0 }

// FetchedAsset is an asset the simulator fetched and verified.
type FetchedAsset struct {
	GUID        string `json:"guid"`
	ContentType string `json:"contentType"`
	Size        int    `json:"size"`
}

// Provision runs the published wallet-server flow for a card: it checks
// the card account (checkCardAccount), fetches and verifies the terms and
// every card-art image it does not hold yet (getAsset), then provisions
// the card (provisionCard) and registers the wallet card the hub named on
// the secure element (added if unknown), ready for its personalisation.
// An error means the hub could not be asked; a refusal is in the result.
func (s *Simulator) Provision(ctx context.Context, req ProvisionRequest) (ProvisionResult, error) {
	if !seIDPattern.MatchString(req.SEID) {
		return ProvisionResult{}, fmt.Errorf("seId %q is not 1 to 24 hex bytes", req.SEID)
	}
	descriptor := map[string]string{}
	if req.WalletCardAccountID != "" {
		descriptor["walletCardAccountId"] = req.WalletCardAccountID
	}
	if req.OpaqueCardAccountData != "" {
		descriptor["opaqueCardAccountData"] = req.OpaqueCardAccountData
	}
	account := map[string]any{"requestHeader": deviceHeader(), "issuerId": req.IssuerID, "cardAccountDescriptor": descriptor}
	if req.CardSource != "" {
		account["cardSource"] = req.CardSource
	}
	var check struct {
		ResponseHeader ws.ResponseHeader `json:"responseHeader"`
		TermsID        string            `json:"termsAndConditionsId"`
		CardArt        []string          `json:"cardArtManifest"`
	}
	if err := s.walletCall(ctx, "checkCardAccount", account, &check); err != nil {
		return ProvisionResult{}, err
	}
	res := ProvisionResult{Step: "checkCardAccount", StatusCode: check.ResponseHeader.StatusCode, StatusMessage: check.ResponseHeader.StatusMessage,
		TermsID: check.TermsID, CardArt: check.CardArt}
	if res.StatusCode != 0 {
		return res, nil
	}
	guids := append([]string(nil), check.CardArt...)
	if check.TermsID != "" && check.TermsID != noTerms {
		guids = append([]string{check.TermsID}, guids...)
	}
	for _, g := range guids {
		step, code, msg, err := s.fetchAsset(ctx, g)
		if err != nil {
			return res, err
		}
		if code != 0 || step != "" {
			res.Step, res.StatusCode, res.StatusMessage = step, code, msg
			return res, nil
		}
	}
	prov := map[string]any{"cardLastDigits": req.LastDigits, "seId": normalizeSE(req.SEID)}
	for k, v := range account {
		prov[k] = v
	}
	prov["requestHeader"] = deviceHeader()
	if req.DeviceID != "" {
		prov["deviceId"] = req.DeviceID
	}
	if req.OTP != "" {
		prov["issuerOtp"] = req.OTP
	}
	if req.WalletAccountID != "" {
		prov["walletAccountId"] = req.WalletAccountID
	}
	var ans struct {
		ResponseHeader      ws.ResponseHeader `json:"responseHeader"`
		WalletCardID        string            `json:"walletCardId"`
		WalletCardAccountID string            `json:"walletCardAccountId"`
	}
	if err := s.walletCall(ctx, "provisionCard", prov, &ans); err != nil {
		return res, err
	}
	res.Step, res.StatusCode, res.StatusMessage = "provisionCard", ans.ResponseHeader.StatusCode, ans.ResponseHeader.StatusMessage
	if res.StatusCode != 0 {
		return res, nil
	}
	res.WalletCardID, res.WalletCardAccountID = ans.WalletCardID, ans.WalletCardAccountID
	deviceID := req.DeviceID
	if deviceID == "" {
		deviceID = "dev-" + normalizeSE(req.SEID)
	}
	if err := s.AddDevice(req.SEID, deviceID); err != nil {
		return res, err
	}
	// A repeated provisioning names the card the simulator holds already.
	if err := s.AddCard(ans.WalletCardID, req.SEID, nil); err != nil && !s.hasCard(ans.WalletCardID, req.SEID) {
		return res, err
	}
	s.mu.Lock()
	s.stats.Provisioned++
	s.mu.Unlock()
	return res, nil
}

func (s *Simulator) hasCard(walletCardID, seID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cards[walletCardID]
	return ok && c.seID == normalizeSE(seID)
}

// fetchAsset gets an asset the simulator does not hold yet and verifies
// it is what its content type says. It returns the step and code of a
// refusal, none when the asset is held.
func (s *Simulator) fetchAsset(ctx context.Context, guid string) (step string, code int, msg string, err error) {
	s.mu.Lock()
	_, held := s.assets[guid]
	s.mu.Unlock()
	if held {
		return "", 0, "", nil
	}
	var ans struct {
		ResponseHeader ws.ResponseHeader `json:"responseHeader"`
		ContentType    string            `json:"contentType"`
		Content        string            `json:"content"`
	}
	if err := s.walletCall(ctx, "getAsset", map[string]any{"requestHeader": deviceHeader(), "guid": guid}, &ans); err != nil {
		return "", 0, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.AssetsFetched++
	if ans.ResponseHeader.StatusCode != 0 {
		return "getAsset", ans.ResponseHeader.StatusCode, ans.ResponseHeader.StatusMessage, nil
	}
	content, derr := base64.StdEncoding.DecodeString(ans.Content)
	if derr == nil {
		derr = verifyAsset(ans.ContentType, content)
	}
	if derr != nil {
		s.stats.AssetsRejected++
		return "verify", -1, fmt.Sprintf("asset %s: %v", guid, derr), nil
	}
	s.stats.AssetsVerified++
	s.assets[guid] = FetchedAsset{GUID: guid, ContentType: ans.ContentType, Size: len(content)}
	return "", 0, "", nil
}

// verifyAsset checks that content is what a wallet would show as
// contentType: an image that decodes, or terms it can display.
func verifyAsset(contentType string, content []byte) error {
	mt, _, _ := strings.Cut(contentType, ";")
	switch strings.TrimSpace(mt) {
	case "image/png":
		_, err := png.Decode(bytes.NewReader(content))
		return err
	case "image/jpeg":
		_, err := jpeg.Decode(bytes.NewReader(content))
		return err
	case "text/plain", "text/html":
		if len(content) == 0 || !utf8.Valid(content) {
			return errors.New("the terms are not UTF-8 text")
		}
		return nil
	case "application/pdf":
		if !bytes.HasPrefix(content, []byte("%PDF-")) {
			return errors.New("the document is not a PDF")
		}
		return nil
	}
	return fmt.Errorf("content type %q is not one a wallet shows", contentType)
}

// Assets returns the assets the simulator fetched and verified.
func (s *Simulator) Assets() []FetchedAsset {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FetchedAsset, 0, len(s.assets))
	for _, a := range s.assets {
		out = append(out, a)
	}
	return out
}

// fetchNewArt fetches, in the background, the card art of a METADATA_UPDATE
// the simulator does not hold yet. Called with mu held.
func (s *Simulator) fetchNewArt(descriptor json.RawMessage) {
	var d struct {
		CardArtManifest []string `json:"cardArtManifest"`
	}
	if json.Unmarshal(descriptor, &d) != nil {
		return
	}
	var fresh []string
	for _, g := range d.CardArtManifest {
		if _, held := s.assets[g]; !held {
			fresh = append(fresh, g)
		}
	}
	if len(fresh) == 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, g := range fresh {
			if _, code, msg, err := s.fetchAsset(ctx, g); err != nil || code != 0 {
				s.log.Warn("card art of a METADATA_UPDATE not fetched", "guid", g, "status_code", code, "message", msg, "err", err)
			}
		}
	}()
}

// walletCall makes one signed wallet-server call on the hub.
func (s *Simulator) walletCall(ctx context.Context, op string, body, into any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	s.mu.Lock()
	base, id, secret := s.walletAPIURL, s.partnerID, s.partnerSecret
	if base == "" {
		base = s.hubURL
	}
	s.mu.Unlock()
	if base == "" {
		return errors.New("the simulator does not know the hub's address")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+walletAPIPath+op, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-pod", Pod)
	if id != "" {
		reqsign.Sign(req, raw, id, secret, time.Now())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := json.Unmarshal(out, into); err != nil {
		return fmt.Errorf("%s: HTTP %d, answer not JSON", op, resp.StatusCode)
	}
	return nil
}
