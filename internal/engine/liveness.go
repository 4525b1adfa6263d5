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
//
// On PostgreSQL the lock lives as long as its connection: when that
// connection is cut (a fail-over, a proxy restart), the instance stops its
// handlers and takes its lock again on a new connection (retake).
type liveness struct {
	// pool is set on PostgreSQL; conn holds the lock, nil while it is lost.
	pool *pgxpool.Pool
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
		l := &liveness{pool: pool}
		if err := l.take(ctx, e.cfg.InstanceID); err != nil {
			return nil, err
		}
		return l, nil
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

// take takes the instance's PostgreSQL lock on a connection of its own.
func (l *liveness) take(ctx context.Context, instanceID string) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("instance lock: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, livenessNamespace, instanceKey(instanceID)).Scan(&got); err != nil {
		// The lock may have been granted all the same: a pooled connection
		// must not keep it, so this one is closed rather than handed back.
		l.conn = conn
		l.dropConn()
		return fmt.Errorf("instance lock: %w", err)
	}
	if !got {
		conn.Release()
		return fmt.Errorf("instance lock: another live engine holds the lock of instance %q (give each instance its own id)", instanceID)
	}
	l.conn = conn
	return nil
}

// dropConn gives up a lock connection that no longer answers (closing it,
// so that the lock is surely free), leaving the lock to be taken again.
func (l *liveness) dropConn() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = l.conn.Conn().Close(ctx)
	cancel()
	l.conn.Release()
	l.conn = nil
}

// lockConnTimeout bounds a statement on the lock's connection.
const lockConnTimeout = 5 * time.Second

// onLockConn is the context of a statement on the lock's connection: it
// keeps ctx's values but not its cancellation, and ends after
// lockConnTimeout. A statement cut short on its way can leave the
// connection broken, and with it the lock: the engine's own shutdown (or a
// test's stand-in for a hung process) must never free the lock of a live
// instance, which only a real failure may do.
func onLockConn(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), lockConnTimeout)
}

// alive checks that the lock is still held (on PostgreSQL: its connection
// answers).
func (l *liveness) alive(ctx context.Context) error {
	if l == nil || l.conn == nil {
		return nil
	}
	ctx, cancel := onLockConn(ctx)
	defer cancel()
	return l.conn.Ping(ctx)
}

// release gives the lock up.
func (l *liveness) release() {
	if l == nil {
		return
	}
	if l.conn != nil {
		// Closing the connection releases the session lock for sure.
		l.dropConn()
	}
	l.pool = nil
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
	if l.pool == nil {
		if e.db.Path() == "" {
			return 0, nil
		}
		return rescueWhere(ctx, e.db, e.cfg.Registry, e.now(), "the engine running this attempt was lost (it is no longer running)",
			`lease_owner <> $4`, e.cfg.InstanceID)
	}
	// Each statement on the lock's connection runs under onLockConn; the
	// rescue itself runs on the pool under ctx.
	lctx, cancel := onLockConn(ctx)
	rows, err := l.conn.Query(lctx, `SELECT DISTINCT lease_owner FROM jobs WHERE state = 'running' AND lease_owner <> $1`, e.cfg.InstanceID)
	if err != nil {
		cancel()
		return 0, fmt.Errorf("list lease owners: %w", err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	cancel()
	if err != nil {
		return 0, err
	}
	onLock := func(sql string, args ...any) (bool, error) {
		lctx, cancel := onLockConn(ctx)
		defer cancel()
		var ok bool
		err := l.conn.QueryRow(lctx, sql, args...).Scan(&ok)
		return ok, err
	}
	var total int64
	for _, owner := range owners {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		key := instanceKey(owner)
		free, err := onLock(`SELECT pg_try_advisory_lock($1, $2)`, livenessNamespace, key)
		if err != nil {
			return total, fmt.Errorf("check instance %s: %w", owner, err)
		}
		if !free {
			continue // alive
		}
		// Held while its jobs are taken back, so that the owner cannot
		// come back under the same id meanwhile.
		n, rerr := rescueWhere(ctx, e.db, e.cfg.Registry, e.now(), "the instance running this attempt was lost ("+owner+" holds no instance lock)",
			`lease_owner = $4`, owner)
		if _, err := onLock(`SELECT pg_advisory_unlock($1, $2)`, livenessNamespace, key); err != nil {
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
// count it dead, so its handlers stop and the lock is taken again on a new
// connection) and takes back the running jobs of instances whose lock it
// can take.
func (e *Engine) livenessPass(ctx context.Context, rs *runState) {
	if rs.live == nil || rs.live.pool == nil {
		return
	}
	if rs.live.conn != nil {
		if err := rs.live.alive(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("instance lock lost: stopping this instance's handlers", "err", err)
			rs.live.dropConn()
		}
	}
	if ctx.Err() != nil {
		return
	}
	if rs.live.conn == nil {
		// Without its lock this instance may be counted dead and its jobs
		// taken back by another: whatever it started meanwhile stops too.
		rs.mu.Lock()
		for _, cancel := range rs.running {
			cancel(errShutdown)
		}
		rs.mu.Unlock()
		if err := rs.live.take(ctx, e.cfg.InstanceID); err != nil {
			if ctx.Err() == nil {
				e.log.Warn("instance lock: not taken again yet", "err", err)
			}
			return
		}
		e.log.Info("instance lock taken again", "instance", e.cfg.InstanceID)
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
