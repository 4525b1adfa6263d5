package paytv

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/provhub/provhub/internal/store"
)

// The SQL of the paytv_requests table and its numbering, a named function
// a use (times are Unix microseconds). The writes of every request are
// prepared once on SQLite (see New).

// insertRequestSQL stores an accepted request; its number is drawn by the
// statement itself on PostgreSQL (a sequence), given as $18 on SQLite (a
// counter row, which its single writer serializes).
const insertRequestSQL = `INSERT INTO paytv_requests (id, organisation_id, provider, type, life_cycle_state,
		priority, process_immediately, scheduled_at, subscription_id, smartcard_ca_id, command, parameters, pin,
		created_at, updated_at, created_by_user_id, created_by_unit_id, process_immediately_given, client_identifiers, number)
	VALUES ($1, $2, $3, $4, 'PENDING', $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16, $17, %s)
	RETURNING number`

var (
	insertRequestPG     = fmt.Sprintf(insertRequestSQL, `nextval('paytv_request_number')`)
	insertRequestSQLite = fmt.Sprintf(insertRequestSQL, `$18`)
)

// newRequest is a request as Create stores it, PENDING.
type newRequest struct {
	ID, OrganisationID            string
	Provider                      Provider
	Type                          RequestType
	Priority                      Priority
	ProcessImmediately            bool
	ProcessImmediatelyGiven       bool
	ScheduledAt, CreatedAt        int64
	SubscriptionID, SmartcardCAID string
	Command, Parameters, PIN      string
	UserID, UnitID                string
	ClientIdentifiers             string
}

// insertRequestTx stores a new request and returns the number drawn for it.
func insertRequestTx(ctx context.Context, tx *store.Tx, r newRequest) (int64, error) {
	args := []any{r.ID, r.OrganisationID, string(r.Provider), string(r.Type), string(r.Priority), r.ProcessImmediately,
		r.ScheduledAt, null(r.SubscriptionID), r.SmartcardCAID, r.Command, r.Parameters, null(r.PIN),
		r.CreatedAt, r.UserID, r.UnitID, r.ProcessImmediatelyGiven, r.ClientIdentifiers}
	q := insertRequestPG
	if tx.Dialect() != store.Postgres {
		n, err := nextValue(ctx, tx, "request_number")
		if err != nil {
			return 0, err
		}
		q, args = insertRequestSQLite, append(args, n)
	}
	var number int64
	if err := tx.QueryRowCached(ctx, q, args...).Scan(&number); err != nil {
		return 0, fmt.Errorf("store provisioning request: %w", err)
	}
	return number, nil
}

// insertRequestsPG stores several accepted requests from arrays, one per
// column, and returns the number drawn for each id.
const insertRequestsPG = `INSERT INTO paytv_requests (id, organisation_id, provider, type, life_cycle_state,
		priority, process_immediately, scheduled_at, subscription_id, smartcard_ca_id, command, parameters, pin,
		created_at, updated_at, created_by_user_id, created_by_unit_id, process_immediately_given, client_identifiers, number)
	SELECT id, org, prov, typ, 'PENDING', prio, pi, sched, NULLIF(sub, ''), card, cmd, params, NULLIF(pin, ''),
		created, created, usr, unit, pig, cids, nextval('paytv_request_number')
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::bigint[], $8::text[], $9::text[],
		$10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[], $16::bool[], $17::text[])
		WITH ORDINALITY AS t(id, org, prov, typ, prio, pi, sched, sub, card, cmd, params, pin, created, usr, unit, pig, cids, ord)
	ORDER BY ord
	RETURNING id, number`

// insertRequestsTx stores new requests and returns the number drawn for
// each, in order: on PostgreSQL in one statement, on SQLite (in process, its
// statement parsed once) one by one.
func insertRequestsTx(ctx context.Context, tx *store.Tx, rs []newRequest) ([]int64, error) {
	numbers := make([]int64, len(rs))
	if tx.Dialect() != store.Postgres || len(rs) == 1 {
		for i, r := range rs {
			n, err := insertRequestTx(ctx, tx, r)
			if err != nil {
				return nil, err
			}
			numbers[i] = n
		}
		return numbers, nil
	}
	n := len(rs)
	ids, orgs, provs, types, prios, subs, cards := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	cmds, params, pins, users, units, cids := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	immediate, given := make([]bool, n), make([]bool, n)
	sched, created := make([]int64, n), make([]int64, n)
	at := make(map[string]int, n)
	for i, r := range rs {
		ids[i], orgs[i], provs[i], types[i], prios[i] = r.ID, r.OrganisationID, string(r.Provider), string(r.Type), string(r.Priority)
		subs[i], cards[i], cmds[i], params[i], pins[i] = r.SubscriptionID, r.SmartcardCAID, r.Command, r.Parameters, r.PIN
		users[i], units[i], cids[i] = r.UserID, r.UnitID, r.ClientIdentifiers
		immediate[i], given[i], sched[i], created[i] = r.ProcessImmediately, r.ProcessImmediatelyGiven, r.ScheduledAt, r.CreatedAt
		at[r.ID] = i
	}
	rows, err := tx.QueryContext(ctx, insertRequestsPG, ids, orgs, provs, types, prios, immediate, sched, subs, cards,
		cmds, params, pins, created, users, units, given, cids)
	if err != nil {
		return nil, fmt.Errorf("store provisioning requests: %w", err)
	}
	drawn, err := store.Collect(rows, scanDrawnNumber)
	if err != nil {
		return nil, fmt.Errorf("store provisioning requests: %w", err)
	}
	if len(drawn) != n {
		return nil, fmt.Errorf("store provisioning requests: %d numbers for %d requests", len(drawn), n)
	}
	for _, d := range drawn {
		numbers[at[d.id]] = d.number
	}
	return numbers, nil
}

// drawnNumber is the number drawn for a request's id.
type drawnNumber struct {
	id     string
	number int64
}

func scanDrawnNumber(sc store.Scanner) (drawnNumber, error) {
	var d drawnNumber
	err := sc.Scan(&d.id, &d.number)
	return d, err
}

const nextCounterSQL = `UPDATE paytv_counters SET value = value + 1 WHERE name = $1 RETURNING value`

// nextValue draws the next number of a counter: a sequence on PostgreSQL,
// a counter row on SQLite (whose single writer serializes it anyway).
func nextValue(ctx context.Context, tx *store.Tx, name string) (int64, error) {
	var v int64
	var err error
	if tx.Dialect() == store.Postgres {
		err = tx.QueryRowContext(ctx, `SELECT nextval('paytv_`+name+`')`).Scan(&v)
	} else {
		err = tx.QueryRowCached(ctx, nextCounterSQL, name).Scan(&v)
	}
	if err != nil {
		return 0, fmt.Errorf("next %s: %w", name, err)
	}
	return v, nil
}

const requestSelect = `SELECT r.organisation_id, r.id, r.number, r.provider, r.type, r.life_cycle_state, r.priority, r.process_immediately, r.process_immediately_given,
	r.sequence_number, r.scheduled_at, r.executed_at, r.smartcard_ca_id, r.parameters, r.request, r.response,
	r.reference_number, r.error_code, r.error_description, r.provider_error_code, r.provider_error_description,
	r.created_at, r.updated_at, r.client_identifiers, u.id, u.username, u.person_name, u.email,
	n.id, n.name, n.description, n.alternative_code, n.group_name, n.community_name
	FROM paytv_requests r JOIN crm_users u ON u.id = r.created_by_user_id JOIN crm_units n ON n.id = r.created_by_unit_id`

type scanner interface{ Scan(dest ...any) error }

func scanRequest(sc scanner) (*Request, error) {
	var (
		r                           Request
		scheduled, created, updated int64
		executed                    sql.NullInt64
		params                      string
		clientIDs                   sql.NullString
	)
	err := sc.Scan(&r.organisationID, &r.ID, &r.Number, &r.Provider, &r.Type, &r.LifeCycleState, &r.Priority, &r.ProcessImmediately, &r.ProcessImmediatelyGiven,
		&r.SequenceNumber, &scheduled, &executed, &r.SmartcardCAID, &params, &r.Request, &r.Response,
		&r.ReferenceNumber, &r.ErrorCode, &r.ErrorDescription, &r.ProviderErrorCode, &r.ProviderErrorDescription,
		&created, &updated, &clientIDs, &r.CreatedBy.ID, &r.CreatedBy.Username, &r.CreatedBy.PersonName, &r.CreatedBy.Email,
		&r.CreatedUnit.ID, &r.CreatedUnit.Name, &r.CreatedUnit.Description, &r.CreatedUnit.AlternativeCode,
		&r.CreatedUnit.GroupName, &r.CreatedUnit.CommunityName)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		return nil, fmt.Errorf("read provisioning request: %w", err)
	}
	r.ScheduledAt, r.CreatedAt, r.UpdatedAt = fromMicros(scheduled), fromMicros(created), fromMicros(updated)
	if executed.Valid {
		t := fromMicros(executed.Int64)
		r.ExecutedAt = &t
	}
	if err := json.Unmarshal([]byte(params), &r.Parameters); err != nil {
		return nil, fmt.Errorf("read parameters of request %s: %w", r.ID, err)
	}
	if clientIDs.Valid {
		if err := json.Unmarshal([]byte(clientIDs.String), &r.ClientIdentifiers); err != nil {
			return nil, fmt.Errorf("read client identifiers of request %s: %w", r.ID, err)
		}
	}
	return &r, nil
}

// readRequestWhere reads the request whose col (a column of requestSelect
// from requestColumns, never input) is value; nil when there is none.
func readRequestWhere(ctx context.Context, db *store.DB, col string, value any) (*Request, error) {
	r, err := scanRequest(db.ReadRow(ctx, requestSelect+` WHERE `+col+` = $1`, value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

// listRequests reads an organisation's requests made through provider that
// match f, by ascending number.
func listRequests(ctx context.Context, db *store.DB, orgID string, provider Provider, f ListFilter) ([]*Request, error) {
	query, args := listRequestsSQL(orgID, provider, f)
	rows, err := db.ReadQuery(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list provisioning requests: %w", err)
	}
	return collectRequests(rows)
}

// listRequestsSQL is listRequests's statement and its arguments.
func listRequestsSQL(orgID string, provider Provider, f ListFilter) (string, []any) {
	where := []string{"r.organisation_id = $1", "r.provider = $2"}
	args := []any{orgID, string(provider)}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Type != "" {
		add("r.type = $%d", string(f.Type))
	}
	if f.LifeCycleState != "" {
		add("r.life_cycle_state = $%d", string(f.LifeCycleState))
	}
	if f.ReferenceNumber != "" {
		add("r.reference_number = $%d", f.ReferenceNumber)
	}
	args = append(args, f.Limit, f.Offset)
	query := requestSelect + ` WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY r.number LIMIT $%d OFFSET $%d`, len(args)-1, len(args))
	return query, args
}

// recentRequests reads the newest requests of every organisation that
// match q (see Service.Recent), at most limit.
func recentRequests(ctx context.Context, db *store.DB, q store.ListQuery, limit int) ([]*Request, error) {
	number, before := int64(-1), int64(0)
	if n, err := strconv.ParseInt(q.Search, 10, 64); err == nil {
		number = n
	}
	if n, err := strconv.ParseInt(q.Before, 10, 64); err == nil {
		before = n
	}
	value, _ := json.Marshal(q.Search)
	rows, err := db.ReadQuery(ctx, requestSelect+` WHERE ($1 = '' OR r.life_cycle_state = $1)
		AND ($2 = '' OR r.id = $2 OR r.number = $3 OR r.smartcard_ca_id = $2 OR r.reference_number = $2 OR r.parameters LIKE $4 ESCAPE '\' OR r.client_identifiers LIKE $7 ESCAPE '\')
		AND ($5 = 0 OR r.number < $5) ORDER BY r.number DESC LIMIT $6`,
		q.Status, q.Search, number, `%"value":`+store.EscapeLike(string(value))+`%`, before, limit,
		`%=`+store.EscapeLike(strings.Trim(string(value), `"`))+`"%`)
	if err != nil {
		return nil, fmt.Errorf("recent provisioning requests: %w", err)
	}
	return collectRequests(rows)
}

// purgeRequestsTx removes the requests that reached COMPLETED or REJECTED
// before cutoff; a PENDING one stays.
func purgeRequestsTx(ctx context.Context, tx *store.Tx, cutoff int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM paytv_requests WHERE life_cycle_state <> 'PENDING' AND updated_at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("purge provisioning requests: %w", err)
	}
	return res.RowsAffected()
}

// requestOutcomes counts the requests changed since a time by life-cycle
// state and error code; a PENDING one retrying the CAS as "PENDING retrying".
func requestOutcomes(ctx context.Context, db *store.DB, since int64) (map[string]int, error) {
	return db.CountOutcomes(ctx, `SELECT life_cycle_state, CASE WHEN life_cycle_state = 'PENDING' AND error_description LIKE 'retrying:%'
		THEN 'retrying' ELSE COALESCE(error_code, '') END, count(*) FROM paytv_requests WHERE updated_at >= $1 GROUP BY 1, 2`, since)
}

// requestState reads a request's life-cycle state.
func requestState(ctx context.Context, db *store.DB, id string) (LifeCycleState, error) {
	var state LifeCycleState
	if err := db.ReadRow(ctx, `SELECT life_cycle_state FROM paytv_requests WHERE id = $1`, id).Scan(&state); err != nil {
		return "", fmt.Errorf("provisioning request %s: %w", id, err)
	}
	return state, nil
}

// toSend is what the send job reads of its request.
type toSend struct {
	state        LifeCycleState
	reqType      string
	command      string
	pin          string
	scheduled    int64
	organisation string // the organisation's name
}

// readToSend reads what sending request id needs; nil when it is gone.
func readToSend(ctx context.Context, db *store.DB, id string) (*toSend, error) {
	var (
		r   toSend
		pin sql.NullString
	)
	err := db.ReadRow(ctx, `SELECT r.life_cycle_state, r.type, r.command, r.pin, r.scheduled_at, o.name FROM paytv_requests r
		JOIN crm_organisations o ON o.id = r.organisation_id WHERE r.id = $1`, id).
		Scan(&r.state, &r.reqType, &r.command, &pin, &r.scheduled, &r.organisation)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load provisioning request %s: %w", id, err)
	}
	r.pin = pin.String
	return &r, nil
}

// retryingSQL says on a PENDING request why it is still pending. The
// error code stays empty (it names a final outcome); the outcome, when it
// comes, replaces the description.
const retryingSQL = `UPDATE paytv_requests SET error_description = $2, updated_at = $3
	WHERE id = $1 AND life_cycle_state = 'PENDING'`

// noteRetryingTx says on a PENDING request why it is still pending.
func noteRetryingTx(ctx context.Context, tx *store.Tx, id, why string, now int64) error {
	if _, err := tx.ExecContext(ctx, retryingSQL, id, why, now); err != nil {
		return fmt.Errorf("note a retry on provisioning request %s: %w", id, err)
	}
	return nil
}

// recordSQL writes a request's outcome; its sequence number is drawn by
// the statement on PostgreSQL, given as $11 on SQLite (see insertRequestSQL).
const recordSQL = `UPDATE paytv_requests SET life_cycle_state = $2, sequence_number = %s, executed_at = $3,
		request = $4, response = $5, reference_number = $6, error_code = $7, error_description = $8,
		provider_error_code = $9, provider_error_description = $10, pin = NULL, updated_at = $3
	WHERE id = $1 AND life_cycle_state = 'PENDING'`

var (
	recordPG     = fmt.Sprintf(recordSQL, `nextval('paytv_sequence_number')`)
	recordSQLite = fmt.Sprintf(recordSQL, `$11`)
)

// recordOutcomeTx writes a PENDING request's final outcome, draws its
// sequence number and erases its PIN; recorded is false when the request
// was no longer PENDING.
func recordOutcomeTx(ctx context.Context, tx *store.Tx, id string, o sendOutcome, now int64) (recorded bool, err error) {
	args := []any{id, string(o.state), now, null(o.request), null(o.response), null(o.reference),
		null(o.errorCode), null(o.errorDescription), null(o.providerCode), null(o.providerDescription)}
	q := recordPG
	if tx.Dialect() != store.Postgres {
		seq, err := nextValue(ctx, tx, "sequence_number")
		if err != nil {
			return false, err
		}
		q, args = recordSQLite, append(args, seq)
	}
	res, err := tx.ExecCached(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("record outcome of %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// rejectPendingTx ends a PENDING request REJECTED with code and why, and
// erases its PIN; it returns the request's type, or "" when the request was
// no longer PENDING.
func rejectPendingTx(ctx context.Context, tx *store.Tx, id, code, why string, now int64) (reqType string, err error) {
	seq, err := nextValue(ctx, tx, "sequence_number")
	if err != nil {
		return "", err
	}
	err = tx.QueryRowContext(ctx, `UPDATE paytv_requests SET life_cycle_state = 'REJECTED', sequence_number = $2, executed_at = $3,
		error_code = $4, error_description = $5, pin = NULL, updated_at = $3
		WHERE id = $1 AND life_cycle_state = 'PENDING' RETURNING type`, id, seq, now, code, why).Scan(&reqType)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("reject provisioning request %s: %w", id, err)
	}
	return reqType, nil
}

// collectRequests reads a list of requests; none is an empty list.
func collectRequests(rows *sql.Rows) ([]*Request, error) {
	out, err := store.Collect(rows, func(s store.Scanner) (*Request, error) { return scanRequest(s) })
	if out == nil && err == nil {
		out = []*Request{}
	}
	return out, err
}
