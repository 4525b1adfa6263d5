package console

import (
	"testing"
	"time"

	"github.com/provhub/provhub/internal/engine"
)

func TestSafeNext_KeepsRedirectsInsideTheConsole(t *testing.T) {
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

func TestNewChart_ScalesBarsToTheBusiestMinute(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	ch := newChart([]engine.Bucket{{Start: start, Completed: 10, Failed: 10}, {Start: start.Add(time.Minute), Completed: 5}, {Start: start.Add(2 * time.Minute)}})
	if ch.Max != 20 {
		t.Fatalf("max %d", ch.Max)
	}
	if b := ch.Bars[0]; b.H != 50 || b.FH != 50 || b.Y != 0 || b.FY != 50 || b.Label != "10:00" || !b.Tick || b.X != 36 {
		t.Errorf("first bar %+v", b)
	}
	if b := ch.Bars[1]; b.H != 25 || b.FH != 0 || b.Y != 75 || b.X != 56 || b.Tick {
		t.Errorf("second bar %+v", b)
	}
	if b := ch.Bars[2]; b.H != 0 || b.FH != 0 {
		t.Errorf("empty bar %+v", b)
	}
}
