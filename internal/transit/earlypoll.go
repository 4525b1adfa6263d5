package transit

import (
	"sync"
	"time"
)

// The early poll: a wallet task's first getTaskStatus comes when tasks of
// its operation have lately been ending, rather than at the PollSchedule's
// first wait, which is set for the slowest wallet server an operator
// expects. Each secure element runs one task at a time, so the wait before
// a task is seen to end is paid by every later task of that element; the
// hub learns it instead.
//
// The early wait starts at the schedule's first wait (no early poll at
// all) and moves by what each task's first poll finds: ended, and the next
// task polls a little earlier; still PROCESSING, and the wait grows by
// half, back to the schedule's first wait at most. With these steps about
// one first poll in ten finds the task still running, and costs one
// getTaskStatus call more than the schedule alone would make: the task is
// then polled again at the schedule's first wait, counted from its start
// as before, so no task is seen later than without the early poll.

// Steps of the early wait, as fractions: a first poll that finds its task
// ended shrinks it to 19/20, one that finds it running grows it to 3/2. The
// wait stays within [first/earlyPollFloor, first] of the schedule's first
// wait.
const (
	earlyShrinkNum, earlyShrinkDen = 19, 20
	earlyGrowNum, earlyGrowDen     = 3, 2
	earlyPollFloor                 = 16
)

// earlyPolls keeps the early wait of each operation.
type earlyPolls struct {
	longest, shortest time.Duration // the schedule's first wait, and a sixteenth of it
	mu                sync.Mutex
	waits             map[Operation]time.Duration
}

func newEarlyPolls(first time.Duration) *earlyPolls {
	return &earlyPolls{longest: first, shortest: max(first/earlyPollFloor, time.Microsecond), waits: map[Operation]time.Duration{}}
}

// wait is how long after its wallet-server call a task of op is first
// polled.
func (p *earlyPolls) wait(op Operation) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w, ok := p.waits[op]; ok {
		return w
	}
	return p.longest
}

// observe moves op's early wait by what a task's first poll found. A poll
// made with a wait other than the current one (another task moved it
// meanwhile) moves it all the same: the steps are small.
func (p *earlyPolls) observe(op Operation, ended bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.waits[op]
	if !ok {
		w = p.longest
	}
	if ended {
		w = max(p.shortest, w*earlyShrinkNum/earlyShrinkDen)
	} else {
		w = min(p.longest, w*earlyGrowNum/earlyGrowDen)
	}
	p.waits[op] = w
}

// inlinePoll is one poll the run that called the wallet server makes
// itself: the wait before it, and whether it is a poll of the schedule
// (else the early one).
type inlinePoll struct {
	wait      time.Duration
	scheduled bool
}

// inlinePolls plans the polls of the run that called the wallet server:
// the early poll after early (when it comes before the schedule's first
// wait), then the schedule's polls at their usual times, as long as the
// waits add up to no more than window. A negative window plans none.
func inlinePolls(early time.Duration, schedule []time.Duration, window time.Duration) []inlinePoll {
	if window < 0 || len(schedule) == 0 {
		return nil
	}
	var plan []inlinePoll
	waited := time.Duration(0)
	add := func(w time.Duration, scheduled bool) bool {
		if waited+w > window {
			return false
		}
		waited += w
		plan = append(plan, inlinePoll{wait: w, scheduled: scheduled})
		return true
	}
	first := schedule[0]
	if early > 0 && early < first && first <= window {
		add(early, false)
		add(first-early, true)
	} else if !add(first, true) {
		return plan
	}
	for i := 1; ; i++ {
		if !add(schedule[min(i, len(schedule)-1)], true) {
			return plan
		}
	}
}
