package engine

// Crash stops the engine the way a killed process stops: no more claims,
// heartbeats or writes; running handlers are abandoned and their leases
// left to expire.
func (e *Engine) Crash() {
	e.mu.Lock()
	rs := e.run
	e.run = nil
	e.mu.Unlock()
	if rs == nil {
		return
	}
	rs.crashed.Store(true)
	rs.mu.Lock()
	rs.stopping = true
	rs.mu.Unlock()
	rs.stopLoops()
	rs.stopJobs(errShutdown)
	rs.loops.Wait()   // its loops stop using the lock's connection first
	rs.live.release() // a dead process holds no lock
}

// Stall stops the engine as a hung process would: like Crash, but it keeps
// its instance lock, so it still looks alive and only the expiry of its
// leases frees its jobs. The returned function releases the lock (call it
// before the database is closed).
func (e *Engine) Stall() func() {
	e.mu.Lock()
	rs := e.run
	e.run = nil
	e.mu.Unlock()
	if rs == nil {
		return func() {}
	}
	rs.crashed.Store(true)
	rs.mu.Lock()
	rs.stopping = true
	rs.mu.Unlock()
	rs.stopLoops()
	rs.stopJobs(errShutdown)
	rs.loops.Wait()
	return rs.live.release
}

// InsertGroups counts the group commits written so far.
func (e *Engine) InsertGroups() int64 { return e.groups.Load() }

// ClaimLockKey is the advisory lock PostgreSQL claims take.
const ClaimLockKey = claimLockKey
