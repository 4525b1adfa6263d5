package engine

import (
	"context"
	"time"
)

// The engine's maintenance is a set of services, one job and one file each,
// every one on its own ticker while the engine runs:
//
//   - heartbeat.go: extends the leases of this instance's running jobs and
//     cancels those another instance asked to cancel;
//   - release.go: lets in the held jobs of subjects whose release was lost;
//   - rescue.go: takes back jobs whose lease expired;
//   - liveness.go: proves this instance alive and takes back the jobs of
//     instances found dead;
//   - cleanup.go: deletes finished jobs past their retention.
//
// Each pass fires its test signal (testsignal.go), so a test waits for a
// pass to have happened instead of sleeping and hoping it did.
type maintenanceService struct {
	name     string
	interval time.Duration
	pass     func(ctx context.Context, rs *runState)
	done     signal
}

func (e *Engine) startMaintenance(ctx context.Context, rs *runState) {
	for _, m := range []maintenanceService{
		{"heartbeat", e.cfg.HeartbeatInterval, e.heartbeatPass, e.signals.beat},
		{"releaser", e.cfg.ReleaseInterval, e.releasePass, e.signals.released},
		{"rescuer", e.cfg.RescueInterval, e.rescuePass, e.signals.rescued},
		{"liveness", e.cfg.LivenessInterval, e.livenessPass, e.signals.livenessChecked},
		{"cleaner", e.cfg.CleanupInterval, e.cleanupPass, e.signals.cleaned},
	} {
		rs.loops.Add(1)
		go e.runMaintenance(ctx, rs, m)
	}
}

func (e *Engine) runMaintenance(ctx context.Context, rs *runState, m maintenanceService) {
	defer rs.loops.Done()
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.pass(ctx, rs)
			m.done.fire()
		}
	}
}
