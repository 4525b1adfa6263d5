package issuerapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/cardaccount"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/sealed"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
	"github.com/provhub/provhub/internal/transit"
	"github.com/provhub/provhub/internal/wallet"
)

// The decoders must never panic, and every input they cannot use must be
// refused as a bad request, never passed on half read.

func FuzzParseTokenRequest(f *testing.F) {
	grant := url.QueryEscape(oauth.GrantType)
	for _, c := range [][2]string{
		{"application/x-www-form-urlencoded", "grant_type=" + grant + "&assertion=a.b.c"},
		{"application/x-www-form-urlencoded; charset=utf-8", "grant_type=x&grant_type=y"},
		{"application/json", `{"grant_type":"` + oauth.GrantType + `","assertion":"a.b.c"}`},
		{"application/json", `{"grant_type":5}`},
		{"application/json", `{"assertion":"x"} {"assertion":"y"}`},
		{"text/plain", "hello"},
		{"application/x-www-form-urlencoded", "%zz"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		req, err := parseTokenRequest(r)
		if err != nil {
			if req != (tokenRequest{}) {
				t.Fatalf("a refused request carries values: %+v", req)
			}
			return
		}
		ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
		switch ct {
		case "application/x-www-form-urlencoded":
			q, perr := url.ParseQuery(body)
			if perr == nil && (q.Get("grant_type") != req.GrantType || q.Get("assertion") != req.Assertion) {
				t.Fatalf("form %q read as %+v", body, req)
			}
		case "application/json":
			var back tokenRequest
			if json.Unmarshal([]byte(body), &back) == nil && back != req {
				t.Fatalf("json %q read as %+v", body, req)
			}
		default:
			t.Fatalf("content type %q accepted", contentType)
		}
	})
}

// fuzzAPI is the issuer API over a fresh SQLite database, with a token for
// issuer FUZZISSUER.
func fuzzAPI(f *testing.F) (http.Handler, string, *oauth.Server) {
	f.Helper()
	db := storetest.Open(f, store.SQLite)
	ctx := context.Background()
	if _, err := db.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	wc, err := wallet.NewClient(wallet.ClientConfig{BaseURL: "http://127.0.0.1:1", Pod: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	reg := engine.NewRegistry()
	eng, err := engine.New(engine.Config{DB: db, Registry: reg})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(eng.Close)
	tr, err := transit.New(transit.Config{DB: db, Wallet: wc, Engine: eng, Jobs: reg})
	if err != nil {
		f.Fatal(err)
	}
	assets := asset.New(db, nil)
	svc, err := issuer.New(issuer.Config{DB: db, Transit: tr, Assets: assets, Engine: eng, Jobs: reg})
	if err != nil {
		f.Fatal(err)
	}
	srv, err := oauth.New(oauth.Config{DB: db, SecretKey: sealed.NewKey()})
	if err != nil {
		f.Fatal(err)
	}
	privPEM, pubPEM, err := oauth.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.AddClientKey(ctx, "FUZZISSUER", "k1", pubPEM); err != nil {
		f.Fatal(err)
	}
	key, _ := oauth.ParsePrivateKey(privPEM)
	assertion, _ := oauth.SignAssertion(key, oauth.Assertion{IssuerID: "FUZZISSUER", Kid: "k1", Expires: time.Now().Add(time.Minute)})
	tok, err := srv.Exchange(ctx, oauth.GrantType, assertion)
	if err != nil {
		f.Fatal(err)
	}
	accounts, err := cardaccount.New(cardaccount.Config{DB: db, Key: sealed.NewKey(), Issuers: svc})
	if err != nil {
		f.Fatal(err)
	}
	a, err := New(Config{Service: svc, Accounts: accounts, Assets: assets, OAuth: srv})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Mount(mux)
	if err := svc.RegisterConsumer(ctx, "FUZZISSUER", "known", issuer.Requestor{Type: issuer.RequestorIssuer, ID: "FUZZISSUER"}); err != nil {
		f.Fatal(err)
	}
	return mux, tok.AccessToken, srv
}

// FuzzBankingPaths sends authenticated calls with arbitrary path
// parameters, query and body: the answer is always one the API documents
// for the input (never a 500), with a JSON error body when refused.
func FuzzBankingPaths(f *testing.F) {
	h, token, _ := fuzzAPI(f)
	for _, c := range [][4]string{
		{"FUZZISSUER", "known", "offset=0&limit=10", ""},
		{"FUZZISSUER", "known", "", `{"reason":"x","reasonCode":"USER_DECISION"}`},
		{"FUZZISSUER", "un known", "limit=99", "{"},
		{"OTHERISSUE", "known", "", ""},
		{"SHORT", "%2F..%2F", "offset=-1", "[]"},
		{"FUZZISSUER", strings.Repeat("a", 65), "offset=1e9", `{"reason":5}`},
	} {
		f.Add(c[0], c[1], c[2], c[3])
	}
	f.Fuzz(func(t *testing.T, issuerID, consumerID, query, body string) {
		for _, call := range []struct{ method, path string }{
			{"GET", "/consumers/" + url.PathEscape(consumerID) + "/operations"},
			{"GET", "/consumers/" + url.PathEscape(consumerID) + "/operations/" + url.PathEscape(query)},
			{"PUT", "/consumers/" + url.PathEscape(consumerID)},
			{"PUT", "/cards/" + url.PathEscape(consumerID)},
			{"GET", "/digitalCards/" + url.PathEscape(consumerID)},
			{"POST", "/cards/" + url.PathEscape(consumerID) + "/provisioningData"},
			{"POST", "/assets?" + query},
			{"GET", "/assets/" + url.PathEscape(consumerID)},
			{"DELETE", "/assets/" + url.PathEscape(consumerID)},
		} {
			target := BankingPrefix + "/issuers/" + url.PathEscape(issuerID) + call.path
			if call.method == "GET" && !strings.Contains(call.path, "/operations/") {
				target += "?" + query
			}
			r, err := http.NewRequest(call.method, "http://hub"+target, strings.NewReader(body))
			if err != nil {
				return
			}
			r.Header.Set("Authorization", "Bearer "+token)
			if call.method == "POST" && strings.HasPrefix(call.path, "/assets") {
				r.Header.Set("Content-Type", "image/png")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			switch w.Code {
			case http.StatusOK, http.StatusCreated, http.StatusNoContent, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict:
			case http.StatusMovedPermanently, http.StatusTemporaryRedirect:
				continue // the mux cleans paths with dot segments
			default:
				t.Fatalf("%s %s: HTTP %d %s", call.method, target, w.Code, w.Body)
			}
			if w.Code >= 400 {
				var e struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error == "" {
					t.Fatalf("%s %s: HTTP %d without an error body: %s", call.method, target, w.Code, w.Body)
				}
			}
			if w.Code < 300 && issuerID != "FUZZISSUER" {
				t.Fatalf("%s %s succeeded for another issuer", call.method, target)
			}
		}
	})
}

// FuzzAccessToken: an arbitrary bearer token never opens a call.
func FuzzAccessToken(f *testing.F) {
	h, token, _ := fuzzAPI(f)
	f.Add(token)
	f.Add(token[:len(token)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJGVVpaSVNTVUVSIn0.")
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest("GET", BankingPrefix+"/issuers/FUZZISSUER/consumers/known/operations", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusOK && strings.TrimSpace(tok) != token {
			t.Fatalf("token %q opened the call", tok)
		}
		if w.Code != http.StatusOK && w.Code != http.StatusUnauthorized && w.Code != http.StatusBadRequest {
			t.Fatalf("HTTP %d %s", w.Code, w.Body)
		}
	})
}
