package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/paytv"
)

// keyLogin posts the Web API key login with key as the Basic user name
// and password as its password, and returns the envelope.
func (e *env) keyLogin(rule specRule, key, password string, body []byte) envelope {
	e.t.Helper()
	hdr := http.Header{"Content-Type": {"application/json"}}
	if key != "" || password != "" {
		hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(key+":"+password)))
	}
	status, _, raw := e.crm.send(rule, http.MethodPost, "/authentication/web_api_key/token", "", body, hdr)
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		e.t.Fatalf("web api key login: HTTP %d %s", status, raw)
	}
	env.HTTP, env.Raw = status, string(raw)
	return env
}

func TestCRM_AWebAPIKeyLogsInForTwoHoursUsedOrNot(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		key, id, err := e.hub.PayTV().AddWebAPIKey(ctx, paytv.NewWebAPIKey{Organisation: "CRMDEMO", Username: "operator", Name: "billing back end"})
		if err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT COUNT(*) FROM crm_web_api_keys WHERE key_hash = $1 AND key_id = $2`, auth.HashToken(key), id); n != 1 ||
			e.count(`SELECT COUNT(*) FROM crm_web_api_keys WHERE key_hash = $1 OR key_id = $1`, key) != 0 {
			t.Fatal("the key is not stored as its hash alone")
		}
		var data struct {
			Token string `json:"token"`
		}
		e.keyLogin(conforming, key, "", nil).ok(t, &data)
		show := func() envelope {
			return e.crm.get(conforming, "/conax_web_services/provisioning_requests/list", url.Values{"token": {data.Token}, "type": {"ADD_SUBSCRIPTIONS"}})
		}
		show().ok(t, nil)
		// Used every 50 minutes, it still lapses two hours after issue.
		e.clock.Advance(50 * time.Minute)
		show().ok(t, nil)
		e.clock.Advance(50 * time.Minute)
		show().ok(t, nil)
		e.clock.Advance(21 * time.Minute)
		show().code(t, "INVALID_TOKEN")

		// A unit of the organisation can be named; another is NOT_FOUND.
		var unit string
		if err := e.hub.DB().Reader().QueryRowContext(ctx, `SELECT n.id FROM crm_units n JOIN crm_organisations o ON o.id = n.organisation_id WHERE o.name = 'CRMDEMO' LIMIT 1`).Scan(&unit); err != nil {
			t.Fatal(err)
		}
		e.keyLogin(conforming, key, "", []byte(`{"unit":"`+unit+`"}`)).ok(t, nil)
		e.keyLogin(conforming, key, "", []byte(`{"unit":"NOPE"}`)).code(t, "NOT_FOUND")
		e.keyLogin(nonConforming, key, "", []byte(`{"unit":"x","extra":1}`)).code(t, "INVALID_PARAMETER")

		// The refusals, each as the envelope says.
		e.keyLogin(nonConforming, "", "", nil).code(t, "MISSING_MANDATORY_PARAMETER")
		e.keyLogin(conforming, key, "a-password", nil).code(t, "INVALID_PARAMETER")
		e.keyLogin(conforming, strings.Repeat("k", 200), "", nil).code(t, "INVALID_PARAMETER")

		// Revoked: refused, and its open sessions end.
		var live struct {
			Token string `json:"token"`
		}
		e.keyLogin(conforming, key, "", nil).ok(t, &live)
		if err := e.hub.PayTV().RevokeWebAPIKey(ctx, "CRMDEMO", id); err != nil {
			t.Fatal(err)
		}
		e.keyLogin(conforming, key, "", nil).code(t, "LOGIN_FAILED")
		e.crm.get(conforming, "/conax_web_services/provisioning_requests/list", url.Values{"token": {live.Token}, "type": {"ADD_SUBSCRIPTIONS"}}).code(t, "INVALID_TOKEN")
		keys, err := e.hub.PayTV().WebAPIKeys(ctx, "CRMDEMO")
		if err != nil || len(keys) != 1 || keys[0].RevokedAt == nil || keys[0].Username != "operator" {
			t.Fatalf("keys %+v %v", keys, err)
		}
		if strings.Contains(e.logs.String(), key) {
			t.Error("the key reached the log")
		}
	})
}

func TestCRM_GuessedWebAPIKeysAreLimitedLikePasswords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for range 5 {
		e.keyLogin(conforming, "pwak_guess", "", nil).code(t, "LOGIN_FAILED")
	}
	e.keyLogin(conforming, "pwak_guess", "", nil).code(t, "TOO_MANY_LOGIN_ATTEMPTS")
	// Other keys from the same address: the address limit (20) catches them.
	blocked := false
	for i := range 25 {
		if e.keyLogin(conforming, "pwak_spray"+strings.Repeat("x", i), "", nil).Status.Code == "TOO_MANY_LOGIN_ATTEMPTS" {
			blocked = true
			break
		}
	}
	if !blocked {
		t.Error("keys sprayed from one address were never blocked")
	}
}
