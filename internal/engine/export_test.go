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
}

// InsertGroups counts the group commits written so far.
func (e *Engine) InsertGroups() int64 { return e.groups.Load() }
