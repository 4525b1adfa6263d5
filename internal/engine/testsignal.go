package engine

// testSignals tell tests that a piece of background work has happened: a
// test that must show something did not happen (a scheduled job did not
// run early) waits for the passes that could have done it, rather than
// sleeping for a while and hoping they came. They are off (nil) unless a
// test switches them on before Start, and then cost a non-blocking send.
type testSignals struct {
	promoted        signal // a writer turn looked for due scheduled and retryable jobs
	beat            signal // a pass of the heartbeat
	released        signal // a release pass of the releaser
	rescued         signal // a pass of the rescuer
	livenessChecked signal // a pass of the liveness service
	cleaned         signal // a pass of the cleaner
}

// signal is one test signal; a nil signal is off.
type signal chan struct{}

// fire records one occurrence, dropping it when the test is not reading
// fast enough (tests wait for "at least n").
func (s signal) fire() {
	if s == nil {
		return
	}
	select {
	case s <- struct{}{}:
	default:
	}
}
