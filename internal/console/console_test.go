package console

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
)

func TestSafeNext_KeepsRedirectsInsideTheConsole(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/console/jobs?state=failed": "/console/jobs?state=failed",
		"https://evil.example/":      Prefix,
		"//evil.example/console/":    Prefix,
		"/console/\\evil":            Prefix,
		"/metrics":                   Prefix,
		"":                           Prefix,
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewChart_StacksEachKindThenTheFailuresScaledToTheBusiestMinute(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	ch := newChart([]engine.Bucket{
		{Start: start, Completed: 10, Failed: 10, ByKind: map[string]engine.Finished{
			"paytv.send_request": {Completed: 6, Failed: 10}, "transit.wallet_task": {Completed: 4}}},
		{Start: start.Add(time.Minute), Completed: 5, ByKind: map[string]engine.Finished{"transit.wallet_task": {Completed: 5}}},
		{Start: start.Add(2 * time.Minute)},
		// A kind that only failed gets no series: its bars are red.
		{Start: start.Add(3 * time.Minute), Failed: 2, ByKind: map[string]engine.Finished{"issuer.operation": {Failed: 2}}},
	})
	if ch.Max != 20 {
		t.Fatalf("max %d", ch.Max)
	}
	want := []series{{"paytv.send_request", "s0"}, {"transit.wallet_task", "s1"}}
	if !slices.Equal(ch.Series, want) {
		t.Fatalf("series %+v, want %+v", ch.Series, want)
	}
	first := ch.Bars[0]
	if !slices.Equal(first.Segments, []segment{{Y: 70, H: 30, Class: "s0"}, {Y: 50, H: 20, Class: "s1"}, {Y: 0, H: 50, Class: "bad"}}) ||
		first.Label != "10:00" || !first.Tick || first.X != 36 {
		t.Errorf("first bar %+v", first)
	}
	if !strings.Contains(first.Tooltip, "paytv.send_request 6 completed, 10 failed") || !strings.HasPrefix(first.Tooltip, "10:00: 10 completed, 10 failed") {
		t.Errorf("first tooltip %q", first.Tooltip)
	}
	if b := ch.Bars[1]; !slices.Equal(b.Segments, []segment{{Y: 75, H: 25, Class: "s1"}}) || b.X != 56 || b.Tick {
		t.Errorf("second bar %+v", b)
	}
	if b := ch.Bars[2]; len(b.Segments) != 0 {
		t.Errorf("empty bar %+v", b)
	}
	if b := ch.Bars[3]; !slices.Equal(b.Segments, []segment{{Y: 90, H: 10, Class: "bad"}}) || !strings.Contains(b.Tooltip, "issuer.operation 0 completed, 2 failed") {
		t.Errorf("failures-only bar %+v", b)
	}
}
