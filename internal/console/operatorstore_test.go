package console

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
)

func TestOperatorStore_OperatorsSessionsAndActions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		st := operatorStore{db: db}
		t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

		if existed, err := st.setPassword(ctx, "ops", "h1"); err != nil || existed {
			t.Fatalf("setPassword of a new operator: existed=%v err=%v", existed, err)
		}
		if err := st.addOperator(ctx, "ops", "h1", t0); err != nil {
			t.Fatal(err)
		}
		if err := st.addOperator(ctx, "ops", "h1", t0); err == nil {
			t.Error("a second operator of the same name was added")
		}
		if h, err := st.passwordHash(ctx, "ops"); err != nil || h != "h1" {
			t.Errorf("passwordHash = %q, %v", h, err)
		}
		if _, err := st.passwordHash(ctx, "nobody"); !errors.Is(err, errNoRow) {
			t.Errorf("passwordHash of nobody: %v, want errNoRow", err)
		}

		// Sessions: opening one removes those that lapsed.
		if err := st.openSession(ctx, "old", "ops", "c0", t0, t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		t1 := t0.Add(2 * time.Hour)
		if err := st.openSession(ctx, "new", "ops", "c1", t1, t1.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := st.session(ctx, "old"); !errors.Is(err, errNoRow) {
			t.Errorf("a lapsed session stayed: %v", err)
		}
		user, csrf, seen, err := st.session(ctx, "new")
		if err != nil || user != "ops" || csrf != "c1" || !seen.Equal(t1) {
			t.Errorf("session = %q %q %v %v", user, csrf, seen, err)
		}
		if err := st.touchSession(ctx, "new", t1, t1.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		// A request that read the session before that touch changes nothing.
		if err := st.touchSession(ctx, "new", t1, t1.Add(6*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, _, seen, _ := st.session(ctx, "new"); !seen.Equal(t1.Add(5 * time.Minute)) {
			t.Errorf("touched session last seen %v", seen)
		}
		// A new password ends the operator's sessions, in the same commit.
		if existed, err := st.setPassword(ctx, "ops", "h2"); err != nil || !existed {
			t.Fatalf("setPassword: existed=%v err=%v", existed, err)
		}
		if _, _, _, err := st.session(ctx, "new"); !errors.Is(err, errNoRow) {
			t.Errorf("a session outlived its password: %v", err)
		}
		if err := st.openSession(ctx, "s3", "ops", "c3", t1, t1.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := st.endSession(ctx, "s3"); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := st.session(ctx, "s3"); !errors.Is(err, errNoRow) {
			t.Errorf("an ended session stayed: %v", err)
		}

		// Actions: listed by target, oldest first; purged by age.
		for i, a := range []Action{
			{Username: "ops", Action: "retry", Target: "job:7", Outcome: "ok", At: t0.Add(2 * time.Minute)},
			{Username: "ops", Action: "cancel", Target: "job:7", Outcome: "ok", At: t0.Add(time.Minute)},
			{Username: "ops", Action: "send again", Target: "task:pvh-1", Outcome: "ok", At: t0.Add(3 * time.Minute)},
		} {
			if err := st.recordAction(ctx, string(rune('a'+i)), a); err != nil {
				t.Fatal(err)
			}
		}
		acts, err := st.actions(ctx, "job:7")
		if err != nil || len(acts) != 2 || acts[0].Action != "cancel" || acts[1].Action != "retry" || !acts[0].At.Equal(t0.Add(time.Minute)) {
			t.Errorf("actions on job:7 = %+v, %v", acts, err)
		}
		var purged int64
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			var err error
			purged, err = st.purgeActions(ctx, tx, t0.Add(150*time.Second))
			return err
		}); err != nil || purged != 2 {
			t.Errorf("purged %d (%v), want the 2 older actions", purged, err)
		}
		if acts, _ := st.actions(ctx, "task:pvh-1"); len(acts) != 1 {
			t.Errorf("a recent action was purged: %+v", acts)
		}
	})
}

func TestUseSession(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		since time.Duration
		want  sessionUse
	}{
		{0, sessionFresh},
		{59 * time.Second, sessionFresh},
		{61 * time.Second, sessionTouch},
		{30 * time.Minute, sessionTouch},
		{30*time.Minute + time.Second, sessionExpired},
	} {
		if got := useSession(now, now.Add(-c.since), 30*time.Minute); got != c.want {
			t.Errorf("last seen %v ago: %v, want %v", c.since, got, c.want)
		}
	}
}

func TestCheckOperator(t *testing.T) {
	t.Parallel()
	long := string(make([]byte, 65))
	for _, c := range []struct {
		name, user, pass string
		ok               bool
	}{
		{"fine", "ops", "pa55word", true},
		{"no name", "", "pa55word", false},
		{"name too long", long, "pa55word", false},
		{"short password", "ops", "short", false},
	} {
		if err := checkOperator(c.user, c.pass); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
