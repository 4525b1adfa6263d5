package engine

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/store"
)

// This file holds every SQL statement of the engine. Both dialects share the
// statements where they can; SQLite needs no claim lock (it has one writer)
// and takes id lists as JSON, PostgreSQL takes arrays.

const jobColumns = `id, kind, args, state, priority, subject, unique_key, attempt, max_attempts, errors,
	created_at, run_at, attempted_at, finalized_at, lease_owner, cancel_requested, snoozes`

// notifyChannelSQL names the PostgreSQL channel on which the instances of
// one schema wake each other: one channel per schema, so that hubs keeping
// their tables in different schemas of a database never wake each other
// (NOTIFY channels are per database).
const notifyChannelSQL = `'provhub_jobs_' || md5(current_schema())`

// claimLockNamespace is the first key of the advisory lock that serializes
// claims across PostgreSQL instances; the second is the schema's hash
// (claimLockSQL), so hubs that keep their tables in different schemas of
// one database never wait for each other's claims. Serial claims are what
// make per-subject exclusion exact: each claim sees every job the previous
// claims started. A claim is one short transaction that takes a whole
// batch, so serializing them costs little.
const claimLockNamespace = 0x70726f76 // "prov"

// claimLockSQL tries the claim lock of this schema's jobs table.
const claimLockSQL = `SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))`

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

type rowScanner interface{ Scan(dest ...any) error }

func scanJob(s rowScanner) (*JobRow, error) {
	var (
		j                         JobRow
		args, errs                []byte
		state                     string
		subject, uniqueKey, owner sql.NullString
		created, runAt            int64
		attemptedAt, finalizedAt  sql.NullInt64
	)
	err := s.Scan(&j.ID, &j.Kind, &args, &state, &j.Priority, &subject, &uniqueKey, &j.Attempt, &j.MaxAttempts, &errs,
		&created, &runAt, &attemptedAt, &finalizedAt, &owner, &j.CancelRequested, &j.Snoozes)
	if err != nil {
		return nil, err
	}
	j.Args = json.RawMessage(slices.Clone(args))
	j.State = State(state)
	j.Subject, j.UniqueKey, j.LeaseOwner = subject.String, uniqueKey.String, owner.String
	j.CreatedAt, j.RunAt = fromMicros(created), fromMicros(runAt)
	if attemptedAt.Valid {
		j.AttemptedAt = fromMicros(attemptedAt.Int64)
	}
	if finalizedAt.Valid {
		j.FinalizedAt = fromMicros(finalizedAt.Int64)
	}
	if len(errs) > 0 {
		if err := json.Unmarshal(errs, &j.Errors); err != nil {
			return nil, fmt.Errorf("decode errors of job %d: %w", j.ID, err)
		}
	}
	return &j, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// insertRow is a job ready to be written.
type insertRow struct {
	kind        string
	args        []byte
	state       State
	priority    int
	subject     string
	uniqueKey   string
	maxAttempts int
	createdAt   int64
	runAt       int64
	held        bool // an earlier row of the same batch has the same subject
	// leaseOwner, when set, writes the row running, its first attempt
	// leased to that instance until leaseUntil: a job that starts at once
	// in a worker slot the inserting engine reserved (Engine.writeBatched).
	leaseOwner string
	leaseUntil int64
}

// notifyTx tells the other PostgreSQL instances, at commit, that there is
// work to look at (new jobs or freed subjects); the payload names the sender
// so that it can ignore its own notices. It does nothing on SQLite.
func notifyTx(ctx context.Context, tx *store.Tx, what string) error {
	if tx.Dialect() != store.Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify(`+notifyChannelSQL+`, $1)`, what); err != nil {
		return fmt.Errorf("notify %s: %w", what, err)
	}
	return nil
}

// insertRows writes rows in tx and returns their ids in order; the caller
// notifies. One row goes in one statement parsed once; several go in one
// multi-row statement per insertChunk rows, unique keys included (a row
// whose key is already stored, or repeats an earlier row's, is answered with
// the stored job), after one probe for the subjects already busy.
func insertRows(ctx context.Context, tx *store.Tx, rows []insertRow) ([]Inserted, error) {
	if len(rows) == 1 {
		r := rows[0]
		switch {
		case r.subject != "":
			// The common insert of a request (one job of one subject):
			// whether it waits behind its subject is decided by the INSERT
			// itself, one round trip instead of a probe and an insert.
			res, err := insertOneOfSubject(ctx, tx, r)
			if err != nil {
				return nil, err
			}
			return []Inserted{res}, nil
		case r.uniqueKey != "":
			res, err := insertUnique(ctx, tx, r)
			if err != nil {
				return nil, err
			}
			return []Inserted{res}, nil
		}
	}
	if err := markHeld(ctx, tx, rows); err != nil {
		return nil, err
	}
	out := make([]Inserted, 0, len(rows))
	for start := 0; start < len(rows); start += insertChunk {
		res, err := insertBatch(ctx, tx, rows[start:min(start+insertChunk, len(rows))])
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, nil
}

// insertChunk bounds one multi-row INSERT (SQLite binds at most 32766
// parameters; nine per row).
const insertChunk = 1000

const busySubjects = `SELECT DISTINCT subject FROM jobs WHERE subject IN (%s) AND state IN ('available', 'running', 'retryable')`

const busySubjectOne = `SELECT 1 FROM jobs WHERE subject = $1 AND state IN ('available', 'running', 'retryable') LIMIT 1`

var (
	busySubjectsPG     = fmt.Sprintf(busySubjects, `SELECT unnest($1::text[])`)
	busySubjectsSQLite = fmt.Sprintf(busySubjects, `SELECT value FROM json_each($1)`)
)

// markHeld sets held on every row whose subject already has a job waiting
// or running, or an earlier row in the same batch.
func markHeld(ctx context.Context, tx *store.Tx, rows []insertRow) error {
	seen := map[string]bool{}
	var first []string
	for i := range rows {
		s := rows[i].subject
		if s == "" {
			continue
		}
		rows[i].held = seen[s]
		if !seen[s] {
			first = append(first, s)
		}
		seen[s] = true
	}
	if len(first) == 0 {
		return nil
	}
	if len(first) == 1 {
		// One subject (the common case of a request inserting its job): a
		// single index probe with a statement parsed once.
		var one int
		switch err := tx.QueryRowCached(ctx, busySubjectOne, first[0]).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("find busy subject: %w", err)
		default:
			for i := range rows {
				if rows[i].subject == first[0] {
					rows[i].held = true
				}
			}
		}
		return nil
	}
	rs, err := queryWithList(ctx, tx, busySubjectsPG, busySubjectsSQLite, first)
	if err != nil {
		return fmt.Errorf("find busy subjects: %w", err)
	}
	defer rs.Close()
	busySubjects := map[string]bool{}
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			return fmt.Errorf("find busy subjects: %w", err)
		}
		busySubjects[s] = true
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("find busy subjects: %w", err)
	}
	for i := range rows {
		if busySubjects[rows[i].subject] {
			rows[i].held = true
		}
	}
	return nil
}

const insertUniqueSQL = `INSERT INTO jobs (kind, args, state, priority, subject, unique_key, max_attempts, created_at, run_at, held)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
	ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING id`

func insertUnique(ctx context.Context, tx *store.Tx, r insertRow) (Inserted, error) {
	var id int64
	err := tx.QueryRowCached(ctx, insertUniqueSQL,
		r.kind, string(r.args), string(r.state), r.priority, nullable(r.subject), r.uniqueKey, r.maxAttempts, r.createdAt, r.runAt, r.held).Scan(&id)
	if err == nil {
		return Inserted{ID: id}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Inserted{}, fmt.Errorf("insert %s job: %w", r.kind, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE unique_key = $1`, r.uniqueKey).Scan(&id); err != nil {
		return Inserted{}, fmt.Errorf("find job with unique key: %w", err)
	}
	return Inserted{ID: id, Existing: true}, nil
}

// insertOneOfSubjectSQL inserts one job of a subject, held when the subject
// already has a job waiting or running (markHeld's rule for one row).
const insertOneOfSubjectSQL = `INSERT INTO jobs (kind, args, state, priority, subject, unique_key, max_attempts, created_at, run_at, held)
	SELECT %s, EXISTS (SELECT 1 FROM jobs b WHERE b.subject = $5 AND b.state IN ('available', 'running', 'retryable'))
	WHERE TRUE
	ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING id`

var (
	// PostgreSQL types the parameters of a SELECT list from the values,
	// not from the columns they go to: the casts say them.
	insertOneOfSubjectPG     = fmt.Sprintf(insertOneOfSubjectSQL, `$1::text, $2::jsonb, $3::text, $4::int, $5::text, $6::text, $7::int, $8::bigint, $9::bigint`)
	insertOneOfSubjectSQLite = fmt.Sprintf(insertOneOfSubjectSQL, `$1, $2, $3, $4, $5, $6, $7, $8, $9`)
)

func insertOneOfSubject(ctx context.Context, tx *store.Tx, r insertRow) (Inserted, error) {
	q := insertOneOfSubjectSQLite
	if tx.Dialect() == store.Postgres {
		q = insertOneOfSubjectPG
	}
	var id int64
	err := tx.QueryRowCached(ctx, q,
		r.kind, string(r.args), string(r.state), r.priority, r.subject, nullable(r.uniqueKey), r.maxAttempts, r.createdAt, r.runAt).Scan(&id)
	switch {
	case err == nil:
		return Inserted{ID: id}, nil
	case !errors.Is(err, sql.ErrNoRows) || r.uniqueKey == "":
		return Inserted{}, fmt.Errorf("insert %s job: %w", r.kind, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE unique_key = $1`, r.uniqueKey).Scan(&id); err != nil {
		return Inserted{}, fmt.Errorf("find job with unique key: %w", err)
	}
	return Inserted{ID: id, Existing: true}, nil
}

// insertBatchPG writes rows from arrays, one per column, in the order of
// the arrays.
const insertBatchPG = `INSERT INTO jobs (kind, args, state, priority, subject, unique_key, max_attempts, created_at, run_at, held)
	SELECT k, a::jsonb, s, p, NULLIF(sub, ''), NULLIF(u, ''), m, c, r, h
	FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::bigint[], $10::bool[])
		WITH ORDINALITY AS t(k, a, s, p, sub, u, m, c, r, h, ord)
	ORDER BY ord
	ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
	RETURNING id, COALESCE(unique_key, '')`

// insertStartedPG is insertBatchPG for a batch with rows written running
// (insertRow.leaseOwner): their first attempt begins as they are created.
const insertStartedPG = `INSERT INTO jobs (kind, args, state, priority, subject, unique_key, max_attempts, created_at, run_at, held,
		attempt, attempted_at, lease_owner, lease_expires_at)
	SELECT k, a::jsonb, s, p, NULLIF(sub, ''), NULLIF(u, ''), m, c, r, h,
		CASE WHEN o = '' THEN 0 ELSE 1 END, CASE WHEN o = '' THEN NULL ELSE c END, NULLIF(o, ''), CASE WHEN o = '' THEN NULL ELSE l END
	FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::bigint[], $10::bool[],
		$11::text[], $12::bigint[])
		WITH ORDINALITY AS t(k, a, s, p, sub, u, m, c, r, h, o, l, ord)
	ORDER BY ord
	ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING
	RETURNING id, COALESCE(unique_key, '')`

// insertBatch writes rows in one statement and returns their ids in order.
// A row with a unique key already stored, or used by an earlier row of the
// batch, is not written and gets the stored job's id, Existing. Identity
// values are assigned in the order the rows are written, so the ids
// returned without a key, sorted, line up with the rows without one.
func insertBatch(ctx context.Context, tx *store.Tx, rows []insertRow) ([]Inserted, error) {
	var (
		q    string
		args []any
	)
	switch tx.Dialect() {
	case store.Postgres:
		n := len(rows)
		kinds, payloads, states, subjects, keys := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		prios, maxes := make([]int32, n), make([]int32, n)
		created, runAt := make([]int64, n), make([]int64, n)
		held := make([]bool, n)
		for i, r := range rows {
			kinds[i], payloads[i], states[i], subjects[i], keys[i] = r.kind, string(r.args), string(r.state), r.subject, r.uniqueKey
			prios[i], maxes[i] = int32(r.priority), int32(r.maxAttempts)
			created[i], runAt[i], held[i] = r.createdAt, r.runAt, r.held
		}
		q, args = insertBatchPG, []any{kinds, payloads, states, prios, subjects, keys, maxes, created, runAt, held}
		if slices.ContainsFunc(rows, func(r insertRow) bool { return r.leaseOwner != "" }) {
			owners, until := make([]string, n), make([]int64, n)
			for i, r := range rows {
				owners[i], until[i] = r.leaseOwner, r.leaseUntil
			}
			q, args = insertStartedPG, append(args, owners, until)
		}
	default:
		if slices.ContainsFunc(rows, func(r insertRow) bool { return r.leaseOwner != "" }) {
			return nil, errors.New("insert jobs: rows written running are a PostgreSQL path")
		}
		var b strings.Builder
		b.WriteString(`INSERT INTO jobs (kind, args, state, priority, subject, unique_key, max_attempts, created_at, run_at, held) VALUES `)
		args = make([]any, 0, len(rows)*10)
		for i, r := range rows {
			if i > 0 {
				b.WriteByte(',')
			}
			// Anonymous parameters: SQLite resolves each $N by a linear
			// search, which makes a thousand-row statement quadratic.
			b.WriteString("(?,?,?,?,?,?,?,?,?,?)")
			args = append(args, r.kind, string(r.args), string(r.state), r.priority, nullable(r.subject), nullable(r.uniqueKey), r.maxAttempts, r.createdAt, r.runAt, r.held)
		}
		b.WriteString(` ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING id, COALESCE(unique_key, '')`)
		q = b.String()
	}
	rs, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("insert jobs: %w", err)
	}
	written, err := store.Collect(rs, scanKeyedID)
	if err != nil {
		return nil, fmt.Errorf("insert jobs: %w", err)
	}
	var plain []int64
	keyed := map[string]int64{}
	for _, w := range written {
		if w.key == "" {
			plain = append(plain, w.id)
		} else {
			keyed[w.key] = w.id
		}
	}
	slices.Sort(plain)
	out := make([]Inserted, len(rows))
	answered := map[string]bool{} // keys written by this statement, answered once
	var stored []string           // keys found already stored
	for i, r := range rows {
		if r.uniqueKey == "" {
			if len(plain) == 0 {
				return nil, errors.New("insert jobs: fewer ids than rows")
			}
			out[i], plain = Inserted{ID: plain[0]}, plain[1:]
			continue
		}
		id, ok := keyed[r.uniqueKey]
		switch {
		case ok && !answered[r.uniqueKey]:
			out[i] = Inserted{ID: id}
			answered[r.uniqueKey] = true
		case ok:
			out[i] = Inserted{ID: id, Existing: true}
		default:
			stored = append(stored, r.uniqueKey)
		}
	}
	if len(plain) != 0 {
		return nil, errors.New("insert jobs: more ids than rows")
	}
	if len(stored) == 0 {
		return out, nil
	}
	ids, err := jobsByUniqueKey(ctx, tx, stored)
	if err != nil {
		return nil, err
	}
	for i, r := range rows {
		if r.uniqueKey != "" && out[i].ID == 0 {
			id, ok := ids[r.uniqueKey]
			if !ok {
				return nil, fmt.Errorf("insert jobs: unique key %q neither written nor stored", r.uniqueKey)
			}
			out[i] = Inserted{ID: id, Existing: true}
		}
	}
	return out, nil
}

const (
	jobsByUniqueKeyPG     = `SELECT id, unique_key FROM jobs WHERE unique_key = ANY($1::text[])`
	jobsByUniqueKeySQLite = `SELECT id, unique_key FROM jobs WHERE unique_key IN (SELECT value FROM json_each($1))`
)

// queryWithList runs the dialect's query with list as its $1: a text array
// on PostgreSQL, a JSON array (read with json_each) on SQLite.
func queryWithList(ctx context.Context, tx *store.Tx, pg, sqlite string, list []string) (*sql.Rows, error) {
	if tx.Dialect() == store.Postgres {
		return tx.QueryContext(ctx, pg, list)
	}
	payload, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	return tx.QueryContext(ctx, sqlite, string(payload))
}

// keyedID is a job's id and its unique key ("" for none).
type keyedID struct {
	id  int64
	key string
}

func scanKeyedID(sc store.Scanner) (keyedID, error) {
	var k keyedID
	err := sc.Scan(&k.id, &k.key)
	return k, err
}

// jobsByUniqueKey reads the ids of the stored jobs with the given keys.
func jobsByUniqueKey(ctx context.Context, tx *store.Tx, keys []string) (map[string]int64, error) {
	rs, err := queryWithList(ctx, tx, jobsByUniqueKeyPG, jobsByUniqueKeySQLite, keys)
	if err != nil {
		return nil, fmt.Errorf("find jobs with unique keys: %w", err)
	}
	found, err := store.Collect(rs, scanKeyedID)
	if err != nil {
		return nil, fmt.Errorf("find jobs with unique keys: %w", err)
	}
	ids := make(map[string]int64, len(found))
	for _, f := range found {
		ids[f.key] = f.id
	}
	return ids, nil
}

// claimSQL picks due jobs in priority order and marks them running. A job
// with a subject is taken only when no other job of its subject is running
// and no earlier job of its subject still waits (available or retryable):
// that is per-subject FIFO with one job at a time. The LIMIT is the
// dialect's (claimLimitSQLite).
const claimPick = `SELECT j.id FROM jobs j
	WHERE j.state = 'available' AND NOT j.held
	  AND (j.subject IS NULL OR (
		NOT EXISTS (SELECT 1 FROM jobs b WHERE b.subject = j.subject AND b.id < j.id
			AND b.state IN ('available', 'running', 'retryable'))
		AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.subject = j.subject AND r.state = 'running')))
	ORDER BY j.priority DESC, j.run_at, j.id
	LIMIT `

const claimSet = `held = FALSE, state = 'running', attempt = attempt + 1, attempted_at = $2, lease_owner = $3, lease_expires_at = $4`

// claimLimitSQLite is the claim's LIMIT on SQLite: an expression rather
// than the bare parameter. With a bare parameter SQLite's planner takes the
// bound value into account, so every new value (the writer's free slots
// change from turn to turn) compiles the prepared statement again on its
// next step: about 50 µs a claim on the single writer connection, the only
// re-compilation in a CPU profile of the CRM benchmark. The plan is the same
// either way (the fetch index in priority order).
const claimLimitSQLite = `$1 + 0`

var (
	claimSQLite = `UPDATE jobs SET ` + claimSet + ` WHERE id IN (` + claimPick + claimLimitSQLite + `) RETURNING ` + jobColumns
	claimPG     = `WITH picked AS (` + claimPick + `$1 FOR UPDATE OF j SKIP LOCKED)
		UPDATE jobs SET ` + claimSet + ` FROM picked WHERE jobs.id = picked.id RETURNING ` + prefixed("jobs.", jobColumns)
)

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// promoteSQL makes scheduled and retryable jobs that are due available.
const promoteSQL = `UPDATE jobs SET state = 'available' WHERE state IN ('scheduled', 'retryable') AND run_at <= $1`

const nextDueSQL = `SELECT run_at FROM jobs WHERE state IN ('scheduled', 'retryable') ORDER BY run_at LIMIT 1`

// claimTx promotes due jobs (when promote is set), claims up to limit jobs
// for owner and reports the earliest run_at still in the future (zero if
// none). On PostgreSQL it first tries the claim lock, held to commit, and
// sets *locked to when it had it (after asking for *waited); when another
// instance holds it, it claims and promotes nothing and reports busy: the
// turn's inserts and outcomes commit without waiting for the lock, and the
// writer claims again a moment later.
func claimTx(ctx context.Context, tx *store.Tx, limit int, owner string, now time.Time, lease time.Duration, promote bool, waited *time.Duration, locked *time.Time) (jobs []*JobRow, nextDue time.Time, busy bool, err error) {
	q := claimSQLite
	if tx.Dialect() == store.Postgres {
		q = claimPG
		asked := time.Now()
		var got bool
		if err := tx.QueryRowCached(ctx, claimLockSQL, int32(claimLockNamespace)).Scan(&got); err != nil {
			return nil, nextDue, false, fmt.Errorf("claim lock: %w", err)
		}
		*waited = time.Since(asked)
		if !got {
			return nil, nextDue, true, nil
		}
		*locked = time.Now()
	}
	if promote {
		if _, err := tx.ExecCached(ctx, promoteSQL, micros(now)); err != nil {
			return nil, nextDue, false, fmt.Errorf("promote due jobs: %w", err)
		}
		var due int64
		switch err := tx.QueryRowCached(ctx, nextDueSQL).Scan(&due); {
		case err == nil:
			nextDue = fromMicros(due)
		case !errors.Is(err, sql.ErrNoRows):
			return nil, nextDue, false, fmt.Errorf("next due job: %w", err)
		}
	}
	if limit <= 0 {
		return nil, nextDue, false, nil
	}
	rs, err := tx.QueryCached(ctx, q, limit, micros(now), owner, micros(now.Add(lease)))
	if err != nil {
		return nil, nextDue, false, fmt.Errorf("claim jobs: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		j, err := scanJob(rs)
		if err != nil {
			return nil, nextDue, false, fmt.Errorf("claim jobs: %w", err)
		}
		jobs = append(jobs, j)
	}
	if err := rs.Err(); err != nil {
		return nil, nextDue, false, fmt.Errorf("claim jobs: %w", err)
	}
	slices.SortFunc(jobs, func(a, b *JobRow) int {
		if a.Priority != b.Priority {
			return cmp.Compare(b.Priority, a.Priority)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return jobs, nextDue, false, nil
}

// outcome is how one attempt ended, as the completer writes it.
type outcome struct {
	job      *JobRow
	state    State // completed, retryable, failed, cancelled, available (released)
	runAt    time.Time
	err      string // appended to the job's errors when not empty
	snoozed  bool   // gives the attempt back
	released bool   // gives the attempt back (shutdown)
	finished time.Time
	started  time.Time
	run      *runState // the run whose handler produced it
}

// finishTx writes a batch of outcomes. Each update matches the job's id,
// attempt and running state, so an outcome for a job that was rescued
// meanwhile changes nothing. It reports whether a subject was freed, which
// other instances should hear of.
func finishTx(ctx context.Context, tx *store.Tx, reg *Registry, now time.Time, batch []outcome) (notify bool, err error) {
	var doneIDs, doneAttempts []int64
	var freed []string
	for _, o := range batch {
		if o.job.Subject != "" && o.state.Terminal() {
			notify = true
			// CompleteTx released the subject with the completion.
			if !(o.state == StateCompleted && o.job.completedInTx) {
				freed = append(freed, o.job.Subject)
			}
		}
		if o.state == StateCompleted && o.err == "" {
			if o.job.completedInTx {
				continue // committed by the handler's own transaction
			}
			doneIDs = append(doneIDs, o.job.ID)
			doneAttempts = append(doneAttempts, int64(o.job.Attempt))
			continue
		}
		applied, err := finishOne(ctx, tx, now, o)
		if err != nil {
			return false, err
		}
		if applied {
			if err := reg.discarded(ctx, tx, o.job, o.state); err != nil {
				return false, err
			}
		}
	}
	if len(doneIDs) > 0 {
		if err := completeMany(ctx, tx, now, doneIDs, doneAttempts); err != nil {
			return false, err
		}
	}
	if err := releaseSubjects(ctx, tx, freed); err != nil {
		return false, err
	}
	return notify, nil
}

// nextHeld finds the first held job of subject s.value (one index seek).
const nextHeld = `SELECT h.id FROM jobs h WHERE h.held AND h.subject = s.value
	AND h.state IN ('scheduled', 'available', 'retryable') ORDER BY h.id LIMIT 1`

// releasePG joins each subject to its next held job laterally, which
// PostgreSQL can only run as a nested loop of index seeks. The form
// `WHERE id IN (SELECT (nextHeld) FROM unnest(...))` was planned, once the
// statement's cached generic plan took over, as a hash join over a
// sequential scan of the whole jobs table: one completion cost a read of
// every retained job (a fifth of the database server's CPU in the CRM
// benchmark, growing with the table).
var (
	releasePG = `UPDATE jobs SET held = FALSE
		FROM unnest($1::text[]) AS s(value)
		CROSS JOIN LATERAL (` + strings.Replace(nextHeld, "SELECT h.id", "SELECT h.id AS next_id", 1) + `) AS n
		WHERE jobs.id = n.next_id`
	releaseSQLite = `UPDATE jobs SET held = FALSE WHERE id IN (
		SELECT (` + nextHeld + `) FROM json_each($1) AS s)`
)

// releaseSubjects lets the next held job of each subject (whose running job
// just finished) into the fetch index.
func releaseSubjects(ctx context.Context, tx *store.Tx, subjects []string) error {
	if len(subjects) == 0 {
		return nil
	}
	var err error
	if tx.Dialect() == store.Postgres {
		_, err = tx.ExecContext(ctx, releasePG, subjects)
	} else {
		payload, _ := json.Marshal(subjects)
		_, err = tx.ExecCached(ctx, releaseSQLite, string(payload))
	}
	if err != nil {
		return fmt.Errorf("release subjects: %w", err)
	}
	return nil
}

const completePG = `UPDATE jobs SET state = 'completed', finalized_at = $1, lease_owner = NULL, lease_expires_at = NULL
	FROM unnest($2::bigint[], $3::int[]) AS c(id, attempt)
	WHERE jobs.id = c.id AND jobs.attempt = c.attempt AND jobs.state = 'running'`

const completeSQLite = `UPDATE jobs SET state = 'completed', finalized_at = $1, lease_owner = NULL, lease_expires_at = NULL
	FROM (SELECT value ->> 0 AS id, value ->> 1 AS attempt FROM json_each($2)) AS c
	WHERE jobs.id = c.id AND jobs.attempt = c.attempt AND jobs.state = 'running'`

func completeMany(ctx context.Context, tx *store.Tx, now time.Time, ids, attempts []int64) error {
	var err error
	switch tx.Dialect() {
	case store.Postgres:
		_, err = tx.ExecContext(ctx, completePG, micros(now), ids, attempts)
	default:
		pairs := make([][2]int64, len(ids))
		for i := range ids {
			pairs[i] = [2]int64{ids[i], attempts[i]}
		}
		payload, _ := json.Marshal(pairs)
		_, err = tx.ExecCached(ctx, completeSQLite, micros(now), string(payload))
	}
	if err != nil {
		return fmt.Errorf("complete %d jobs: %w", len(ids), err)
	}
	return nil
}

// appendError is the dialect's expression appending the JSON object in
// parameter $n to the errors column.
func appendError(d store.Dialect, n int) string {
	if d == store.Postgres {
		return fmt.Sprintf("errors || jsonb_build_array($%d::jsonb)", n)
	}
	return fmt.Sprintf("json_insert(errors, '$[#]', json($%d))", n)
}

// errorJSON is an attempt's error as stored. The message is often a
// partner's words: json.Marshal already replaces invalid UTF-8 with U+FFFD,
// and a NUL byte is replaced the same way, since PostgreSQL's JSON cannot
// hold one (the write of the outcome would fail every time).
func errorJSON(attempt int, at time.Time, msg string) string {
	msg = strings.ReplaceAll(msg, "\x00", "\uFFFD")
	b, _ := json.Marshal(AttemptError{Attempt: attempt, At: at.UTC(), Error: msg})
	return string(b)
}

// finishSQL moves a running job to the state in $3, setting its errors
// column to errs.
func finishSQL(errs string) string {
	return `UPDATE jobs SET state = $3, run_at = $4, finalized_at = $5,
		attempt = attempt - $6, snoozes = snoozes + $7, errors = ` + errs + `,
		lease_owner = NULL, lease_expires_at = NULL
	WHERE id = $1 AND attempt = $2 AND state = 'running'`
}

// sqliteHotQueries are the statements the writer runs every turn; the
// SQLite writer parses them once.
var sqliteHotQueries = []string{
	claimSQLite, promoteSQL, nextDueSQL, releaseSQLite, completeSQLite, insertUniqueSQL, insertOneOfSubjectSQLite, completeOneSQL, busySubjectOne,
	finishSQL("errors"), finishSQL(appendError(store.SQLite, 8)),
}

func finishOne(ctx context.Context, tx *store.Tx, now time.Time, o outcome) (bool, error) {
	var finalized any
	if o.state.Terminal() {
		finalized = micros(now)
	}
	giveBack, snoozes := 0, 0
	if o.snoozed {
		giveBack, snoozes = 1, 1
	}
	if o.released {
		giveBack = 1
	}
	q := finishSQL("errors")
	args := []any{o.job.ID, o.job.Attempt, string(o.state), micros(o.runAt), finalized, giveBack, snoozes}
	if o.err != "" {
		q = finishSQL(appendError(tx.Dialect(), 8))
		args = append(args, errorJSON(o.job.Attempt, now, o.err))
	}
	res, err := tx.ExecCached(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("finish job %d as %s: %w", o.job.ID, o.state, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func getJob(ctx context.Context, q store.Queryer, id int64) (*JobRow, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", id, err)
	}
	return j, nil
}
