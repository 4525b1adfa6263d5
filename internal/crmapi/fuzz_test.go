package crmapi

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/paytv"
)

// The parsers must never panic, and must either refuse input with one of
// the API's own codes or return a well-formed value.

func FuzzQueryParsing(f *testing.F) {
	for _, s := range []string{
		"token=T&provisioning_request_identifier=number=4049",
		"token=T&provisioning_request_identifier=id=A&provisioning_request_identifier=number=1",
		"token=T&type=CREATE_PAIRING&number_of_results=10&offset=5&fields_set=id,number",
		"%zz", "a=%", "provisioning_request_identifier==", "offset=99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw, append(append([]string{}, showParams...), listParams...))
		if err != nil {
			mustBeAPIError(t, err)
			return
		}
		if id, err := q.identifier("provisioning_request_identifier"); err != nil {
			mustBeAPIError(t, err)
		} else if id.Value == "" || (id.Field != "id" && id.Field != "number") {
			t.Fatalf("accepted identifier %+v", id)
		}
		if flt, fields, err := listFilter(q); err != nil {
			mustBeAPIError(t, err)
		} else if flt.Limit < 0 || flt.Limit > maxResults || flt.Offset < 0 || (fields != nil && len(fields) == 0) {
			t.Fatalf("accepted filter %+v %v", flt, fields)
		}
	})
}

func FuzzBodyParsing(f *testing.F) {
	for _, s := range []string{
		`{"token":"T","subscription_identifier":{"number":"S"},"service_identifier":{"code":"B"},"smartcard_identifier":{"serial_number":"C"}}`,
		`{"token":"T","smartcard_set":[{"smartcard_ca_id":"1"}],"stb_set":[{"stb_ca_id":"2"}],"process_immediately":true}`,
		`{"token":"T","smartcard_identifier":{"id":"A","serial_number":"B"}}`,
		`{"token":"T","scheduled_date":"2026-01-01T00:00:00","priority":"EXPRESS","pin":"1234"}`,
		`{"smartcard_set":[{}]}`, `[]`, `{`, `{"token":null}`,
	} {
		f.Add([]byte(s))
	}
	all := createMethods[paytv.ConaxWebServices]
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, m := range all {
			b, err := parseBody(raw, m.takes)
			if err != nil {
				mustBeAPIError(t, err)
				continue
			}
			in, err := createInput(b, m)
			if err != nil {
				mustBeAPIError(t, err)
				continue
			}
			for _, id := range []*paytv.Identifier{in.Subscription, in.Service, in.Smartcard} {
				if id != nil && (id.Value == "" || id.Field == "") {
					t.Fatalf("accepted identifier %+v", id)
				}
			}
			for _, ca := range append(append([]string{}, in.SmartcardSet...), in.STBSet...) {
				if ca == "" {
					t.Fatal("accepted an empty CA id")
				}
			}
		}
	})
}

func FuzzIdentifierObject(f *testing.F) {
	for _, s := range []string{`{"number":"1"}`, `{"id":"A","number":"B"}`, `{}`, `{"id":1}`, `null`, `"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for name := range paytv.IdentifierFields {
			id, err := decodeIdentifier(name, json.RawMessage(raw))
			if err != nil {
				mustBeAPIError(t, err)
				continue
			}
			if id.Value == "" || !strings.Contains(strings.Join(paytv.IdentifierFields[name], ","), id.Field) {
				t.Fatalf("%s accepted %+v from %s", name, id, raw)
			}
		}
		_, _ = url.ParseQuery(raw)
	})
}

func mustBeAPIError(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || messages[ae.code] == "" || ae.message == "" {
		t.Fatalf("error %v is not one of the API's documented refusals", err)
	}
}
