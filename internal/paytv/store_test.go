package paytv

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

// organisation stores organisation ORG with units North and South and a
// user ops; it returns the ids of the organisation, the user and North.
func organisation(t testing.TB, db *store.DB) (orgID, userID, northID string) {
	t.Helper()
	ctx := context.Background()
	storetest.InTx(t, db, func(tx *store.Tx) error {
		var err error
		if orgID, err = ensureOrganisation(ctx, tx, "ORG"); err != nil {
			return err
		}
		for _, name := range []string{"South", "North"} {
			if err := saveUnitTx(ctx, tx, orgID, UnitData{Name: name}); err != nil {
				return err
			}
		}
		var found bool
		if northID, found, err = unitByIDOrNameTx(ctx, tx, orgID, "North"); err != nil || !found {
			t.Fatalf("unit North: %v %v", found, err)
		}
		userID = "user-1"
		return saveUserTx(ctx, tx, userRecord{ID: userID, OrganisationID: orgID, Username: "ops", PasswordHash: "h1", DefaultUnitID: northID})
	})
	return orgID, userID, northID
}

// TestReferenceStore_RecordsAreMatchedByTheirNaturalKey imports records
// twice without ids: the second import updates the first's rows.
func TestReferenceStore_RecordsAreMatchedByTheirNaturalKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		orgID, _, northID := organisation(t, db)
		storetest.InTx(t, db, func(tx *store.Tx) error {
			again, err := ensureOrganisation(ctx, tx, "ORG")
			if err != nil || again != orgID {
				t.Errorf("the organisation again: %q (%v), want %q", again, err, orgID)
			}
			if first, found, err := firstUnitTx(ctx, tx, orgID); err != nil || !found || first == "" {
				t.Errorf("first unit: %q %v %v", first, found, err)
			}
			if id, found, _ := unitByIDOrNameTx(ctx, tx, orgID, northID); !found || id != northID {
				t.Errorf("North by its id: %q %v", id, found)
			}
			for _, state := range []string{"ACTIVE", "SUSPENDED"} {
				if err := saveSubscriptionTx(ctx, tx, orgID, SubscriptionData{Number: "S1", LifeCycleState: state}); err != nil {
					return err
				}
			}
			for _, ca := range []string{"SV-1", "SV-2"} {
				if err := saveServiceTx(ctx, tx, orgID, ServiceData{Code: "SPORT", CAID: ca}); err != nil {
					return err
				}
			}
			for _, d := range []string{"", "D7"} {
				if err := saveItemTx(ctx, tx, orgID, "smartcard", ItemData{SerialNumber: "SC1", CAID: "0100000001", SubProvisioningDistributionID: d}); err != nil {
					return err
				}
			}
			return nil
		})
		l := newLookup(db, orgID)
		if _, state, err := l.subscription(ctx, Identifier{Field: "number", Value: "S1"}); err != nil || state != "SUSPENDED" {
			t.Errorf("subscription S1: %q (%v), want the second import's state", state, err)
		}
		if ca, err := l.service(ctx, Identifier{Field: "code", Value: "SPORT"}); err != nil || ca != "SV-2" {
			t.Errorf("service SPORT: %q (%v)", ca, err)
		}
		if it, err := l.item(ctx, "smartcard", Identifier{Field: "serial_number", Value: "SC1"}, "smartcard_identifier"); err != nil || it.distribution == nil || *it.distribution != "D7" {
			t.Errorf("smartcard SC1: %+v (%v)", it, err)
		}
		for _, table := range []string{"crm_organisations", "paytv_subscriptions", "paytv_services", "paytv_installed_items"} {
			var n int
			if err := db.ReadRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 1 {
				t.Errorf("%s holds %d rows (%v), want 1", table, n, err)
			}
		}
		var units int
		if err := db.ReadRow(ctx, `SELECT count(*) FROM crm_units`).Scan(&units); err != nil || units != 3 {
			t.Errorf("%d units (%v), want the first one, South and North", units, err)
		}
	})
}

// TestSessionStore_UsersSessionsAndKeys runs the statements of users,
// sessions and Web API keys on both backends.
func TestSessionStore_UsersSessionsAndKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		orgID, userID, northID := organisation(t, db)

		// Saving a user again sets its password but keeps its id.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			return saveUserTx(ctx, tx, userRecord{ID: "user-2", OrganisationID: orgID, Username: "ops", PasswordHash: "h2", DefaultUnitID: northID})
		})
		u, found, err := findLoginUser(ctx, db, "ORG", "ops")
		if err != nil || !found || u.ID != userID || u.PasswordHash != "h2" || u.DefaultUnitID != northID {
			t.Fatalf("user ops: %+v %v (%v)", u, found, err)
		}
		if _, found, _ := findLoginUser(ctx, db, "OTHER", "ops"); found {
			t.Error("ops found in another organisation")
		}
		other := ""
		storetest.InTx(t, db, func(tx *store.Tx) error {
			o, err := ensureOrganisation(ctx, tx, "OTHER")
			other, _, _ = firstUnitTx(ctx, tx, o)
			return err
		})
		if ok, err := unitOfUsersOrganisation(ctx, db, userID, northID); err != nil || !ok {
			t.Errorf("North is ops's organisation's: %v (%v)", ok, err)
		}
		if ok, _ := unitOfUsersOrganisation(ctx, db, userID, other); ok {
			t.Error("another organisation's unit taken for ops's")
		}
		if ok, _ := unitOfOrganisation(ctx, db, orgID, other); ok {
			t.Error("another organisation's unit taken for ORG's")
		}

		// A login deletes the sessions idle too long and the key sessions
		// expired, and keeps the others.
		const hour = int64(time.Hour / time.Microsecond)
		if err := openKeySession(ctx, db, "key-live", userID, northID, 0, 10*hour); err != nil {
			t.Fatal(err)
		}
		if err := openKeySession(ctx, db, "key-expired", userID, northID, 0, 2*hour); err != nil {
			t.Fatal(err)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error { return openSessionTx(ctx, tx, "idle", userID, northID, 1*hour, 0) })
		storetest.InTx(t, db, func(tx *store.Tx) error { return openSessionTx(ctx, tx, "fresh", userID, northID, 3*hour-1, 0) })
		storetest.InTx(t, db, func(tx *store.Tx) error { return openSessionTx(ctx, tx, "new", userID, northID, 3*hour, 2*hour) })
		var left []string
		for _, h := range []string{"key-live", "key-expired", "idle", "fresh", "new"} {
			if s, err := readSession(ctx, db, h); err != nil {
				t.Fatal(err)
			} else if s != nil {
				left = append(left, h)
			}
		}
		if !slices.Equal(left, []string{"key-live", "fresh", "new"}) {
			t.Errorf("sessions left after a login: %v", left)
		}
		s, err := readSession(ctx, db, "key-live")
		if err != nil || s.User.ID != userID || s.Unit.ID != northID || s.Unit.Name != "North" || s.OrganisationID != orgID || s.expires != 10*hour {
			t.Errorf("session key-live: %+v (%v)", s, err)
		}
		// Requests that read the session before its use was recorded find
		// it recorded: of many touching at once, exactly one writes.
		var (
			wg       sync.WaitGroup
			recorded atomic.Int32
		)
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := touchSession(ctx, db, "fresh", 3*hour-1, 4*hour+int64(i))
				if err != nil {
					t.Error(err)
				}
				if ok {
					recorded.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := recorded.Load(); n != 1 {
			t.Errorf("%d of 16 concurrent touches wrote, want 1", n)
		}
		if s, _ := readSession(ctx, db, "fresh"); s == nil || s.lastUsed < 4*hour || s.lastUsed >= 4*hour+16 || s.expires != 0 {
			t.Errorf("session fresh after its use: %+v", s)
		}
		if err := deleteSession(ctx, db, "fresh"); err != nil {
			t.Fatal(err)
		}
		if s, _ := readSession(ctx, db, "fresh"); s != nil {
			t.Error("a deleted session is still read")
		}

		// A key: stored, listed, found by its hash; revoked, it ends the
		// key sessions and leaves the password ones.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			uid, unit, org, found, err := keyOwnerTx(ctx, tx, "ORG", "ops")
			if err != nil || !found || uid != userID || unit != northID || org != orgID {
				t.Errorf("key owner: %q %q %q %v (%v)", uid, unit, org, found, err)
			}
			return insertWebAPIKeyTx(ctx, tx, "pk_1", "hash-1", userID, northID, "billing", 5)
		})
		keys, err := webAPIKeysOf(ctx, db, "ORG")
		if err != nil || len(keys) != 1 || keys[0].ID != "pk_1" || keys[0].Username != "ops" || keys[0].RevokedAt != nil {
			t.Fatalf("keys: %+v (%v)", keys, err)
		}
		if k, found, err := findActiveKey(ctx, db, "hash-1"); err != nil || !found || k.KeyID != "pk_1" || k.OrganisationID != orgID {
			t.Errorf("key by hash: %+v %v (%v)", k, found, err)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			if _, found, _ := activeKeyUserTx(ctx, tx, "OTHER", "pk_1"); found {
				t.Error("ORG's key found in OTHER")
			}
			uid, found, err := activeKeyUserTx(ctx, tx, "ORG", "pk_1")
			if err != nil || !found {
				t.Fatalf("active key: %v (%v)", found, err)
			}
			return revokeWebAPIKeyTx(ctx, tx, "pk_1", uid, 6)
		})
		if _, found, _ := findActiveKey(ctx, db, "hash-1"); found {
			t.Error("a revoked key is found")
		}
		if keys, _ := webAPIKeysOf(ctx, db, "ORG"); len(keys) != 1 || keys[0].RevokedAt == nil {
			t.Errorf("revoked key listed as %+v", keys)
		}
		if s, _ := readSession(ctx, db, "key-live"); s != nil {
			t.Error("the key's session outlived its revocation")
		}
		if s, _ := readSession(ctx, db, "new"); s == nil {
			t.Error("the revocation ended a password session")
		}
	})
}

// TestSessionLapsed: the rule of a session's life.
func TestSessionLapsed(t *testing.T) {
	at := func(d time.Duration) int64 { return time.UnixMicro(0).Add(d).UnixMicro() }
	now := time.UnixMicro(0).Add(10 * time.Hour)
	for _, c := range []struct {
		name          string
		s             storedSession
		lapsed, touch bool
	}{
		{"used just now", storedSession{lastUsed: at(10 * time.Hour)}, false, false},
		{"used a minute ago", storedSession{lastUsed: at(10*time.Hour - time.Minute)}, false, true},
		{"idle just under the limit", storedSession{lastUsed: at(9*time.Hour + time.Microsecond)}, false, true},
		{"idle for the limit", storedSession{lastUsed: at(9 * time.Hour)}, true, false},
		{"a key's, used long ago, not expired", storedSession{lastUsed: at(0), expires: at(11 * time.Hour)}, false, false},
		{"a key's at its expiry", storedSession{lastUsed: at(10 * time.Hour), expires: at(10 * time.Hour)}, true, false},
	} {
		lapsed, touch := sessionLapsed(&c.s, now, time.Hour)
		if lapsed != c.lapsed || touch != c.touch {
			t.Errorf("%s: lapsed %v touch %v, want %v %v", c.name, lapsed, touch, c.lapsed, c.touch)
		}
	}
}

// TestRequestStore_AcceptRecordRejectListPurge runs the request statements
// on both backends: numbers drawn in order, reads, filters, an outcome
// recorded once with the PIN erased, a rejection, outcomes and the purge.
func TestRequestStore_AcceptRecordRejectListPurge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		t.Parallel()
		ctx := context.Background()
		orgID, userID, northID := organisation(t, db)
		reqs := []newRequest{
			{ID: "R1", Type: TypeAddSubscriptions, SmartcardCAID: "0100000001", Parameters: `[{"id":"1","name":"subscription_number","value":"S60058"}]`},
			{ID: "R2", Type: TypeResetPINToGivenValue, SmartcardCAID: "0100000002", PIN: "7394", Parameters: `[]`},
			{ID: "R3", Type: TypeAddSubscriptions, SmartcardCAID: "0100000003", Parameters: `[]`},
		}
		for i := range reqs {
			r := &reqs[i]
			r.OrganisationID, r.Provider, r.Priority, r.UserID, r.UnitID = orgID, ConaxWebServices, Regular, userID, northID
			r.Command, r.ClientIdentifiers, r.ScheduledAt, r.CreatedAt = `{"command":"X"}`, `["smartcard serial_number=SC`+r.ID+`"]`, int64(100*(i+1)), int64(100*(i+1))
		}
		// R1 alone, R2 and R3 as one batch (one statement on PostgreSQL).
		var numbers []int64
		storetest.InTx(t, db, func(tx *store.Tx) error {
			for _, batch := range [][]newRequest{reqs[:1], reqs[1:]} {
				ns, err := insertRequestsTx(ctx, tx, batch)
				if err != nil {
					return err
				}
				numbers = append(numbers, ns...)
			}
			return nil
		})
		if len(numbers) != len(reqs) {
			t.Fatalf("%d numbers for %d requests", len(numbers), len(reqs))
		}
		for i, want := range reqs {
			r, err := readRequestWhere(ctx, db, "r.number", numbers[i])
			if err != nil || r == nil || r.ID != want.ID || int64(r.ScheduledAt.UnixMicro()) != want.ScheduledAt ||
				!slices.Equal(r.ClientIdentifiers, []string{"smartcard serial_number=SC" + want.ID}) {
				t.Fatalf("number %d: %+v (%v), want request %s", numbers[i], r, err, want.ID)
			}
		}
		if !slices.IsSorted(numbers) || numbers[0] == numbers[1] {
			t.Fatalf("numbers %v are not drawn in order", numbers)
		}
		r, err := readRequestWhere(ctx, db, "r.id", "R1")
		if err != nil || r.Number != numbers[0] || r.LifeCycleState != Pending || r.CreatedBy.Username != "ops" || r.CreatedUnit.Name != "North" ||
			len(r.Parameters) != 1 || !slices.Equal(r.ClientIdentifiers, []string{"smartcard serial_number=SCR1"}) {
			t.Fatalf("R1: %+v (%v)", r, err)
		}
		if r, err := readRequestWhere(ctx, db, "r.number", numbers[1]); err != nil || r.ID != "R2" {
			t.Errorf("by number: %+v (%v)", r, err)
		}
		if r, err := readRequestWhere(ctx, db, "r.id", "R9"); err != nil || r != nil {
			t.Errorf("unknown request: %+v (%v)", r, err)
		}
		send, err := readToSend(ctx, db, "R2")
		if err != nil || send.pin != "7394" || send.organisation != "ORG" || send.state != Pending || send.scheduled != 200 {
			t.Fatalf("R2 to send: %+v (%v)", send, err)
		}
		if send, err := readToSend(ctx, db, "R9"); err != nil || send != nil {
			t.Errorf("unknown request to send: %+v (%v)", send, err)
		}

		// R1 retries, then completes once; R2 is rejected, its PIN erased.
		storetest.InTx(t, db, func(tx *store.Tx) error { return noteRetryingTx(ctx, tx, "R1", "retrying: attempt 1 failed", 400) })
		if counts, _ := requestOutcomes(ctx, db, 0); counts["PENDING retrying"] != 1 || counts["PENDING"] != 2 {
			t.Errorf("outcomes with a retry: %v", counts)
		}
		storetest.InTx(t, db, func(tx *store.Tx) error {
			done, err := recordOutcomeTx(ctx, tx, "R1", sendOutcome{state: Completed, request: `{"r":1}`, response: `{"ok":1}`, reference: "REF-1"}, 500)
			if err != nil || !done {
				t.Errorf("record R1: %v %v", done, err)
			}
			done, err = recordOutcomeTx(ctx, tx, "R1", sendOutcome{state: Rejected}, 510)
			if err != nil || done {
				t.Errorf("R1 recorded twice: %v %v", done, err)
			}
			typ, err := rejectPendingTx(ctx, tx, "R2", ErrorCodeCancelled, "cancelled", 600)
			if err != nil || typ != string(TypeResetPINToGivenValue) {
				t.Errorf("reject R2: %q (%v)", typ, err)
			}
			if typ, err := rejectPendingTx(ctx, tx, "R2", ErrorCodeCancelled, "again", 610); err != nil || typ != "" {
				t.Errorf("R2 rejected twice: %q (%v)", typ, err)
			}
			return nil
		})
		r1, _ := readRequestWhere(ctx, db, "r.id", "R1")
		if r1.LifeCycleState != Completed || r1.ReferenceNumber == nil || *r1.ReferenceNumber != "REF-1" || r1.SequenceNumber == nil ||
			r1.ExecutedAt == nil || r1.ErrorDescription != nil {
			t.Errorf("R1 recorded: %+v", r1)
		}
		r2, _ := readRequestWhere(ctx, db, "r.id", "R2")
		if r2.LifeCycleState != Rejected || r2.ErrorCode == nil || *r2.ErrorCode != ErrorCodeCancelled || r2.SequenceNumber == nil || *r2.SequenceNumber <= *r1.SequenceNumber {
			t.Errorf("R2 rejected: %+v", r2)
		}
		if send, _ := readToSend(ctx, db, "R2"); send.pin != "" {
			t.Error("the PIN is kept after the rejection")
		}
		if st, err := requestState(ctx, db, "R2"); err != nil || st != Rejected {
			t.Errorf("state of R2: %s (%v)", st, err)
		}

		ids := func(rs []*Request) (out []string) {
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		for _, c := range []struct {
			f    ListFilter
			want []string
		}{
			{ListFilter{Type: TypeAddSubscriptions, Limit: 10}, []string{"R1", "R3"}},
			{ListFilter{LifeCycleState: Pending, Limit: 10}, []string{"R3"}},
			{ListFilter{ReferenceNumber: "REF-1", Limit: 10}, []string{"R1"}},
			{ListFilter{Type: TypeAddSubscriptions, Limit: 1, Offset: 1}, []string{"R3"}},
		} {
			got, err := listRequests(ctx, db, orgID, ConaxWebServices, c.f)
			if err != nil || !slices.Equal(ids(got), c.want) {
				t.Errorf("list %+v: %v (%v), want %v", c.f, ids(got), err, c.want)
			}
		}
		if got, err := listRequests(ctx, db, orgID, ConaxSMSSAS, ListFilter{Type: TypeAddSubscriptions, Limit: 10}); err != nil || got == nil || len(got) != 0 {
			t.Errorf("another provider's list: %v (%v), want an empty list", ids(got), err)
		}
		for _, c := range []struct {
			q    store.ListQuery
			want []string
		}{
			{store.ListQuery{}, []string{"R3", "R2", "R1"}},
			{store.ListQuery{Status: "REJECTED"}, []string{"R2"}},
			{store.ListQuery{Search: "0100000003"}, []string{"R3"}},
			{store.ListQuery{Search: "S60058"}, []string{"R1"}},
			{store.ListQuery{Search: "SCR2"}, []string{"R2"}},
			{store.ListQuery{Search: "REF-1"}, []string{"R1"}},
			{store.ListQuery{Before: "3"}, nil},
		} {
			if c.q.Before != "" {
				c.q.Before = itoa(numbers[2])
				c.want = []string{"R2", "R1"}
			}
			got, err := recentRequests(ctx, db, c.q, 10)
			if err != nil || !slices.Equal(ids(got), c.want) {
				t.Errorf("recent %+v: %v (%v), want %v", c.q, ids(got), err, c.want)
			}
		}
		if got, _ := recentRequests(ctx, db, store.ListQuery{Search: itoa(numbers[1])}, 10); !slices.Equal(ids(got), []string{"R2"}) {
			t.Errorf("recent by number: %v", ids(got))
		}

		// The purge takes the ended requests changed before the cutoff.
		storetest.InTx(t, db, func(tx *store.Tx) error {
			n, err := purgeRequestsTx(ctx, tx, 550)
			if err != nil || n != 1 {
				t.Errorf("purged %d (%v), want R1", n, err)
			}
			return nil
		})
		if got, _ := recentRequests(ctx, db, store.ListQuery{}, 10); !slices.Equal(ids(got), []string{"R3", "R2"}) {
			t.Errorf("after the purge: %v", ids(got))
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
