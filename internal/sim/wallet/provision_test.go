package wallet

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/provhub/provhub/internal/reqsign"
	"github.com/provhub/provhub/internal/sim/fault"
)

// fakeHub answers the wallet server's calls as a hub would: the card art
// it serves is content, under contentType.
func fakeHub(t *testing.T, contentType string, content []byte, provisions *atomic.Int64) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("x-pod") != Pod || r.Header.Get(reqsign.HeaderSignature) == "" {
			t.Errorf("%s without x-pod or signature", r.URL.Path)
		}
		ok := map[string]any{"responseId": "r", "sessionId": "s", "statusCode": 0}
		var out map[string]any
		switch {
		case strings.HasSuffix(r.URL.Path, "/checkCardAccount"):
			out = map[string]any{"responseHeader": ok, "termsAndConditionsId": noTerms, "cardArtManifest": []string{"art-1"}}
		case strings.HasSuffix(r.URL.Path, "/getAsset"):
			var req struct{ GUID string }
			_ = json.Unmarshal(body, &req)
			out = map[string]any{"responseHeader": ok, "contentType": contentType, "content": base64.StdEncoding.EncodeToString(content)}
		case strings.HasSuffix(r.URL.Path, "/provisionCard"):
			provisions.Add(1)
			out = map[string]any{"responseHeader": ok, "walletCardId": "pvw-1", "walletCardAccountId": "wca-1"}
		default:
			http.NotFound(w, r)
			return
		}
		fault.WriteJSON(w, http.StatusOK, out)
	}))
}

func TestProvision_VerifiesEveryAssetBeforeProvisioning(t *testing.T) {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 4, 4)))
	for _, c := range []struct {
		name, contentType string
		content           []byte
		provisioned       bool
	}{
		{"a real PNG", "image/png", b.Bytes(), true},
		{"text labelled PNG", "image/png", []byte("not a picture"), false},
		{"a PNG labelled JPEG", "image/jpeg", b.Bytes(), false},
		{"a type no wallet shows", "application/x-msdownload", []byte("MZ"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var provisions atomic.Int64
			hub := fakeHub(t, c.contentType, c.content, &provisions)
			defer hub.Close()
			s, err := New(Config{HubURL: hub.URL, PartnerID: "w", PartnerSecret: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Provision(context.Background(), ProvisionRequest{IssuerID: "I", SEID: "0A0B", CardSource: "USER-INPUT",
				OpaqueCardAccountData: "x", LastDigits: "4711"})
			if err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if res.OK() != c.provisioned || (provisions.Load() == 1) != c.provisioned || st.AssetsFetched != 1 {
				t.Fatalf("result %+v, %d provisionCard calls, stats %+v", res, provisions.Load(), st)
			}
			if c.provisioned {
				if st.AssetsVerified != 1 || !s.hasCard("pvw-1", "0A0B") {
					t.Fatalf("stats %+v; card registered: %v", st, s.hasCard("pvw-1", "0A0B"))
				}
				return
			}
			if res.Step != "verify" || st.AssetsRejected != 1 || st.AssetsVerified != 0 {
				t.Fatalf("result %+v, stats %+v", res, st)
			}
		})
	}
}
