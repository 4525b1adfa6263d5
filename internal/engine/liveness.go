package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// livenessNamespace is the first key of every instance's advisory lock
// ("pvhb"); the second is a hash of the instance id.
const livenessNamespace = 0x70766862

// liveness is an engine's proof that it is alive, held for as long as it
// runs and released by the operating system or PostgreSQL the moment its
// process dies:
//
//   - on PostgreSQL, a session advisory lock keyed by the instance id, on
//     a connection the engine keeps: an instance whose lock another one can
//     take is dead, and its running jobs are taken back at once instead of
//     when their leases expire;
//   - on SQLite, an exclusive lock on DBFILE.engine-lock: one engine per
//     database file, so every job still running when an engine starts was
//     left by a dead process, and is taken back at once.
type liveness struct {
	conn *pgxpool.Conn
	file *os.File
}

func instanceKey(id string) int32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int32(h.Sum32())
}

// acquireLiveness takes the engine's lock, or says why it cannot.
func (e *Engine) acquireLiveness(ctx context.Context) (*liveness, error) {
	if pool := e.db.Pool(); pool != nil {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("instance lock: %w", err)
		}
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, livenessNamespace, instanceKey(e.cfg.InstanceID)).Scan(&got); err != nil {
			conn.Release()
			return nil, fmt.Errorf("instance lock: %w", err)
		}
		if !got {
			conn.Release()
			return nil, fmt.Errorf("instance lock: another live engine holds the lock of instance %q (give each instance its own id)", e.cfg.InstanceID)
		}
		return &liveness{conn: conn}, nil
	}
	path := e.db.Path()
	if path == "" {
		return &liveness{}, nil
	}
	f, err := os.OpenFile(path+".engine-lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("engine lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another provhub runs jobs on %s: a SQLite database serves one instance (use PostgreSQL for several)", path)
		}
		return nil, fmt.Errorf("engine lock: %w", err)
	}
	return &liveness{file: f}, nil
}

// alive checks that the lock is still held (on PostgreSQL: its connection
// answers).
func (l *liveness) alive(ctx context.Context) error {
	if l == nil || l.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return l.conn.Ping(ctx)
}

// release gives the lock up.
func (l *liveness) release() {
	if l == nil {
		return
	}
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		// Closing the connection releases the session lock for sure.
		_ = l.conn.Conn().Close(ctx)
		cancel()
		l.conn.Release()
		l.conn = nil
	}
	if l.file != nil {
		l.file.Close() // releases the flock
		l.file = nil
	}
}

// recoverOrphans takes back, at once, the running jobs whose engine is
// known to be dead. On SQLite that is every running job not this engine's
// (only one engine runs per file); on PostgreSQL the jobs of each owner
// whose instance lock can be taken. It returns how many jobs came back.
func (e *Engine) recoverOrphans(ctx context.Context, l *liveness) (int64, error) {
	if l == nil {
		return 0, nil
	}
	if l.conn == nil {
		if e.db.Path() == "" {
			return 0, nil
		}
		return rescueWhere(ctx, e.db, e.cfg.Registry, e.now(), "the engine running this attempt was lost (it is no longer running)",
			`lease_owner <> $4`, e.cfg.InstanceID)
	}
	rows, err := l.conn.Query(ctx, `SELECT DISTINCT lease_owner FROM jobs WHERE state = 'running' AND lease_owner <> $1`, e.cfg.InstanceID)
	if err != nil {
		return 0, fmt.Errorf("list lease owners: %w", err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	var total int64
	for _, owner := range owners {
		var free bool
		key := instanceKey(owner)
		if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, livenessNamespace, key).Scan(&free); err != nil {
			return total, fmt.Errorf("check instance %s: %w", owner, err)
		}
		if !free {
			continue // alive
		}
		// Held while its jobs are taken back, so that the owner cannot
		// come back under the same id meanwhile.
		n, rerr := rescueWhere(ctx, e.db, e.cfg.Registry, e.now(), "the instance running this attempt was lost ("+owner+" holds no instance lock)",
			`lease_owner = $4`, owner)
		if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, livenessNamespace, key); err != nil {
			return total, fmt.Errorf("release instance %s: %w", owner, err)
		}
		if rerr != nil {
			return total, rerr
		}
		total += n
	}
	return total, nil
}

// rescueMessage is the error recorded on a rescued attempt.
func rescueMessage(why string) string {
	b, _ := json.Marshal(why)
	return string(b)
}

// livenessPass is the liveness service's pass, every LivenessInterval: it
// checks that this instance's own lock still answers (if not, the others may
// count it dead, so its handlers stop) and takes back the running jobs of
// instances whose lock it can take.
func (e *Engine) livenessPass(ctx context.Context, rs *runState) {
	if rs.live == nil || rs.live.conn == nil {
		return
	}
	if err := rs.live.alive(ctx); err != nil {
		e.log.Error("instance lock lost: stopping this instance's handlers", "err", err)
		rs.mu.Lock()
		for _, cancel := range rs.running {
			cancel(errShutdown)
		}
		rs.mu.Unlock()
		return
	}
	switch n, err := e.recoverOrphans(ctx, rs.live); {
	case err != nil && ctx.Err() == nil:
		e.log.Error("take back the jobs of dead instances", "err", err)
	case n > 0:
		e.metrics.rescued.Add(float64(n))
		e.log.Warn("took back jobs of a dead instance", "jobs", n)
		e.wake()
	}
}
