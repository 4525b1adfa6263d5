package transit

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestEarlyPolls_TheWaitFollowsWhatFirstPollsFind: the early wait starts at
// the schedule's first wait, shrinks while first polls find their tasks
// ended, grows when one finds its task running, and never leaves
// [first/16, first]; each operation has its own.
func TestEarlyPolls_TheWaitFollowsWhatFirstPollsFind(t *testing.T) {
	const first = 100 * time.Millisecond
	p := newEarlyPolls(first)
	if w := p.wait(OpPersonalize); w != first {
		t.Fatalf("initial wait %v, want the schedule's first %v", w, first)
	}
	p.observe(OpPersonalize, true)
	if w := p.wait(OpPersonalize); w != 95*time.Millisecond {
		t.Fatalf("after an ended task the wait is %v, want 95ms", w)
	}
	if w := p.wait(OpSuspend); w != first {
		t.Errorf("another operation's wait moved to %v", w)
	}
	p.observe(OpPersonalize, false)
	if w := p.wait(OpPersonalize); w != first {
		t.Errorf("after a running task the wait is %v, want %v (grown by half, at most the first wait)", w, first)
	}
	for range 200 {
		p.observe(OpPersonalize, true)
	}
	if w := p.wait(OpPersonalize); w != first/earlyPollFloor {
		t.Errorf("after many ended tasks the wait is %v, want the floor %v", w, first/earlyPollFloor)
	}
	p.observe(OpPersonalize, false)
	if w := p.wait(OpPersonalize); w != first/earlyPollFloor*3/2 {
		t.Errorf("a running task after the floor: wait %v, want %v", w, first/earlyPollFloor*3/2)
	}

	// Any sequence of findings keeps the wait within its bounds.
	r := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		p.observe(OpSuspend, r.IntN(3) > 0)
		if w := p.wait(OpSuspend); w < first/earlyPollFloor || w > first {
			t.Fatalf("wait %v left [%v, %v]", w, first/earlyPollFloor, first)
		}
	}
}

// TestEarlyPolls_TheWaitSettlesJustAfterTheTasksEnd: tasks that all end
// 10 ms after they start, under a schedule whose first poll is at 100 ms,
// are soon polled about when they end, and about one first poll in ten
// (at most one in five) finds its task still running.
func TestEarlyPolls_TheWaitSettlesJustAfterTheTasksEnd(t *testing.T) {
	const first, takes = 100 * time.Millisecond, 10 * time.Millisecond
	p := newEarlyPolls(first)
	misses := 0
	for i := range 1000 {
		ended := p.wait(OpResume) >= takes
		if !ended && i >= 500 {
			misses++
		}
		p.observe(OpResume, ended)
	}
	if w := p.wait(OpResume); w < takes/2 || w > 2*takes {
		t.Errorf("settled at %v, want about %v", w, takes)
	}
	if misses > 100 {
		t.Errorf("%d of the last 500 first polls found the task running, want at most 100", misses)
	}
}

// TestInlinePolls_TheEarlyPollComesBeforeTheScheduleWhichKeepsItsTimes
// checks the plan of the polls the calling run makes itself.
func TestInlinePolls_TheEarlyPollComesBeforeTheScheduleWhichKeepsItsTimes(t *testing.T) {
	ms := time.Millisecond
	schedule := []time.Duration{100 * ms, 200 * ms, 500 * ms}
	for _, c := range []struct {
		name          string
		early, window time.Duration
		want          []inlinePoll
	}{
		{"no early poll: the schedule alone", 100 * ms, 250 * ms, []inlinePoll{{100 * ms, true}}},
		{"early poll, then the schedule's first at its time", 30 * ms, 250 * ms, []inlinePoll{{30 * ms, false}, {70 * ms, true}}},
		{"a wider window takes more of the schedule, whose last wait repeats", 30 * ms, 1300 * ms,
			[]inlinePoll{{30 * ms, false}, {70 * ms, true}, {200 * ms, true}, {500 * ms, true}, {500 * ms, true}}},
		{"the schedule's first poll outside the window: none", 30 * ms, 90 * ms, nil},
		{"a negative window: none", 30 * ms, -1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := inlinePolls(c.early, schedule, c.window)
			if !slices.Equal(got, c.want) {
				t.Fatalf("plan %v, want %v", got, c.want)
			}
			// The schedule's polls come at the times they would without
			// the early poll.
			at, scheduledAt := time.Duration(0), []time.Duration{}
			for _, p := range got {
				at += p.wait
				if p.scheduled {
					scheduledAt = append(scheduledAt, at)
				}
			}
			want, sum := []time.Duration{}, time.Duration(0)
			for i := range scheduledAt {
				sum += schedule[min(i, len(schedule)-1)]
				want = append(want, sum)
			}
			if !slices.Equal(scheduledAt, want) {
				t.Errorf("the schedule's polls come at %v, want %v", scheduledAt, want)
			}
		})
	}
}
