package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/jpeg"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/provhub/provhub/internal/cardaccount"
	"github.com/provhub/provhub/internal/partner"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/transit"
)

func init() {
	// The issuer uploads assets as they are; the documents' checker reads
	// such bodies as bytes.
	for _, ct := range []string{"image/png", "image/jpeg", "text/html", "application/pdf"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
}

// assetOut is the issuer API's view of an asset.
type assetOut struct {
	GUID        string `json:"guid"`
	Kind        string `json:"kind"`
	ContentType string `json:"contentType"`
	Size        int    `json:"size"`
	SHA256      string `json:"sha256"`
}

// upload posts content as an asset of issuerA and returns the HTTP status
// and the asset.
func (e *env) upload(rule specRule, tok, contentType string, content []byte) (int, assetOut) {
	e.t.Helper()
	hdr := http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {contentType}}
	status, _, raw := e.issuer.send(rule, "POST", "/banking/v1/issuers/"+issuerA+"/assets", "description=test", content, hdr)
	var a assetOut
	if status == http.StatusCreated {
		e.must(http.StatusCreated, &a, status, raw)
	} else if !strings.Contains(string(raw), `"error"`) {
		e.t.Fatalf("HTTP %d without an error body: %s", status, raw)
	}
	return status, a
}

const termsText = "Terms of the test transit card.\nBe kind to the reader.\n"

// The whole published flow as a wallet server follows it, for a card the
// issuer registers with its art and terms: USER-INPUT first, then, after
// the user removed the card, ON-FILE on a new phone with the id the wallet
// kept; only the partner and wallet account it was handed to can use it.
func TestProvisioning_ThePublishedFlowForUserInputThenOnFile(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		tok := e.accessToken(keys[issuerA], issuerA)
		_, terms := e.upload(conforming, tok, "text/plain; charset=utf-8", []byte(termsText))
		_, art := e.upload(conforming, tok, "image/png", pngImage(64, 40))
		if terms.Kind != "TERMS" || art.Kind != "CARD_ART" || art.ContentType != "image/png" || len(art.SHA256) != 64 {
			t.Fatalf("assets: %+v %+v", terms, art)
		}
		e.mustBank(http.StatusNoContent, nil, conforming, tok, "PUT", "/issuers/"+issuerA+"/cards/CARD-W1", "", map[string]any{
			"consumerId": "wendy", "cardProductId": "TRANSIT_PRODUCT", "lastDigits": "34711",
			"termsAndConditionsId": terms.GUID, "cardArtManifest": []string{art.GUID}})
		var card cardOut
		e.mustBank(http.StatusOK, &card, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/CARD-W1", "", nil)
		var pd struct {
			Data    string `json:"opaqueCardAccountData"`
			Expires string `json:"expiresAt"`
		}
		e.mustBank(http.StatusOK, &pd, conforming, tok, "POST", "/issuers/"+issuerA+"/cards/CARD-W1/provisioningData", "", nil)
		if pd.Data == "" || strings.Contains(pd.Data, "CARD-W1") {
			t.Fatalf("provisioning data: %+v", pd)
		}
		if exp, err := time.Parse(time.RFC3339, pd.Expires); err != nil || exp.Before(time.Now().Add(10*time.Minute)) {
			t.Errorf("expiresAt %s", pd.Expires)
		}

		// The wallet server: checkCardAccount, getAsset x2, provisionCard.
		first, err := e.wsim.Provision(context.Background(), simwallet.ProvisionRequest{IssuerID: issuerA, SEID: "0A0A0A01", CardSource: "USER-INPUT",
			OpaqueCardAccountData: pd.Data, LastDigits: "4711", WalletAccountID: "wendy@wallet"})
		if err != nil || !first.OK() {
			t.Fatalf("USER-INPUT provisioning: %+v %v", first, err)
		}
		if first.TermsID != terms.GUID || len(first.CardArt) != 1 || first.CardArt[0] != art.GUID {
			t.Errorf("checkCardAccount showed %+v", first)
		}
		if st := e.wsim.Stats(); st.AssetsFetched != 2 || st.AssetsVerified != 2 || st.AssetsRejected != 0 || st.Provisioned != 1 {
			t.Errorf("wallet server stats: %+v", st)
		}
		if !strings.HasPrefix(first.WalletCardID, "pvw-") || !strings.HasPrefix(first.WalletCardAccountID, "wca-") {
			t.Errorf("ids: %+v", first)
		}
		// The TES personalises it through the hub as before.
		p := e.transitCall(conforming, transitBase+"submitCardPersoData", map[string]any{"issuerId": issuerA, "cardId": "CARD-W1",
			"cardPersoData": map[string]any{"dgis": []map[string]string{{"dgi": "0101", "data": "0102030405"}}}})
		if tk := e.waitTask("CARD-W1", p.TaskID); tk.Status != transit.TaskCompleted {
			t.Fatalf("perso: %+v", tk)
		}
		e.mustBank(http.StatusOK, &card, conforming, tok, "GET", "/issuers/"+issuerA+"/cards/CARD-W1", "", nil)
		if len(card.DigitalCards) != 1 || card.DigitalCards[0].DigitalCardID != first.WalletCardID || card.DigitalCards[0].State != "ACTIVE" {
			t.Fatalf("the issuer sees %+v", card.DigitalCards)
		}

		// The same account on another phone while the first holds it: 167.
		onFile := simwallet.ProvisionRequest{IssuerID: issuerA, SEID: "0A0A0A02", CardSource: "ON-FILE",
			WalletCardAccountID: first.WalletCardAccountID, LastDigits: "4711", WalletAccountID: "wendy@wallet"}
		if res, _ := e.wsim.Provision(context.Background(), onFile); res.Step != "provisionCard" || res.StatusCode != 167 {
			t.Fatalf("a second phone while the first holds the card: %+v", res)
		}
		// The user removes it from the first phone; ON-FILE then works.
		var op opResult
		e.mustBank(http.StatusOK, &op, conforming, tok, "POST", "/issuers/"+issuerA+"/digitalCards/"+first.WalletCardID+"/operations:delete", "", nil)
		e.waitOperation(tok, "wendy", op.OperationID)
		second, err := e.wsim.Provision(context.Background(), onFile)
		if err != nil || !second.OK() || second.WalletCardAccountID != first.WalletCardAccountID || second.WalletCardID == first.WalletCardID {
			t.Fatalf("ON-FILE provisioning: %+v %v (first %+v)", second, err, first)
		}
		if c := e.card("CARD-W1"); c.State != transit.PendingPerso || c.SEID != "0A0A0A02" || c.WalletCardID != second.WalletCardID {
			t.Fatalf("the card after ON-FILE: %+v", c)
		}
		// The assets were held already: not fetched again.
		if st := e.wsim.Stats(); st.AssetsFetched != 2 || st.Provisioned != 2 {
			t.Errorf("wallet server stats after ON-FILE: %+v", st)
		}
		// The on-file id is bound to its wallet account and partner.
		again := e.provisionBody(issuerA, "0A0A0A02", map[string]string{"walletCardAccountId": first.WalletCardAccountID}, "ON-FILE")
		again["walletAccountId"] = "mallory@wallet"
		if a := e.transitCall(conforming, "/tsh/wsapi/1/0/provisionCard", again); a.ResponseHeader.StatusCode != 170 {
			t.Errorf("an on-file id of another wallet account: %+v", a)
		}
		other := e.addPartner("wallet-other", partner.RoleWallet, issuerA)
		delete(again, "walletAccountId")
		if _, a := postAs(t, e.transitAs(&other), "/tsh/wsapi/1/0/checkCardAccount", again); a.ResponseHeader.StatusCode != 116 {
			t.Errorf("another wallet partner using the on-file id: %+v", a)
		}
	})
}

// provisionBody is a provisionCard body with descriptor d.
func (e *env) provisionBody(issuerID, seID string, d map[string]string, source string) map[string]any {
	return map[string]any{"issuerId": issuerID, "cardAccountDescriptor": d, "cardSource": source,
		"cardLastDigits": testLastDigits, "seId": seID}
}

// Every way a wallet server's checkCardAccount or provisionCard can be
// wrong gets its status code and provisions nothing.
func TestProvisioning_RefusalsGetTheirCodesAndProvisionNothing(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, acc := range []string{"ACC-OK", "ACC-SUSP", "ACC-INACT", "ACC-B"} {
			e.opaqueFor("TRANSIT1", acc)
		}
		if _, err := e.hub.DB().Writer().ExecContext(ctx, `UPDATE issuer_cards SET state = 'SUSPENDED' WHERE card_id = 'ACC-SUSP'`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.hub.DB().Writer().ExecContext(ctx, `UPDATE issuer_cards SET state = 'INACTIVE' WHERE card_id = 'ACC-INACT'`); err != nil {
			t.Fatal(err)
		}
		opaque := func(acc string) map[string]string {
			return map[string]string{"opaqueCardAccountData": e.opaqueFor("TRANSIT1", acc)}
		}
		ok := opaque("ACC-OK")
		otherIssuers := e.opaqueFor("TRANSIT2", "ACC-OK")
		expired := e.opaqueFor("TRANSIT1", "ACC-B")
		forged := "sealed:v1:" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 60))
		// Deleted after its data was made: unknown.
		gone := opaque("ACC-B")
		if _, err := e.hub.DB().Writer().ExecContext(ctx, `UPDATE issuer_cards SET state = 'DELETED' WHERE card_id = 'ACC-B'`); err != nil {
			t.Fatal(err)
		}
		onlyB := e.addPartner("wallet-for-b", partner.RoleWallet, "ISSUER0002")
		cases := []struct {
			name   string
			path   string
			body   map[string]any
			code   int
			client *specClient
		}{
			{"eligible", "checkCardAccount", e.provisionBody("TRANSIT1", "0C01", ok, "USER-INPUT"), 0, nil},
			{"suspended by the issuer", "checkCardAccount", e.provisionBody("TRANSIT1", "0C01", opaque("ACC-SUSP"), "USER-INPUT"), 159, nil},
			{"not active yet", "provisionCard", e.provisionBody("TRANSIT1", "0C01", opaque("ACC-INACT"), "USER-INPUT"), 170, nil},
			{"deleted card account", "provisionCard", e.provisionBody("TRANSIT1", "0C01", gone, "USER-INPUT"), 116, nil},
			{"unknown on-file id", "provisionCard", e.provisionBody("TRANSIT1", "0C01", map[string]string{"walletCardAccountId": "wca-made-up"}, "ON-FILE"), 116, nil},
			{"forged opaque data", "checkCardAccount", e.provisionBody("TRANSIT1", "0C01", map[string]string{"opaqueCardAccountData": forged}, "USER-INPUT"), 166, nil},
			{"opaque data of another issuer", "provisionCard", e.provisionBody("TRANSIT1", "0C01", map[string]string{"opaqueCardAccountData": otherIssuers}, "USER-INPUT"), 166, nil},
			{"opaque data that is no such data", "checkCardAccount", e.provisionBody("TRANSIT1", "0C01", map[string]string{"opaqueCardAccountData": "ACC-OK"}, "USER-INPUT"), 112, nil},
			{"last digits of another card", "provisionCard", withMember(e.provisionBody("TRANSIT1", "0C01", ok, "USER-INPUT"), "cardLastDigits", "0815"), 166, nil},
			{"source and descriptor disagree", "checkCardAccount", e.provisionBody("TRANSIT1", "0C01", ok, "ON-FILE"), 112, nil},
			{"both descriptor members", "checkCardAccount", e.provisionBody("TRANSIT1", "0C01", map[string]string{"opaqueCardAccountData": ok["opaqueCardAccountData"], "walletCardAccountId": "wca-1"}, "USER-INPUT"), 112, nil},
			{"an issuer the partner does not serve", "checkCardAccount", e.provisionBody("TRANSIT1", "0C01", ok, "USER-INPUT"), 113, e.transitAs(&onlyB)},
			{"an issuer the OTP cannot be checked for", "provisionCard", withMember(e.provisionBody("TRANSIT1", "0C01", ok, "USER-INPUT"), "issuerOtp", "123456"), 420, nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				cl := c.client
				if cl == nil {
					cl = e.transitAs(&e.walletPartner)
				}
				if _, a := postAs(t, cl, "/tsh/wsapi/1/0/"+c.path, c.body); a.ResponseHeader.StatusCode != c.code {
					t.Fatalf("%s: statusCode %d (%s), want %d", c.path, a.ResponseHeader.StatusCode, a.ResponseHeader.StatusMessage, c.code)
				}
			})
		}
		// Card digits cannot be found by trying them: after five wrong ones
		// in a row (one above) the account is locked, right digits too.
		wrongDigits := withMember(e.provisionBody("TRANSIT1", "0C01", opaque("ACC-OK"), "USER-INPUT"), "cardLastDigits", "0815")
		for i := range cardaccount.MaxOTPFailures - 1 {
			if a := e.transitCall(conforming, "/tsh/wsapi/1/0/provisionCard", wrongDigits); a.ResponseHeader.StatusCode != 166 {
				t.Fatalf("wrong digits %d: %+v", i+2, a)
			}
		}
		if a := e.transitCall(conforming, "/tsh/wsapi/1/0/provisionCard", e.provisionBody("TRANSIT1", "0C01", opaque("ACC-OK"), "USER-INPUT")); a.ResponseHeader.StatusCode != 421 {
			t.Fatalf("right digits after five wrong ones: %+v", a)
		}
		// Expired: 15 minutes after it was made.
		e.clock.Advance(16 * time.Minute)
		if _, a := postAs(t, e.transitAs(&e.walletPartner), "/tsh/wsapi/1/0/checkCardAccount",
			e.provisionBody("TRANSIT1", "0C01", map[string]string{"opaqueCardAccountData": expired}, "USER-INPUT")); a.ResponseHeader.StatusCode != 166 ||
			!strings.Contains(a.ResponseHeader.StatusMessage, "expired") {
			t.Errorf("expired opaque data: %+v", a)
		}
		// The pod header is published and required.
		for pod, want := range map[string]int{"": 111, strings.Repeat("p", 129): 112} {
			hdr := http.Header{"Content-Type": {"application/json"}}
			if pod != "" {
				hdr.Set("x-pod", pod)
			}
			body := e.provisionBody("TRANSIT1", "0C01", opaque("ACC-OK"), "USER-INPUT")
			body["requestHeader"] = map[string]string{"requestId": "r", "sessionId": "s"}
			raw, _ := json.Marshal(body)
			_, _, out := e.transitAs(&e.walletPartner).send(nonConforming, "POST", "/tsh/wsapi/1/0/checkCardAccount", "", raw, hdr)
			if !strings.Contains(string(out), `"statusCode":`+strconv.Itoa(want)) {
				t.Errorf("x-pod %q: %s", pod, out)
			}
		}
		if n := e.count(`SELECT COUNT(*) FROM transit_cards`); n != 0 {
			t.Errorf("%d cards provisioned by refused calls", n)
		}
	})
}

// The issuer's OTP: the right one provisions, once; a wrong one is 420;
// five wrong ones in a row lock the account's OTPs (421).
func TestProvisioning_IssuerOTPIsCheckedUsedOnceAndLocksAfterFiveWrongOnes(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		keyText, err := e.hub.Accounts().NewOTPKey(ctx, "TRANSIT1")
		if err != nil {
			t.Fatal(err)
		}
		key, _ := base64.StdEncoding.DecodeString(keyText)
		otp := func(acc string) string { return cardaccount.OTP(key, "TRANSIT1", acc, cardaccount.Step(e.clock.Now())) }
		call := func(se, acc, code string) int {
			t.Helper()
			body := e.provisionCall("TRANSIT1", se, acc)
			body["issuerOtp"] = code
			a := e.transitCall(conforming, "/tsh/wsapi/1/0/provisionCard", body)
			if a.ResponseHeader.StatusCode != 0 && a.ResponseHeader.StatusCode != 420 && a.ResponseHeader.StatusCode != 421 {
				t.Fatalf("OTP %s for %s on %s: %d %s", code, acc, se, a.ResponseHeader.StatusCode, a.ResponseHeader.StatusMessage)
			}
			return a.ResponseHeader.StatusCode
		}
		wrong := func(code string) string { // another six digits
			return string(rune('0'+(code[0]-'0'+1)%10)) + code[1:]
		}
		if got := call("0D01", "ACC-OTP1", wrong(otp("ACC-OTP1"))); got != 420 {
			t.Fatalf("a wrong OTP: %d", got)
		}
		if got := call("0D01", "ACC-OTP1", otp("ACC-OTP2")); got != 420 {
			t.Fatalf("another account's OTP: %d", got)
		}
		good := otp("ACC-OTP1")
		if got := call("0D01", "ACC-OTP1", good); got != 0 {
			t.Fatalf("the right OTP: %d", got)
		}
		// The same call again (its answer lost) is answered alike.
		if got := call("0D01", "ACC-OTP1", good); got != 0 {
			t.Fatalf("the repeated call: %d", got)
		}
		// Used: for another secure element it is refused, whatever follows.
		if got := call("0D02", "ACC-OTP1", good); got != 420 {
			t.Fatalf("a replayed OTP: %d", got)
		}
		// Ten minutes on, an OTP is stale.
		stale := otp("ACC-OTP3")
		e.clock.Advance(11 * time.Minute)
		if got := call("0D03", "ACC-OTP3", stale); got != 420 {
			t.Fatalf("a stale OTP: %d", got)
		}
		for range cardaccount.MaxOTPFailures - 1 {
			if got := call("0D03", "ACC-OTP3", wrong(otp("ACC-OTP3"))); got != 420 {
				t.Fatalf("a wrong OTP: %d", got)
			}
		}
		if got := call("0D03", "ACC-OTP3", otp("ACC-OTP3")); got != 421 {
			t.Fatalf("the right OTP after five wrong ones: %d", got)
		}
		e.clock.Advance(cardaccount.OTPLockout + time.Second)
		if got := call("0D03", "ACC-OTP3", otp("ACC-OTP3")); got != 0 {
			t.Fatalf("the right OTP after the lockout: %d", got)
		}
	})
}

// getAsset gives a wallet partner the assets of the issuers it serves and
// nothing else; uploads that are not what they claim are refused, and so
// are cards naming assets that are not the issuer's own of the right kind.
func TestProvisioning_AssetsAreCheckedAtUploadAndScopedToTheirIssuer(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		keys, _ := e.issuerKeys()
		tok := e.accessToken(keys[issuerA], issuerA)
		var jpg bytes.Buffer
		_ = jpeg.Encode(&jpg, image.NewRGBA(image.Rect(0, 0, 16, 16)), nil)
		// The document lists the types; what the bytes are only the hub can tell.
		for _, c := range []struct {
			name, ct string
			content  []byte
			rule     specRule
		}{
			{"a JPEG labelled PNG", "image/png", jpg.Bytes(), conforming},
			{"text labelled PNG", "image/png", []byte("not an image at all"), conforming},
			{"a truncated PNG", "image/png", pngImage(64, 64)[:50], conforming},
			{"too large", "text/plain", bytes.Repeat([]byte("a"), 600<<10), conforming},
			{"a PNG labelled PDF", "application/pdf", pngImage(4, 4), conforming},
			{"a GIF", "image/gif", []byte("GIF89a...."), nonConforming},
		} {
			if status, _ := e.upload(c.rule, tok, c.ct, c.content); status != http.StatusBadRequest {
				t.Errorf("%s: HTTP %d", c.name, status)
			}
		}
		_, art := e.upload(conforming, tok, "image/jpeg", jpg.Bytes())
		_, terms := e.upload(conforming, tok, "text/plain", []byte(termsText))
		theirs := e.artAsset(issuerB, 3)
		card := func(body map[string]any) int {
			body["cardProductId"] = "P"
			rule := conforming
			if body["lastDigits"] == "12a4" {
				rule = nonConforming
			}
			status, _ := e.bank(rule, tok, "PUT", "/issuers/"+issuerA+"/cards/CARD-ART", "", body)
			return status
		}
		for name, body := range map[string]map[string]any{
			"another issuer's art":     {"cardArtManifest": []string{theirs}},
			"terms as art":             {"cardArtManifest": []string{terms.GUID}},
			"art as terms":             {"termsAndConditionsId": art.GUID},
			"no such asset":            {"cardArtManifest": []string{"0f0f0f0f-0000-4000-8000-000000000000"}},
			"last digits that are not": {"lastDigits": "12a4"},
		} {
			if status := card(body); status != http.StatusBadRequest {
				t.Errorf("%s: HTTP %d", name, status)
			}
		}
		if status := card(map[string]any{"cardArtManifest": []string{art.GUID}, "termsAndConditionsId": terms.GUID, "lastDigits": "1234"}); status != http.StatusNoContent {
			t.Fatalf("a card with its art: HTTP %d", status)
		}
		var list struct {
			Assets []assetOut `json:"assets"`
		}
		e.mustBank(http.StatusOK, &list, conforming, tok, "GET", "/issuers/"+issuerA+"/assets", "", nil)
		if len(list.Assets) != 2 {
			t.Errorf("issuer A's assets: %+v", list.Assets)
		}
		// In use: not removable; unknown to another issuer.
		e.mustBank(http.StatusConflict, nil, conforming, tok, "DELETE", "/issuers/"+issuerA+"/assets/"+art.GUID, "", nil)
		e.mustBank(http.StatusNotFound, nil, conforming, tok, "GET", "/issuers/"+issuerA+"/assets/"+theirs, "", nil)

		// getAsset: the wallet partner of issuer A's gets A's asset, with
		// its bytes; a partner serving only B does not, nor anyone an
		// unknown GUID.
		onlyB := e.addPartner("wallet-b-only", partner.RoleWallet, issuerB)
		got := e.transitCall(conforming, "/tsh/wsapi/1/0/getAsset", map[string]any{"guid": art.GUID})
		if got.ResponseHeader.StatusCode != 0 || got.ContentType != "image/jpeg" || !bytes.Equal(got.Content, jpg.Bytes()) {
			t.Fatalf("getAsset: %d %s %d bytes", got.ResponseHeader.StatusCode, got.ContentType, len(got.Content))
		}
		if _, a := postAs(t, e.transitAs(&onlyB), "/tsh/wsapi/1/0/getAsset", map[string]any{"guid": art.GUID}); a.ResponseHeader.StatusCode != 911 {
			t.Errorf("another issuer's asset: %+v", a)
		}
		if a := e.transitCall(conforming, "/tsh/wsapi/1/0/getAsset", map[string]any{"guid": "0f0f0f0f-0000-4000-8000-000000000000"}); a.ResponseHeader.StatusCode != 911 {
			t.Errorf("an unknown GUID: %+v", a)
		}
		// Unused again, it goes.
		if status := card(map[string]any{"cardArtManifest": nil}); status != http.StatusNoContent {
			t.Fatalf("clearing the art: HTTP %d", status)
		}
		e.mustBank(http.StatusNoContent, nil, conforming, tok, "DELETE", "/issuers/"+issuerA+"/assets/"+art.GUID, "", nil)
		e.mustBank(http.StatusNotFound, nil, conforming, tok, "GET", "/issuers/"+issuerA+"/assets/"+art.GUID, "", nil)
	})
}
