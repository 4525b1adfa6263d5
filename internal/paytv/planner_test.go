package paytv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/engine/enginetest"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// newService makes a pay-TV service over reference data of one
// organisation, and a session of its user. Its engine is not started: the
// tests look at what a request plans and queues, not at its sending.
func newService(t *testing.T, db *store.DB) (*paytv.Service, *engine.Engine, *paytv.Session) {
	t.Helper()
	ctx := context.Background()
	jobs := engine.NewRegistry()
	eng, err := engine.New(engine.Config{DB: db, Registry: jobs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	svc, err := paytv.New(paytv.Config{DB: db, Engine: eng, Jobs: jobs, PasswordCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddUser(ctx, paytv.NewUser{Organisation: "ORG", Username: "ops", Password: "pa55word"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Import(ctx, paytv.ReferenceData{
		Organisation:  "ORG",
		Units:         []paytv.UnitData{{Name: "North"}},
		Subscriptions: []paytv.SubscriptionData{{Number: "S1"}, {Number: "S2", LifeCycleState: "SUSPENDED"}},
		Services:      []paytv.ServiceData{{Code: "SPORT", CAID: "SV-1"}},
		Smartcards: []paytv.ItemData{{SerialNumber: "SC1", CAID: "0100000001", SubProvisioningDistributionID: "D1"},
			{SerialNumber: "SC2", CAID: "0100000002"}},
		STBs: []paytv.ItemData{{SerialNumber: "STB1", CAID: "ST-1"}},
	}); err != nil {
		t.Fatal(err)
	}
	token, err := svc.Login(ctx, paytv.Credentials{Organisation: "ORG", Username: "ops", Password: "pa55word"})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := svc.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	return svc, eng, sess
}

func id(field, value string) *paytv.Identifier { return &paytv.Identifier{Field: field, Value: value} }

func params(r *paytv.Request) string {
	var b strings.Builder
	for _, p := range r.Parameters {
		v := "<withheld>"
		if p.Value != nil {
			v = *p.Value
		}
		b.WriteString(p.Name + "=" + v + " ")
	}
	return strings.TrimSpace(b.String())
}

// TestCreate_EachTypeIsPlannedAndQueuedOnItsSmartcard: a planner per
// request type resolves what the client named to CA ids, and the request's
// send job joins the queue of the smartcard it acts on.
func TestCreate_EachTypeIsPlannedAndQueuedOnItsSmartcard(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc, eng, sess := newService(t, db)
		for _, c := range []struct {
			name      string
			in        paytv.CreateInput
			smartcard string
			params    string
		}{
			{"add subscriptions", paytv.CreateInput{Type: paytv.TypeAddSubscriptions, Subscription: id("number", "S1"), Service: id("code", "SPORT"), Smartcard: id("serial_number", "SC1")},
				"0100000001", "service_ca_id=SV-1 smartcard_ca_id=0100000001 sub_provisioning_distribution_id=D1"},
			{"cancel subscriptions", paytv.CreateInput{Type: paytv.TypeCancelSubscriptions, Subscription: id("number", "S1"), Service: id("code", "SPORT"), Smartcard: id("serial_number", "SC2")},
				"0100000002", "service_ca_id=SV-1 smartcard_ca_id=0100000002 sub_provisioning_distribution_id=<withheld>"},
			{"create pairing", paytv.CreateInput{Type: paytv.TypeCreatePairing, SmartcardSet: []string{"0100000002"}, STBSet: []string{"ST-1"}},
				"0100000002", "smartcard_ca_id=0100000002 smartcard_sub_provisioning_distribution_id=<withheld> stb_ca_id=ST-1 stb_sub_provisioning_distributor_id=<withheld>"},
			{"add to existing pairing", paytv.CreateInput{Type: paytv.TypeAddToExistingPairing, Smartcard: id("serial_number", "SC1"), STBSet: []string{"ST-1"}},
				"0100000001", "existing_smartcard_ca_id=0100000001 stb_ca_id=ST-1 stb_sub_provisioning_distributor_id=<withheld>"},
			{"PIN to its default", paytv.CreateInput{Type: paytv.TypeResetPINToDefault, Subscription: id("number", "S1"), Smartcard: id("serial_number", "SC1")},
				"0100000001", "smartcard_ca_id=0100000001 smartcard_sub_provisioning_distribution_id=D1"},
			{"PIN to a given value", paytv.CreateInput{Type: paytv.TypeResetPINToGivenValue, Subscription: id("number", "S1"), Smartcard: id("serial_number", "SC1"), PIN: "4321"},
				"0100000001", "smartcard_ca_id=0100000001 smartcard_sub_provisioning_distribution_id=D1 ca_pin=<withheld>"},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.in.Provider = paytv.ConaxWebServices
				r, err := svc.Create(context.Background(), sess, c.in)
				if err != nil {
					t.Fatal(err)
				}
				if r.LifeCycleState != paytv.Pending || r.SmartcardCAID != c.smartcard || params(r) != c.params {
					t.Errorf("request %s on %s with %q", r.LifeCycleState, r.SmartcardCAID, params(r))
				}
				job := enginetest.RequireUnique[paytv.SendArgs](t, eng, paytv.SendJobKey(r.ID))
				if job.Subject != "smartcard:"+c.smartcard || job.Args.RequestID != r.ID {
					t.Errorf("send job subject %q args %+v", job.Subject, job.Args)
				}
				if strings.Contains(string(job.JobRow.Args), "4321") {
					t.Error("the PIN reached the job's arguments")
				}
			})
		}
	})
}

// TestCreate_RefusalsNameWhatIsWrong: each refusal has the kind the APIs
// map to their documented codes, and nothing is queued for it.
func TestCreate_RefusalsNameWhatIsWrong(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		svc, eng, sess := newService(t, db)
		add := func(sub, svcCode, card *paytv.Identifier) paytv.CreateInput {
			return paytv.CreateInput{Type: paytv.TypeAddSubscriptions, Subscription: sub, Service: svcCode, Smartcard: card}
		}
		for _, c := range []struct {
			name string
			in   paytv.CreateInput
			kind paytv.ErrorKind
			says string
		}{
			{"no subscription", add(nil, id("code", "SPORT"), id("serial_number", "SC1")), paytv.KindMissing, "subscription_identifier is required"},
			{"unknown subscription", add(id("number", "S9"), id("code", "SPORT"), id("serial_number", "SC1")), paytv.KindNotFound, "no subscription with number=S9"},
			{"suspended subscription", add(id("number", "S2"), id("code", "SPORT"), id("serial_number", "SC1")), paytv.KindNotAllowed, "is SUSPENDED"},
			{"unknown identifier field", add(id("colour", "S1"), id("code", "SPORT"), id("serial_number", "SC1")), paytv.KindInvalid, `unknown field "colour"`},
			{"no service", add(id("number", "S1"), nil, id("serial_number", "SC1")), paytv.KindMissing, "service_identifier and smartcard_identifier are required"},
			{"unknown service", add(id("number", "S1"), id("code", "MOVIES"), id("serial_number", "SC1")), paytv.KindNotFound, "no service with code=MOVIES"},
			{"an STB named as the smartcard", add(id("number", "S1"), id("code", "SPORT"), id("serial_number", "STB1")), paytv.KindInvalid, "is a stb, not a smartcard"},
			{"pairing without STBs", paytv.CreateInput{Type: paytv.TypeCreatePairing, SmartcardSet: []string{"0100000001"}}, paytv.KindMissing, "smartcard_set and stb_set are required"},
			{"a card named twice", paytv.CreateInput{Type: paytv.TypeCreatePairing, SmartcardSet: []string{"0100000001", "0100000001"}, STBSet: []string{"ST-1"}}, paytv.KindInvalid, "named twice"},
			{"an unknown CA id", paytv.CreateInput{Type: paytv.TypeCreatePairing, SmartcardSet: []string{"0199999999"}, STBSet: []string{"ST-1"}}, paytv.KindNotFound, "no installed item with CA id 0199999999"},
			{"given PIN missing", paytv.CreateInput{Type: paytv.TypeResetPINToGivenValue, Subscription: id("number", "S1"), Smartcard: id("serial_number", "SC1")}, paytv.KindMissing, "pin is required"},
			{"a PIN of letters", paytv.CreateInput{Type: paytv.TypeResetPINToGivenValue, Subscription: id("number", "S1"), Smartcard: id("serial_number", "SC1"), PIN: "abcd"}, paytv.KindInvalid, "four digits"},
			{"a PIN with the default reset", paytv.CreateInput{Type: paytv.TypeResetPINToDefault, Subscription: id("number", "S1"), Smartcard: id("serial_number", "SC1"), PIN: "1234"}, paytv.KindInvalid, "not a parameter"},
			{"a type this API does not create", paytv.CreateInput{Type: paytv.TypeGetActiveSubscription}, paytv.KindInvalid, "cannot be created through this API"},
			{"an unknown priority", paytv.CreateInput{Type: paytv.TypeAddSubscriptions, Priority: "URGENT"}, paytv.KindInvalid, "priority must be REGULAR or EXPRESS"},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.in.Provider = paytv.ConaxWebServices
				_, err := svc.Create(context.Background(), sess, c.in)
				if paytv.KindOf(err) != c.kind || err == nil || !strings.Contains(err.Error(), c.says) {
					t.Errorf("error %v (kind %d), want kind %d saying %q", err, paytv.KindOf(err), c.kind, c.says)
				}
			})
		}
		if jobs := enginetest.Jobs[paytv.SendArgs](t, eng, nil); len(jobs) != 0 {
			t.Errorf("%d send jobs queued for refused requests", len(jobs))
		}
	})
}
