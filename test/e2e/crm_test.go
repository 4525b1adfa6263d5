package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/cas"
	cassim "github.com/provhub/provhub/internal/sim/cas"
)

const (
	ws  = "conax_web_services"
	sms = "conax_sms_sas"
)

func TestCRM_LoginReleaseAndIdleExpiry(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		// Both spellings of the organisation field log in.
		var data struct{ Token string }
		e.crm.post(conforming, "/authentication/token", map[string]string{
			"username": "operator", "password": "op-secret", "organization": "CRMDEMO"}).ok(t, &data)
		if len(data.Token) != 32 {
			t.Fatalf("token %q is not 32 hex digits", data.Token)
		}
		token := e.login("mpadministrator", "mp-admin-1234")
		if token == data.Token {
			t.Fatal("two logins got the same token")
		}
		list := func(tok string) envelope {
			return e.crm.get(conforming, "/"+ws+"/provisioning_requests/list", url.Values{"token": {tok}, "life_cycle_state": {"PENDING"}})
		}
		list(token).ok(t, nil)

		// A token lives while used, and lapses after an hour idle.
		e.clock.Advance(50 * time.Minute)
		list(token).ok(t, nil)
		e.clock.Advance(50 * time.Minute)
		list(token).ok(t, nil)
		e.clock.Advance(61 * time.Minute)
		list(token).code(t, "INVALID_TOKEN")
		list(data.Token).code(t, "INVALID_TOKEN")

		// Release kills a token at once; releasing it again is refused.
		token = e.login("mpadministrator", "mp-admin-1234")
		e.crm.post(conforming, "/authentication/token/release", map[string]string{"token": token}).ok(t, nil)
		list(token).code(t, "INVALID_TOKEN")
		e.crm.post(conforming, "/authentication/token/release", map[string]string{"token": token}).code(t, "INVALID_TOKEN")

		// Tokens are stored hashed.
		var n int
		if err := e.hub.DB().Reader().QueryRowContext(context.Background(),
			`SELECT count(*) FROM crm_tokens WHERE token_hash = $1`, data.Token).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a token is stored in clear (%d rows, %v)", n, err)
		}

		// The same user name in another organisation is another user.
		e.crm.post(conforming, "/authentication/token", map[string]string{
			"username": "mpadministrator", "password": "other-org-pass", "organisation": "OTHERORG"}).ok(t, nil)
		e.crm.post(conforming, "/authentication/token", map[string]string{
			"username": "mpadministrator", "password": "other", "organisation": "CRMDEMO"}).code(t, "LOGIN_FAILED")
	})
}

func TestCRM_FailedLoginsAreRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	bad := map[string]string{"username": "operator", "password": "wrong", "organisation": "CRMDEMO"}
	for range 5 {
		e.crm.post(conforming, "/authentication/token", bad).code(t, "LOGIN_FAILED")
	}
	// Blocked now, even with the right password.
	e.crm.post(conforming, "/authentication/token", map[string]string{
		"username": "operator", "password": "op-secret", "organisation": "CRMDEMO"}).code(t, "TOO_MANY_LOGIN_ATTEMPTS")
	// Another user from the same address still may, until the address's limit.
	e.login("mpadministrator", "mp-admin-1234")
	for i := range 15 {
		e.crm.post(conforming, "/authentication/token", map[string]string{
			"username": fmt.Sprintf("nobody%d", i), "password": "x", "organisation": "CRMDEMO"}).code(t, "LOGIN_FAILED")
	}
	e.crm.post(conforming, "/authentication/token", map[string]string{
		"username": "mpadministrator", "password": "mp-admin-1234", "organisation": "CRMDEMO"}).code(t, "TOO_MANY_LOGIN_ATTEMPTS")
	// The window ends.
	e.clock.Advance(16 * time.Minute)
	e.login("operator", "op-secret")
}

func TestCRM_EveryMethodReachesTheCAS(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		tok := e.login("mpadministrator", "mp-admin-1234")
		base := func(extra map[string]any) map[string]any {
			m := map[string]any{"token": tok}
			for k, v := range extra {
				m[k] = v
			}
			return m
		}
		sub := map[string]string{"number": "S60058"}
		steps := []struct {
			provider, method string
			body             map[string]any
			wantType         string
			wantParams       []string
		}{
			{ws, "add_subscriptions", base(map[string]any{"subscription_identifier": sub, "service_identifier": map[string]string{"code": "BASIC"},
				"smartcard_identifier": map[string]string{"serial_number": "S60058"}, "process_immediately": true}),
				"ADD_SUBSCRIPTIONS", []string{"service_ca_id=1001", "smartcard_ca_id=0100000001", "sub_provisioning_distribution_id=D1"}},
			{ws, "add_subscriptions", base(map[string]any{"subscription_identifier": sub, "service_identifier": map[string]string{"alternative_code": "BAS"},
				"smartcard_identifier": map[string]string{"serial_number": "sc20000002"}, "process_immediately": true, "priority": "EXPRESS"}),
				"ADD_SUBSCRIPTIONS", []string{"service_ca_id=1001", "smartcard_ca_id=0100000002"}},
			{ws, "cancel_subscriptions", base(map[string]any{"subscription_identifier": map[string]string{"id": "98D375E905CD31F4CC780342525B2078"},
				"service_identifier":   map[string]string{"id": "5C2DCFDD743632AC57AE8147B6EE665E"},
				"smartcard_identifier": map[string]string{"alternative_code": "SC-ALT-1"}, "process_immediately": true}),
				"CANCEL_SUBSCRIPTIONS", []string{"service_ca_id=1001", "smartcard_ca_id=0100000001"}},
			{ws, "create_pairing", base(map[string]any{"subscription_identifier": sub, "process_immediately": true,
				"smartcard_set": []map[string]string{{"smartcard_ca_id": "0100000001"}}, "stb_set": []map[string]string{{"stb_ca_id": "THMOD001-10002"}}}),
				"CREATE_PAIRING", []string{"smartcard_ca_id=0100000001", "stb_ca_id=THMOD001-10002", "stb_sub_provisioning_distributor_id=D9"}},
			{ws, "add_to_existing_pairing", base(map[string]any{"smartcard_identifier": map[string]string{"serial_number": "S60058"}, "process_immediately": true,
				"stb_set": []map[string]string{{"stb_ca_id": "THMOD001-10003"}}}),
				"ADD_TO_EXISTING_PAIRING", []string{"existing_smartcard_ca_id=0100000001", "stb_ca_id=THMOD001-10003"}},
			{ws, "reset_pin_to_given_value", base(map[string]any{"subscription_identifier": sub, "smartcard_identifier": map[string]string{"serial_number": "S60058"},
				"pin": "4812", "process_immediately": true}),
				"UPDATE_CA_PIN_TO_GIVEN_VALUE", []string{"smartcard_ca_id=0100000001", "ca_pin=<nil>"}},
			{ws, "reset_pin_to_default_value", base(map[string]any{"subscription_identifier": sub, "smartcard_identifier": map[string]string{"serial_number": "sc20000002"},
				"process_immediately": true}),
				"UPDATE_CA_PIN_TO_DEFAULT_VALUE", []string{"smartcard_ca_id=0100000002"}},
			{sms, "add_subscriptions", base(map[string]any{"subscription_identifier": sub, "service_identifier": map[string]string{"code": "SPORTS"},
				"smartcard_identifier": map[string]string{"serial_number": "sc20000003"}}),
				"ADD_SUBSCRIPTIONS", []string{"service_ca_id=1002", "smartcard_ca_id=0100000003"}},
			{sms, "cancel_subscriptions", base(map[string]any{"subscription_identifier": sub, "service_identifier": map[string]string{"code": "SPORTS"},
				"smartcard_identifier": map[string]string{"serial_number": "sc20000003"}}),
				"CANCEL_SUBSCRIPTIONS", []string{"service_ca_id=1002", "smartcard_ca_id=0100000003"}},
			{sms, "create_pairing", base(map[string]any{
				"smartcard_set": []map[string]string{{"smartcard_ca_id": "0100000004"}, {"smartcard_ca_id": "0100000005"}},
				"stb_set":       []map[string]string{{"stb_ca_id": "THMOD001-10004"}}}),
				"CREATE_PAIRING", []string{"smartcard_ca_id=0100000004", "smartcard_ca_id=0100000005", "stb_ca_id=THMOD001-10004"}},
		}
		var lastSeq int64
		for _, st := range steps {
			r := e.create(st.provider, st.method, st.body)
			immediate := st.body["process_immediately"] == true
			// Answered 0 or 1 when given, null when not, as published.
			want := "null"
			if v, given := st.body["process_immediately"]; given {
				want = map[bool]string{true: "1", false: "0"}[v == true]
			}
			if got := intOrNull(r.ProcessImmediately); r.Type != st.wantType || got != want {
				t.Fatalf("%s/%s: got type %s process_immediately %s, want %s", st.provider, st.method, r.Type, got, want)
			}
			if !immediate {
				if r.LifeCycleState != "PENDING" || r.SequenceNumber != nil || r.ExecutedDate != nil {
					t.Fatalf("%s/%s: a new request is not PENDING and unsent: %+v", st.provider, st.method, r)
				}
				r = e.waitFinal(st.provider, tok, r.ID)
			}
			if r.LifeCycleState != "COMPLETED" || r.ReferenceNumber == nil || r.ExecutedDate == nil || r.SequenceNumber == nil || r.Request == nil {
				t.Fatalf("%s/%s: not completed with a reference: %+v (%s / %s)", st.provider, st.method, r, str(r.ErrorCode), str(r.ErrorDescription))
			}
			if *r.SequenceNumber <= lastSeq {
				t.Errorf("%s/%s: sequence_number %d after %d", st.provider, st.method, *r.SequenceNumber, lastSeq)
			}
			lastSeq = *r.SequenceNumber
			if r.LogInformation.CreatedByUser.Username != "mpadministrator" || r.LogInformation.CreatedByUnit.Name != "Head office" {
				t.Errorf("%s/%s: log_information %+v", st.provider, st.method, r.LogInformation)
			}
			var got []string
			for _, p := range r.ParametersSet {
				for k, v := range p {
					if k != "id" {
						got = append(got, k+"="+str(v))
					}
				}
				if p["id"] == nil || *p["id"] == "" {
					t.Errorf("%s/%s: a parameter has no id", st.provider, st.method)
				}
			}
			for _, want := range st.wantParams {
				if !strings.Contains(strings.Join(got, " "), want) {
					t.Errorf("%s/%s: parameters_set %v lacks %s", st.provider, st.method, got, want)
				}
			}
			// The sms_sas request is not visible through conax_web_services, and the reverse.
			other := ws
			if st.provider == ws {
				other = sms
			}
			e.crm.get(conforming, "/"+other+"/provisioning_requests/show", url.Values{
				"token": {tok}, "provisioning_request_identifier": {"number=" + r.Number}}).code(t, "NOT_FOUND")
		}
		c1, _ := e.sim.Card("0100000001")
		if len(c1.Entitlements) != 0 || len(c1.PairedSTBs) != 2 || c1.PINIsDefault || !e.sim.PINMatches("0100000001", "4812") {
			t.Errorf("card 1 at the CAS: %+v", c1)
		}
		c2, _ := e.sim.Card("0100000002")
		if strings.Join(c2.Entitlements, ",") != "1001" || !c2.PINIsDefault {
			t.Errorf("card 2 at the CAS: %+v", c2)
		}
		c4, _ := e.sim.Card("0100000004")
		if len(c4.PairedCards) != 2 || len(c4.PairedSTBs) != 1 {
			t.Errorf("card 4 at the CAS: %+v", c4)
		}
	})
}

func TestCRM_ListFiltersPagingAndFieldsSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tok := e.login("mpadministrator", "mp-admin-1234")
	var ids []string
	future := e.clock.Now().Add(24 * time.Hour).UTC().Format("2006-01-02T15:04:05")
	for i := range 5 {
		r := e.create(ws, "add_subscriptions", map[string]any{"token": tok,
			"subscription_identifier": map[string]string{"number": "S60058"},
			"service_identifier":      map[string]string{"code": []string{"BASIC", "SPORTS", "MOVIES"}[i%3]},
			"smartcard_identifier":    map[string]string{"serial_number": "sc2000000" + strconv.Itoa(2+i)},
			"scheduled_date":          future})
		ids = append(ids, r.ID)
	}
	done := e.create(ws, "add_subscriptions", map[string]any{"token": tok, "process_immediately": true,
		"subscription_identifier": map[string]string{"number": "S60058"}, "service_identifier": map[string]string{"code": "BASIC"},
		"smartcard_identifier": map[string]string{"serial_number": "S60058"}})
	rejected := e.create(ws, "cancel_subscriptions", map[string]any{"token": tok, "process_immediately": true,
		"subscription_identifier": map[string]string{"number": "S60058"}, "service_identifier": map[string]string{"code": "MOVIES"},
		"smartcard_identifier": map[string]string{"serial_number": "S60058"}})
	if done.LifeCycleState != "COMPLETED" || rejected.LifeCycleState != "REJECTED" {
		t.Fatalf("setup: %s, %s", done.LifeCycleState, rejected.LifeCycleState)
	}
	list := func(q url.Values) []request {
		t.Helper()
		q.Set("token", tok)
		var out []request
		e.crm.get(conforming, "/"+ws+"/provisioning_requests/list", q).ok(t, &out)
		return out
	}
	idsOf := func(rs []request) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.ID)
		}
		return strings.Join(s, ",")
	}
	if got := list(url.Values{"life_cycle_state": {"PENDING"}}); idsOf(got) != strings.Join(ids, ",") {
		t.Errorf("PENDING list in creation order: got %s want %s", idsOf(got), strings.Join(ids, ","))
	}
	if got := list(url.Values{"type": {"CANCEL_SUBSCRIPTIONS"}}); idsOf(got) != rejected.ID {
		t.Errorf("type filter: %s", idsOf(got))
	}
	if got := list(url.Values{"type": {"ADD_SUBSCRIPTIONS"}, "life_cycle_state": {"COMPLETED"}}); idsOf(got) != done.ID {
		t.Errorf("type and state together: %s", idsOf(got))
	}
	if got := list(url.Values{"reference_number": {*done.ReferenceNumber}}); idsOf(got) != done.ID {
		t.Errorf("reference_number filter: %s", idsOf(got))
	}
	if got := list(url.Values{"life_cycle_state": {"PENDING"}, "number_of_results": {"2"}, "offset": {"1"}}); idsOf(got) != ids[1]+","+ids[2] {
		t.Errorf("paging: %s", idsOf(got))
	}
	if got := list(url.Values{"life_cycle_state": {"PENDING"}, "offset": {"10"}}); len(got) != 0 {
		t.Errorf("offset past the end: %d results", len(got))
	}
	// fields_set keeps only the named fields, on list and show.
	var slim []map[string]json.RawMessage
	e.crm.get(conforming, "/"+ws+"/provisioning_requests/list", url.Values{"token": {tok}, "life_cycle_state": {"REJECTED"},
		"fields_set": {"id,life_cycle_state,error_code"}}).ok(t, &slim)
	if len(slim) != 1 || len(slim[0]) != 3 || string(slim[0]["error_code"]) != `"CAS_REJECTED"` {
		t.Errorf("fields_set on list: %v", slim)
	}
	var one map[string]json.RawMessage
	e.crm.get(conforming, "/"+ws+"/provisioning_requests/show", url.Values{"token": {tok},
		"provisioning_request_identifier": {"number=" + done.Number}, "fields_set": {"number,reference_number"}}).ok(t, &one)
	if len(one) != 2 || string(one["number"]) != strconv.Quote(done.Number) {
		t.Errorf("fields_set on show: %v", one)
	}
	if r := e.show(ws, tok, rejected.ID); str(r.ProviderErrorCode) != cas.ResultServiceNotActive || str(r.ErrorCode) != "CAS_REJECTED" {
		t.Errorf("rejection details: %s %s", str(r.ProviderErrorCode), str(r.ErrorCode))
	}
	// Another organisation sees none of these.
	var other struct{ Token string }
	e.crm.post(conforming, "/authentication/token", map[string]string{"username": "mpadministrator", "password": "other-org-pass", "organisation": "OTHERORG"}).ok(t, &other)
	var none []request
	e.crm.get(conforming, "/"+ws+"/provisioning_requests/list", url.Values{"token": {other.Token}, "life_cycle_state": {"PENDING"}}).ok(t, &none)
	if len(none) != 0 {
		t.Errorf("another organisation lists %d requests", len(none))
	}
	e.crm.get(conforming, "/"+ws+"/provisioning_requests/show", url.Values{"token": {other.Token},
		"provisioning_request_identifier": {"id=" + done.ID}}).code(t, "NOT_FOUND")
}

func TestCRM_EveryDocumentedErrorCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tok := e.login("mpadministrator", "mp-admin-1234")
	path := "/" + ws + "/provisioning_requests/"
	good := func(over map[string]any) map[string]any {
		m := map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
			"service_identifier": map[string]string{"code": "BASIC"}, "smartcard_identifier": map[string]string{"serial_number": "S60058"}}
		for k, v := range over {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	posts := []struct {
		name string
		rule specRule
		path string
		body any
		code string
	}{
		{"no subscription", nonConforming, path + "add_subscriptions", good(map[string]any{"subscription_identifier": nil}), "MISSING_MANDATORY_PARAMETER"},
		{"no token", nonConforming, path + "add_subscriptions", good(map[string]any{"token": nil}), "MISSING_MANDATORY_PARAMETER"},
		{"empty identifier", nonConforming, path + "add_subscriptions", good(map[string]any{"smartcard_identifier": map[string]string{}}), "MISSING_MANDATORY_PARAMETER"},
		{"no pin", nonConforming, path + "reset_pin_to_given_value", good(map[string]any{"service_identifier": nil}), "MISSING_MANDATORY_PARAMETER"},
		{"no sets", nonConforming, path + "create_pairing", map[string]any{"token": tok}, "MISSING_MANDATORY_PARAMETER"},
		{"add to pairing without sets", conforming, path + "add_to_existing_pairing",
			map[string]any{"token": tok, "smartcard_identifier": map[string]string{"serial_number": "S60058"}}, "MISSING_MANDATORY_PARAMETER"},
		{"set entry without CA id", nonConforming, path + "create_pairing", map[string]any{"token": tok,
			"smartcard_set": []map[string]string{{}}, "stb_set": []map[string]string{{"stb_ca_id": "THMOD001-10002"}}}, "MISSING_MANDATORY_PARAMETER"},
		{"two identifier fields", nonConforming, path + "add_subscriptions",
			good(map[string]any{"smartcard_identifier": map[string]string{"serial_number": "S60058", "id": "X"}}), "MORE_THAN_ONE_IDENTIFIER_FIELD"},
		{"unknown identifier field", nonConforming, path + "add_subscriptions",
			good(map[string]any{"service_identifier": map[string]string{"serial_number": "X"}}), "INVALID_PARAMETER"},
		{"identifier not an object", nonConforming, path + "add_subscriptions", good(map[string]any{"service_identifier": "BASIC"}), "INVALID_PARAMETER"},
		{"bad priority", nonConforming, path + "add_subscriptions", good(map[string]any{"priority": "URGENT"}), "INVALID_PARAMETER"},
		{"bad date", nonConforming, path + "add_subscriptions", good(map[string]any{"scheduled_date": "2026-13-01 10:00"}), "INVALID_PARAMETER"},
		{"bad boolean", nonConforming, path + "add_subscriptions", good(map[string]any{"process_immediately": "yes"}), "INVALID_PARAMETER"},
		{"unknown parameter", nonConforming, path + "add_subscriptions", good(map[string]any{"priorty": "EXPRESS"}), "INVALID_PARAMETER"},
		{"sms_sas takes no priority", nonConforming, "/" + sms + "/provisioning_requests/add_subscriptions", good(map[string]any{"priority": "EXPRESS"}), "INVALID_PARAMETER"},
		{"not JSON", nonConforming, path + "add_subscriptions", []byte(`{"token":`), "INVALID_PARAMETER"},
		{"short PIN", nonConforming, path + "reset_pin_to_given_value", good(map[string]any{"service_identifier": nil, "pin": "12"}), "INVALID_PARAMETER"},
		{"STB as smartcard", conforming, path + "add_subscriptions",
			good(map[string]any{"smartcard_identifier": map[string]string{"serial_number": "THMOD001-10002"}}), "INVALID_PARAMETER"},
		{"immediately but in the future", conforming, path + "add_subscriptions",
			good(map[string]any{"process_immediately": true, "scheduled_date": "2099-01-01T00:00:00"}), "INVALID_PARAMETER"},
		{"unknown service", conforming, path + "add_subscriptions", good(map[string]any{"service_identifier": map[string]string{"code": "NOPE"}}), "NOT_FOUND"},
		{"unknown smartcard", conforming, path + "add_subscriptions", good(map[string]any{"smartcard_identifier": map[string]string{"id": "NOPE"}}), "NOT_FOUND"},
		{"unknown STB in set", conforming, path + "create_pairing", map[string]any{"token": tok,
			"smartcard_set": []map[string]string{{"smartcard_ca_id": "0100000002"}}, "stb_set": []map[string]string{{"stb_ca_id": "NOPE"}}}, "NOT_FOUND"},
		{"bad token", conforming, path + "add_subscriptions", good(map[string]any{"token": "0123456789ABCDEF0123456789ABCDEF"}), "INVALID_TOKEN"},
		{"terminated subscription", conforming, path + "add_subscriptions",
			good(map[string]any{"subscription_identifier": map[string]string{"number": "S00001"}}), "NOT_ALLOWED_IN_CURRENT_STATE"},
		{"login without password", nonConforming, "/authentication/token", map[string]string{"username": "operator", "organisation": "CRMDEMO"}, "MISSING_MANDATORY_PARAMETER"},
		{"login with two organisations", conforming, "/authentication/token",
			map[string]string{"username": "operator", "password": "op-secret", "organisation": "CRMDEMO", "organization": "OTHERORG"}, "INVALID_PARAMETER"},
		{"login to an unknown unit", conforming, "/authentication/token",
			map[string]string{"username": "operator", "password": "op-secret", "organisation": "CRMDEMO", "unit": "NOPE"}, "NOT_FOUND"},
	}
	for _, c := range posts {
		t.Run(c.name, func(t *testing.T) {
			e.crm.t = t
			env := e.crm.post(c.rule, c.path, c.body)
			env.code(t, c.code)
			if env.HTTP != http.StatusOK {
				t.Errorf("HTTP %d, want 200", env.HTTP)
			}
		})
	}
	gets := []struct {
		name string
		rule specRule
		path string
		q    url.Values
		code string
	}{
		{"show without identifier", nonConforming, path + "show", url.Values{"token": {tok}}, "MISSING_MANDATORY_PARAMETER"},
		{"show without token", nonConforming, path + "show", url.Values{"provisioning_request_identifier": {"number=1"}}, "MISSING_MANDATORY_PARAMETER"},
		{"show with a bad identifier form", nonConforming, path + "show", url.Values{"token": {tok}, "provisioning_request_identifier": {"4049"}}, "INVALID_PARAMETER"},
		{"show with an unknown field", nonConforming, path + "show", url.Values{"token": {tok}, "provisioning_request_identifier": {"code=1"}}, "INVALID_PARAMETER"},
		{"show naming two fields", conforming, path + "show", url.Values{"token": {tok}, "provisioning_request_identifier": {"number=1", "id=X"}}, "MORE_THAN_ONE_IDENTIFIER_FIELD"},
		{"show of nothing", conforming, path + "show", url.Values{"token": {tok}, "provisioning_request_identifier": {"number=999999"}}, "NOT_FOUND"},
		{"show with an unknown field in fields_set", conforming, path + "show",
			url.Values{"token": {tok}, "provisioning_request_identifier": {"number=1"}, "fields_set": {"id,colour"}}, "INVALID_PARAMETER"},
		{"list without filter", conforming, path + "list", url.Values{"token": {tok}}, "MISSING_MANDATORY_PARAMETER"},
		{"list with a bad state", nonConforming, path + "list", url.Values{"token": {tok}, "life_cycle_state": {"DONE"}}, "INVALID_PARAMETER"},
		{"list with a bad type", nonConforming, path + "list", url.Values{"token": {tok}, "type": {"REBOOT"}}, "INVALID_PARAMETER"},
		{"list with too many results", nonConforming, path + "list", url.Values{"token": {tok}, "type": {"CREATE_PAIRING"}, "number_of_results": {"501"}}, "INVALID_PARAMETER"},
		{"list with a negative offset", nonConforming, path + "list", url.Values{"token": {tok}, "type": {"CREATE_PAIRING"}, "offset": {"-1"}}, "INVALID_PARAMETER"},
		{"list with an unknown parameter", conforming, path + "list", url.Values{"token": {tok}, "type": {"CREATE_PAIRING"}, "colour": {"red"}}, "INVALID_PARAMETER"},
		{"list with an expired token", conforming, path + "list", url.Values{"token": {"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"}, "type": {"CREATE_PAIRING"}}, "INVALID_TOKEN"},
	}
	for _, c := range gets {
		t.Run(c.name, func(t *testing.T) {
			e.crm.t = t
			env := e.crm.get(c.rule, c.path, c.q)
			env.code(t, c.code)
		})
	}
	e.crm.t = t
	// Paths outside the API and wrong verbs still answer with an envelope.
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/crmapi/rest/v2/conax_web_services/provisioning_requests/delete", http.StatusNotFound, "NOT_FOUND"},
		{http.MethodGet, "/crmapi/rest/v2/conax_web_services/provisioning_requests/add_subscriptions", http.StatusMethodNotAllowed, "INVALID_PARAMETER"},
		{http.MethodGet, "/crmapi/rest/v2/conax_sms_sas/provisioning_requests/reset_pin_to_default_value", http.StatusNotFound, "NOT_FOUND"},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env envelope
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(raw, &env); err != nil || resp.StatusCode != c.status || env.Status.Code != c.code {
			t.Errorf("%s %s: HTTP %d %s, want %d %s", c.method, c.path, resp.StatusCode, raw, c.status, c.code)
		}
	}
	// Nothing was stored by any of the refused calls.
	var n int
	if err := e.hub.DB().Reader().QueryRowContext(context.Background(), `SELECT count(*) FROM paytv_requests`).Scan(&n); err != nil || n != 0 {
		t.Errorf("refused calls stored %d requests (%v)", n, err)
	}
}

func TestCRM_ExpressOvertakesRegularAndScheduledWaitsForItsTime(t *testing.T) {
	t.Parallel()
	// A generous CAS timeout: a send retried after a spurious timeout on a
	// loaded machine would rightly let later requests pass it.
	both(t, envOptions{maxWorkers: 1, casTimeout: 30 * time.Second}, func(t *testing.T, e *env) {
		tok := e.login("mpadministrator", "mp-admin-1234")
		when := e.clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05")
		mk := func(serial, priority string) request {
			return e.create(ws, "add_subscriptions", map[string]any{"token": tok,
				"subscription_identifier": map[string]string{"number": "S60058"}, "service_identifier": map[string]string{"code": "BASIC"},
				"smartcard_identifier": map[string]string{"serial_number": serial}, "scheduled_date": when, "priority": priority})
		}
		var regular, express []request
		for _, s := range []string{"sc20000002", "sc20000003", "sc20000004"} {
			regular = append(regular, mk(s, "REGULAR"))
		}
		for _, s := range []string{"sc20000005", "sc20000006"} {
			express = append(express, mk(s, "EXPRESS"))
		}
		if regular[0].ScheduledDate != when {
			t.Fatalf("scheduled_date %s, want %s", regular[0].ScheduledDate, when)
		}
		time.Sleep(300 * time.Millisecond) // several polls of the engine
		for _, r := range append(regular, express...) {
			if got := e.show(ws, tok, r.ID); got.LifeCycleState != "PENDING" {
				t.Fatalf("request due in an hour was sent at once: %+v", got)
			}
		}
		if st := e.sim.Stats(); st.Commands != 0 {
			t.Fatalf("the CAS got %d commands before the scheduled time", st.Commands)
		}
		e.clock.Advance(time.Hour + time.Second)
		tok = e.login("mpadministrator", "mp-admin-1234") // the hour idle ended the first session
		var maxExpress, minRegular int64 = 0, 1 << 62
		for _, r := range express {
			f := e.waitFinal(ws, tok, r.ID)
			maxExpress = max(maxExpress, *f.SequenceNumber)
		}
		for _, r := range regular {
			f := e.waitFinal(ws, tok, r.ID)
			if f.LifeCycleState != "COMPLETED" {
				t.Fatalf("%+v", f)
			}
			minRegular = min(minRegular, *f.SequenceNumber)
		}
		for _, r := range append(regular, express...) {
			if j := e.jobOf(r.ID); j.Attempt != 1 {
				t.Fatalf("request %s took %d attempts (%v); the order below assumes one each", r.ID, j.Attempt, j.Errors)
			}
		}
		if maxExpress >= minRegular {
			t.Errorf("EXPRESS sequence numbers reach %d, REGULAR start at %d: EXPRESS did not go first", maxExpress, minRegular)
		}
	})
}

func TestCRM_OneSmartcardsRequestsRunInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{maxWorkers: 8})
	tok := e.login("mpadministrator", "mp-admin-1234")
	// Add then cancel then add again: only the creation order makes all three succeed.
	var rs []request
	for i, typ := range []string{"add_subscriptions", "cancel_subscriptions", "add_subscriptions", "cancel_subscriptions"} {
		priority := "REGULAR"
		if i == 3 {
			priority = "EXPRESS" // priority never reorders one card's queue
		}
		rs = append(rs, e.create(ws, typ, map[string]any{"token": tok, "priority": priority,
			"subscription_identifier": map[string]string{"number": "S60058"}, "service_identifier": map[string]string{"code": "BASIC"},
			"smartcard_identifier": map[string]string{"serial_number": "sc20000002"}}))
	}
	var last int64
	for _, r := range rs {
		f := e.waitFinal(ws, tok, r.ID)
		if f.LifeCycleState != "COMPLETED" {
			t.Fatalf("request %s of one card out of order: %s %s", f.Type, str(f.ErrorCode), str(f.ErrorDescription))
		}
		if *f.SequenceNumber <= last {
			t.Errorf("sequence %d after %d", *f.SequenceNumber, last)
		}
		last = *f.SequenceNumber
	}
}

func TestCRM_CASFaultsAreRetriedThenRejected(t *testing.T) {
	t.Parallel()
	both(t, envOptions{sendAttempts: 3, casTimeout: 300 * time.Millisecond}, func(t *testing.T, e *env) {
		tok := e.login("mpadministrator", "mp-admin-1234")
		add := func(serial, code string) request {
			return e.create(ws, "add_subscriptions", map[string]any{"token": tok,
				"subscription_identifier": map[string]string{"number": "S60058"}, "service_identifier": map[string]string{"code": code},
				"smartcard_identifier": map[string]string{"serial_number": serial}})
		}
		// Busy twice, then carried out: COMPLETED on the third attempt, both failures kept on the job.
		if err := e.sim.SetFaults(cassim.Faults{BusyNext: 1, ErrorNext: 1}); err != nil {
			t.Fatal(err)
		}
		r := e.waitFinal(ws, tok, add("sc20000002", "BASIC").ID)
		if r.LifeCycleState != "COMPLETED" {
			t.Fatalf("after two transient faults: %s %s", r.LifeCycleState, str(r.ErrorDescription))
		}
		if j := e.jobOf(r.ID); j.Attempt != 3 || len(j.Errors) != 2 {
			t.Errorf("job: attempt %d, errors %v; want 3 and 2", j.Attempt, j.Errors)
		}
		// Unreachable every time: REJECTED as CAS_UNAVAILABLE after the last attempt.
		if err := e.sim.SetFaults(cassim.Faults{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		r = e.waitFinal(ws, tok, add("sc20000003", "BASIC").ID)
		if r.LifeCycleState != "REJECTED" || str(r.ErrorCode) != "CAS_UNAVAILABLE" || !contains(str(r.ErrorDescription), "3 attempts") {
			t.Fatalf("CAS down: %s %s %s", r.LifeCycleState, str(r.ErrorCode), str(r.ErrorDescription))
		}
		if j := e.jobOf(r.ID); j.Attempt != 3 || len(j.Errors) != 2 || j.State != "completed" {
			t.Errorf("job: %+v", j)
		}
		// Timeouts count as unavailable too.
		if err := e.sim.SetFaults(cassim.Faults{TimeoutRate: 1, HangMS: 2000}); err != nil {
			t.Fatal(err)
		}
		r = e.waitFinal(ws, tok, add("sc20000004", "BASIC").ID)
		if str(r.ErrorCode) != "CAS_UNAVAILABLE" {
			t.Fatalf("CAS hanging: %s %s", str(r.ErrorCode), str(r.ErrorDescription))
		}
		// A refusal is final at once.
		if err := e.sim.SetFaults(cassim.Faults{}); err != nil {
			t.Fatal(err)
		}
		r = e.waitFinal(ws, tok, add("sc-unknown-to-cas", "BASIC").ID)
		if r.LifeCycleState != "REJECTED" || str(r.ErrorCode) != "CAS_REJECTED" || str(r.ProviderErrorCode) != cas.ResultUnknownSmartcard || r.Response == nil {
			t.Fatalf("CAS refusal: %+v", r)
		}
		if j := e.jobOf(r.ID); j.Attempt != 1 {
			t.Errorf("a refusal was retried: attempt %d", j.Attempt)
		}
	})
}

func TestCRM_ARetriedSendNeverDoublesAnEntitlement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{casTimeout: 300 * time.Millisecond})
	tok := e.login("mpadministrator", "mp-admin-1234")
	// The CAS carries the first send out but its answer is lost.
	if err := e.sim.SetFaults(cassim.Faults{TimeoutNext: 1, HangMS: 2000}); err != nil {
		t.Fatal(err)
	}
	r := e.create(ws, "add_subscriptions", map[string]any{"token": tok,
		"subscription_identifier": map[string]string{"number": "S60058"}, "service_identifier": map[string]string{"code": "SPORTS"},
		"smartcard_identifier": map[string]string{"serial_number": "sc20000002"}})
	f := e.waitFinal(ws, tok, r.ID)
	if f.LifeCycleState != "COMPLETED" {
		t.Fatalf("the resend after a lost answer was refused: %s %s %s", f.LifeCycleState, str(f.ProviderErrorCode), str(f.ErrorDescription))
	}
	st := e.sim.Stats()
	if st.Executed != 1 || st.Replayed != 1 {
		t.Errorf("CAS stats %+v: want the command executed once and replayed once", st)
	}
	if c, _ := e.sim.Card("0100000002"); strings.Join(c.Entitlements, ",") != "1002" {
		t.Errorf("entitlements %v", c.Entitlements)
	}
}

func TestCRM_PINIsNeverLoggedReturnedOrKept(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		tok := e.login("mpadministrator", "mp-admin-1234")
		const pin = "7394"
		body := map[string]any{"token": tok, "subscription_identifier": map[string]string{"number": "S60058"},
			"smartcard_identifier": map[string]string{"serial_number": "sc20000003"}, "pin": pin}
		raw, _ := json.Marshal(body)
		env := e.crm.post(conforming, "/"+ws+"/provisioning_requests/reset_pin_to_given_value", raw)
		var r request
		env.ok(t, &r)
		answers := env.Raw
		f := e.waitFinal(ws, tok, r.ID)
		showRaw := e.crm.get(conforming, "/"+ws+"/provisioning_requests/show", url.Values{"token": {tok}, "provisioning_request_identifier": {"id=" + r.ID}}).Raw
		listRaw := e.crm.get(conforming, "/"+ws+"/provisioning_requests/list", url.Values{"token": {tok}, "type": {"UPDATE_CA_PIN_TO_GIVEN_VALUE"}}).Raw
		answers += showRaw + listRaw
		if f.LifeCycleState != "COMPLETED" || !e.sim.PINMatches("0100000003", pin) {
			t.Fatalf("PIN not set at the CAS: %+v", f)
		}
		for _, p := range f.ParametersSet {
			if v, ok := p["ca_pin"]; ok && v != nil {
				t.Errorf("ca_pin is %q, want null", *v)
			}
		}
		if holdsNumber(answers, pin) {
			t.Errorf("an answer holds the PIN")
		}
		if holdsNumber(e.logs.String(), pin) {
			t.Errorf("the logs hold the PIN")
		}
		if !strings.Contains(str(f.Request), `"pin":"****"`) {
			t.Errorf("request field %s: the PIN should show masked", str(f.Request))
		}
		var stored *string
		if err := e.hub.DB().Reader().QueryRowContext(context.Background(), `SELECT pin FROM paytv_requests WHERE id = $1`, r.ID).Scan(&stored); err != nil || stored != nil {
			t.Errorf("the PIN is still stored after the CAS answered (%v)", err)
		}
		var jobs string
		if err := e.hub.DB().Reader().QueryRowContext(context.Background(), `SELECT args || errors FROM jobs`).Scan(&jobs); err == nil && holdsNumber(jobs, pin) {
			t.Errorf("a job holds the PIN")
		}
	})
}

// holdsNumber tells whether text holds number as a value of its own: not
// inside a longer run of letters and digits. A four-digit PIN turns up by
// chance inside a 32-hex-digit id or a timestamp's fraction about once in
// two thousand ids; a leaked PIN stands alone ("pin":"7394", pin=7394).
func holdsNumber(text, number string) bool {
	isWord := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for from := 0; ; {
		i := strings.Index(text[from:], number)
		if i < 0 {
			return false
		}
		start, end := from+i, from+i+len(number)
		if (start == 0 || !isWord(text[start-1])) && (end == len(text) || !isWord(text[end])) {
			return true
		}
		from = start + 1
	}
}

func TestHoldsNumber(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		text string
		want bool
	}{
		{`{"pin":"7394"}`, true},
		{`"request":"{\"pin\":\"7394\"}"`, true},
		{`level=INFO pin=7394`, true},
		{`7394`, true},
		{`"id":"0A7394BC"`, false},
		{`"id":"7394BC"`, false},
		{`"id":"BC7394"`, false},
		{`"at":"2026-12-02T12:07:39.739412Z"`, false},
		{`"n":73940`, false},
		{`"id":"BC7394", "pin":"7394"`, true},
		{``, false},
	} {
		if got := holdsNumber(c.text, "7394"); got != c.want {
			t.Errorf("holdsNumber(%s) = %v, want %v", c.text, got, c.want)
		}
	}
}

func TestCRM_OpenAPIDocumentsAreServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, doc := range []string{"crm.yaml", "cas.yaml", "wallet.yaml"} {
		resp, err := http.Get(e.url + "/openapi/" + doc)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(raw), "openapi: 3.0") {
			t.Errorf("/openapi/%s: HTTP %d", doc, resp.StatusCode)
		}
	}
	newSpecClient(t, e.url, "cas.yaml", "/cas/v1") // validates the CAS document
	// Shown as text, not downloaded; listed at /openapi/ and on the front door.
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(raw)
	}
	if resp, _ := get("/openapi/issuer.yaml"); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("issuer.yaml served as %s", resp.Header.Get("Content-Type"))
	}
	for _, page := range []string{"/openapi/", "/"} {
		resp, body := get(page)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: HTTP %d %s", page, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, doc := range []string{"crm.yaml", "issuer.yaml", "transit.yaml", "wallet.yaml", "tes.yaml", "device.yaml", "cas.yaml"} {
			if !strings.Contains(body, `href="/openapi/`+doc+`"`) {
				t.Errorf("%s does not link %s", page, doc)
			}
		}
		if page == "/" && (!strings.Contains(body, `href="/console/"`) || !strings.Contains(body, `href="/readyz"`) || !strings.Contains(body, "provhub issuer API")) {
			t.Errorf("the front door: %s", body)
		}
	}
	if resp, _ := get("/nothing-here"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown path: HTTP %d", resp.StatusCode)
	}
}

func TestCRM_InternalErrorIsAnEnvelopeWithTheCorrelationID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tok := e.login("mpadministrator", "mp-admin-1234")
	// Break the store under the running hub.
	if _, err := e.hub.DB().Writer().ExecContext(context.Background(), `ALTER TABLE paytv_requests RENAME TO paytv_requests_gone`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.hub.DB().Writer().ExecContext(context.Background(), `ALTER TABLE paytv_requests_gone RENAME TO paytv_requests`)
	})
	env := e.crm.get(conforming, "/"+ws+"/provisioning_requests/list", url.Values{"token": {tok}, "type": {"CREATE_PAIRING"}})
	env.code(t, "INTERNAL_ERROR")
	if env.HTTP != http.StatusInternalServerError {
		t.Errorf("HTTP %d, want 500", env.HTTP)
	}
	if strings.Contains(env.Raw, "paytv_requests") {
		t.Errorf("the answer leaks the database error: %s", env.Raw)
	}
	if !strings.Contains(e.logs.String(), "paytv_requests") {
		t.Error("the database error is not in the log")
	}
}

func intOrNull(p *int) string {
	if p == nil {
		return "null"
	}
	return strconv.Itoa(*p)
}

// A request's answer on creation is what show answers for it afterwards,
// member by member (the creation answers from what it wrote), for every
// kind of request, with and without a scheduled date and a priority.
func TestCRM_TheCreationAnswerIsWhatShowAnswers(t *testing.T) {
	t.Parallel()
	both(t, envOptions{}, func(t *testing.T, e *env) {
		tok := e.login("mpadministrator", "mp-admin-1234")
		later := e.clock.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05")
		for name, c := range map[string]struct {
			method string
			body   map[string]any
		}{
			"add, scheduled": {"add_subscriptions", map[string]any{"subscription_identifier": map[string]string{"number": "S60058"},
				"service_identifier": map[string]string{"code": "BASIC"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000002"},
				"scheduled_date": later}},
			"cancel, express": {"cancel_subscriptions", map[string]any{"subscription_identifier": map[string]string{"number": "S60058"},
				"service_identifier": map[string]string{"code": "BASIC"}, "smartcard_identifier": map[string]string{"serial_number": "sc20000002"},
				"priority": "EXPRESS", "scheduled_date": later}},
			"pin reset": {"reset_pin_to_default_value", map[string]any{"subscription_identifier": map[string]string{"number": "S60058"},
				"smartcard_identifier": map[string]string{"serial_number": "sc20000002"}, "scheduled_date": later}},
		} {
			c.body["token"] = tok
			var created map[string]any
			e.crm.post(conforming, "/"+ws+"/provisioning_requests/"+c.method, c.body).ok(t, &created)
			var shown map[string]any
			e.crm.get(conforming, "/"+ws+"/provisioning_requests/show", url.Values{
				"token": {tok}, "provisioning_request_identifier": {fmt.Sprintf("id=%v", created["id"])}}).ok(t, &shown)
			if !reflect.DeepEqual(created, shown) {
				t.Errorf("%s: created\n%v\nshown\n%v", name, created, shown)
			}
		}
	})
}
