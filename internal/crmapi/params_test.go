package crmapi

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/paytv"
)

func codeOf(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.code
	}
	if err == nil {
		return CodeOK
	}
	return "?"
}

func TestQueryIdentifier(t *testing.T) {
	cases := []struct {
		query string
		want  string
		code  string
	}{
		{"provisioning_request_identifier=number=4049", "number=4049", CodeOK},
		{"provisioning_request_identifier=id%3DABC", "id=ABC", CodeOK},
		{"provisioning_request_identifier=number=a=b", "number=a=b", CodeOK},
		{"", "", CodeMissingParameter},
		{"provisioning_request_identifier=4049", "", CodeInvalidParameter},
		{"provisioning_request_identifier=number=", "", CodeMissingParameter},
		{"provisioning_request_identifier=serial_number=1", "", CodeInvalidParameter},
		{"provisioning_request_identifier=number=1&provisioning_request_identifier=id=2", "", CodeMoreThanOneField},
		{"provisioning_request_identifier=number=1&provisioning_request_identifier=number=2", "", CodeMoreThanOneField},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			v, _ := url.ParseQuery(c.query)
			id, err := query{v}.identifier("provisioning_request_identifier")
			if codeOf(err) != c.code {
				t.Fatalf("got %v (%s), want %s", err, codeOf(err), c.code)
			}
			if err == nil && id.String() != c.want {
				t.Fatalf("got %s, want %s", id, c.want)
			}
		})
	}
}

func TestBodyIdentifier(t *testing.T) {
	cases := []struct {
		json string
		want string
		code string
	}{
		{`{"serial_number":"S60058"}`, "serial_number=S60058", CodeOK},
		{`{"alternative_code":"A"}`, "alternative_code=A", CodeOK},
		{`{}`, "", CodeMissingParameter},
		{`{"serial_number":""}`, "", CodeMissingParameter},
		{`{"serial_number":"A","id":"B"}`, "", CodeMoreThanOneField},
		{`{"code":"A"}`, "", CodeInvalidParameter},
		{`{"id":7}`, "", CodeInvalidParameter},
		{`"S60058"`, "", CodeInvalidParameter},
		{`[{"id":"A"}]`, "", CodeInvalidParameter},
	}
	for _, c := range cases {
		t.Run(c.json, func(t *testing.T) {
			b, err := parseBody([]byte(`{"smartcard_identifier":`+c.json+`}`), []string{"smartcard_identifier"})
			if err != nil {
				t.Fatal(err)
			}
			id, err := b.identifier("smartcard_identifier", true)
			if codeOf(err) != c.code {
				t.Fatalf("got %v (%s), want %s", err, codeOf(err), c.code)
			}
			if err == nil && id.String() != c.want {
				t.Fatalf("got %s, want %s", id, c.want)
			}
		})
	}
	b, _ := parseBody([]byte(`{"smartcard_identifier":null}`), []string{"smartcard_identifier"})
	if _, err := b.identifier("smartcard_identifier", true); codeOf(err) != CodeMissingParameter {
		t.Errorf("null identifier: %v", err)
	}
}

func TestParseBodyRefusesUnknownFieldsAndNonObjects(t *testing.T) {
	allowed := []string{"token", "pin"}
	for raw, code := range map[string]string{
		`{"token":"T"}`:             CodeOK,
		`{"token":"T","colour":1}`:  CodeInvalidParameter,
		`[]`:                        CodeInvalidParameter,
		`null`:                      CodeInvalidParameter,
		`{"token":"T"} {"pin":"1"}`: CodeInvalidParameter,
		``:                          CodeInvalidParameter,
	} {
		if _, err := parseBody([]byte(raw), allowed); codeOf(err) != code {
			t.Errorf("%q: got %v, want %s", raw, err, code)
		}
	}
}

func TestCreateInputReadsDatesBooleansAndPriority(t *testing.T) {
	m := createMethods[paytv.ConaxWebServices][0]
	ok := `"token":"T","subscription_identifier":{"number":"S"},"service_identifier":{"code":"B"},"smartcard_identifier":{"serial_number":"C"}`
	cases := []struct {
		extra string
		code  string
		check func(t *testing.T, in paytv.CreateInput)
	}{
		{``, CodeOK, func(t *testing.T, in paytv.CreateInput) {
			if in.ScheduledAt != nil || in.ProcessImmediately || in.Priority != "" {
				t.Errorf("defaults: %+v", in)
			}
		}},
		{`,"start_date":"2014-11-30T09:00:00","priority":"EXPRESS","process_immediately":1`, CodeOK, func(t *testing.T, in paytv.CreateInput) {
			if !in.ScheduledAt.Equal(time.Date(2014, 11, 30, 9, 0, 0, 0, time.UTC)) || in.Priority != paytv.Express || !in.ProcessImmediately {
				t.Errorf("got %+v", in)
			}
		}},
		{`,"start_date":"2014-11-30T09:00:00","scheduled_date":"2014-11-30T09:00:00"`, CodeOK, nil},
		{`,"start_date":"2014-11-30T09:00:00","scheduled_date":"2014-11-30T10:00:00"`, CodeInvalidParameter, nil},
		{`,"scheduled_date":"2014-11-30"`, CodeInvalidParameter, nil},
		{`,"scheduled_date":"2014-02-30T09:00:00"`, CodeInvalidParameter, nil},
		{`,"process_immediately":"true"`, CodeInvalidParameter, nil},
		{`,"process_immediately":null`, CodeOK, func(t *testing.T, in paytv.CreateInput) {
			if in.ProcessImmediately || in.ProcessImmediatelyGiven {
				t.Errorf("null process_immediately: %+v", in)
			}
		}},
		{`,"process_immediately":0`, CodeOK, func(t *testing.T, in paytv.CreateInput) {
			if in.ProcessImmediately || !in.ProcessImmediatelyGiven {
				t.Errorf("process_immediately 0: %+v", in)
			}
		}},
		{`,"priority":"express"`, CodeInvalidParameter, nil},
	}
	for _, c := range cases {
		t.Run(c.extra, func(t *testing.T) {
			b, err := parseBody([]byte("{"+ok+c.extra+"}"), m.takes)
			if err != nil {
				t.Fatal(err)
			}
			in, err := createInput(b, m)
			if codeOf(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
			if err == nil && c.check != nil {
				c.check(t, in)
			}
		})
	}
}

func TestFieldsSet(t *testing.T) {
	if f, err := fieldsSet(""); err != nil || f != nil {
		t.Errorf("empty: %v %v", f, err)
	}
	if f, err := fieldsSet("id, number ,parameters_set"); err != nil || len(f) != 3 {
		t.Errorf("three fields: %v %v", f, err)
	}
	for _, bad := range []string{"colour", ",", "id,,colour"} {
		if _, err := fieldsSet(bad); codeOf(err) != CodeInvalidParameter {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestListFilterPaging(t *testing.T) {
	cases := map[string]string{
		"type=CREATE_PAIRING":                           CodeOK,
		"type=CREATE_PAIRING&number_of_results=500":     CodeOK,
		"type=CREATE_PAIRING&number_of_results=501":     CodeInvalidParameter,
		"type=CREATE_PAIRING&offset=x":                  CodeInvalidParameter,
		"type=CREATE_PAIRING&type=ADD_SUBSCRIPTIONS":    CodeInvalidParameter,
		"number_of_results=5":                           CodeMissingParameter,
		"life_cycle_state=pending":                      CodeInvalidParameter,
		"reference_number=abc&life_cycle_state=PENDING": CodeOK,
	}
	for q, code := range cases {
		v, _ := url.ParseQuery(q)
		f, _, err := listFilter(query{v})
		if codeOf(err) != code {
			t.Errorf("%s: got %v, want %s", q, err, code)
		}
		if q == "type=CREATE_PAIRING" && (f.Limit != defaultResults || f.Offset != 0) {
			t.Errorf("default paging %d/%d", f.Limit, f.Offset)
		}
	}
}
