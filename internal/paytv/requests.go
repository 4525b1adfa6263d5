package paytv

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/store"
)

// CreateInput asks for a provisioning request. Which fields are needed
// depends on Type; see Create.
type CreateInput struct {
	Provider     Provider
	Type         RequestType
	Subscription *Identifier
	Service      *Identifier
	// Smartcard is the card of a subscription or PIN request, or a card of
	// the pairing that ADD_TO_EXISTING_PAIRING extends.
	Smartcard *Identifier
	// SmartcardSet and STBSet are CA ids, for pairing requests.
	SmartcardSet []string
	STBSet       []string
	// PIN is the new PIN of UPDATE_CA_PIN_TO_GIVEN_VALUE.
	PIN                string
	ProcessImmediately bool
	// ProcessImmediatelyGiven tells that the call named process_immediately
	// (it is then answered 0 or 1, else null).
	ProcessImmediatelyGiven bool
	// ScheduledAt is when the request is due; nil means now.
	ScheduledAt *time.Time
	// Priority is REGULAR when empty.
	Priority Priority
}

// Job priorities: a request processed immediately is waited on by its
// caller, so it goes first; then EXPRESS; then REGULAR.
const (
	jobPriorityRegular   = 0
	jobPriorityExpress   = 10
	jobPriorityImmediate = 20
)

// Create stores a PENDING request and its job in one transaction. With
// ProcessImmediately it then waits (up to Config.ImmediateWait) for the CAS's
// answer, so the request returned shows its final state.
func (s *Service) Create(ctx context.Context, sess *Session, in CreateInput) (*Request, error) {
	now := s.now().UTC().Truncate(time.Second)
	if in.Priority == "" {
		in.Priority = Regular
	}
	if in.Priority != Regular && in.Priority != Express {
		return nil, errorf(KindInvalid, "priority must be REGULAR or EXPRESS")
	}
	scheduled := now
	if in.ScheduledAt != nil {
		scheduled = in.ScheduledAt.UTC()
		if in.ProcessImmediately && scheduled.After(now) {
			return nil, errorf(KindInvalid, "process_immediately cannot be combined with a scheduled date in the future")
		}
	}
	plan, err := s.plan(ctx, sess.OrganisationID, in)
	if err != nil {
		return nil, err
	}
	id := auth.NewID()
	command, _ := json.Marshal(plan.command)
	params, _ := json.Marshal(plan.params)
	jobPriority := jobPriorityRegular
	switch {
	case in.ProcessImmediately:
		jobPriority = jobPriorityImmediate
	case in.Priority == Express:
		jobPriority = jobPriorityExpress
	}
	var done chan struct{}
	if in.ProcessImmediately {
		done = s.await(id)
		defer s.forget(id)
	}
	// Many concurrent creates share one durable commit; each keeps its own
	// savepoint, so one failing does not touch the others.
	var number int64
	clientIDs := clientIdentifiers(in)
	err = s.db.InGroupTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		args := []any{id, sess.OrganisationID, string(in.Provider), string(in.Type), string(in.Priority), in.ProcessImmediately,
			micros(scheduled), null(plan.subscriptionID), plan.subject, string(command), string(params), null(in.PIN),
			micros(now), sess.User.ID, sess.Unit.ID, in.ProcessImmediately || in.ProcessImmediatelyGiven, clientIDs}
		q := insertRequestPG
		if tx.Dialect() != store.Postgres {
			n, err := nextValue(ctx, tx, "request_number")
			if err != nil {
				return err
			}
			q, args = insertRequestSQLite, append(args, n)
		}
		if err := tx.QueryRowCached(ctx, q, args...).Scan(&number); err != nil {
			return fmt.Errorf("store provisioning request: %w", err)
		}
		_, err = s.engine.Insert(ctx, tx, SendArgs{RequestID: id}, &engine.InsertOpts{
			Priority: jobPriority, RunAt: scheduled, Subject: "smartcard:" + plan.subject, UniqueKey: SendJobKey(id),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "provisioning request accepted", "request_id", id, "type", in.Type,
		"smartcard_ca_id", plan.subject, "priority", in.Priority, "scheduled", scheduled)
	if done != nil {
		if err := s.wait(ctx, id, done); err != nil {
			return nil, err
		}
		return s.get(ctx, sess.OrganisationID, in.Provider, Identifier{Field: "id", Value: id})
	}
	// PENDING as just written: answered from what was written rather than
	// read back (a round trip less on every accepted request).
	r := &Request{organisationID: sess.OrganisationID, ID: id, Number: number, Provider: in.Provider, Type: in.Type,
		LifeCycleState: Pending, Priority: in.Priority, ProcessImmediately: in.ProcessImmediately,
		ProcessImmediatelyGiven: in.ProcessImmediately || in.ProcessImmediatelyGiven,
		ScheduledAt:             fromMicros(micros(scheduled)), SmartcardCAID: plan.subject,
		CreatedAt: fromMicros(micros(now)), UpdatedAt: fromMicros(micros(now)), CreatedBy: sess.User, CreatedUnit: sess.Unit}
	if err := json.Unmarshal(params, &r.Parameters); err != nil {
		return nil, fmt.Errorf("provisioning request %s: parameters: %w", id, err)
	}
	if err := json.Unmarshal([]byte(clientIDs), &r.ClientIdentifiers); err != nil {
		return nil, fmt.Errorf("provisioning request %s: client identifiers: %w", id, err)
	}
	return r, nil
}

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

// clientIdentifiers is what the client named, as it named it, in JSON.
func clientIdentifiers(in CreateInput) string {
	var ids []string
	for _, n := range []struct {
		what string
		id   *Identifier
	}{{"subscription", in.Subscription}, {"service", in.Service}, {"smartcard", in.Smartcard}} {
		if n.id != nil {
			ids = append(ids, n.what+" "+n.id.String())
		}
	}
	for _, ca := range in.SmartcardSet {
		ids = append(ids, "smartcard ca_id="+ca)
	}
	for _, ca := range in.STBSet {
		ids = append(ids, "stb ca_id="+ca)
	}
	raw, _ := json.Marshal(ids)
	return string(raw)
}

// The plan of a request (what the CAS is sent, its parameters, the
// smartcard whose queue it joins) is made by planner.go.

// identifierColumns are the columns an identifier field may name, per
// record; nothing from input reaches SQL text but through these maps.
var (
	subscriptionColumns = map[string]string{"id": "id", "number": "number"}
	serviceColumns      = map[string]string{"id": "id", "code": "code", "alternative_code": "alternative_code"}
	itemColumns         = map[string]string{"id": "id", "serial_number": "serial_number", "alternative_code": "alternative_code"}
	requestColumns      = map[string]string{"id": "r.id", "number": "r.number"}
)

// IdentifierFields lists the fields each identifier accepts, by parameter
// name.
var IdentifierFields = map[string][]string{
	"provisioning_request_identifier": {"id", "number"},
	"subscription_identifier":         {"id", "number"},
	"service_identifier":              {"id", "code", "alternative_code"},
	"smartcard_identifier":            {"id", "serial_number", "alternative_code"},
}

func column(cols map[string]string, ident Identifier, param string) (string, error) {
	c, ok := cols[ident.Field]
	if !ok {
		return "", errorf(KindInvalid, "%s: unknown field %q", param, ident.Field)
	}
	return c, nil
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

// ListFilter selects requests for List; at least one of Type,
// LifeCycleState and ReferenceNumber is set.
type ListFilter struct {
	Type            RequestType
	LifeCycleState  LifeCycleState
	ReferenceNumber string
	Limit, Offset   int
}

// Show returns one request of the session's organisation made through
// provider.
func (s *Service) Show(ctx context.Context, sess *Session, provider Provider, ident Identifier) (*Request, error) {
	return s.get(ctx, sess.OrganisationID, provider, ident)
}

// List returns the requests matching f, in the order they were created
// (ascending number).
func (s *Service) List(ctx context.Context, sess *Session, provider Provider, f ListFilter) ([]*Request, error) {
	if f.Type == "" && f.LifeCycleState == "" && f.ReferenceNumber == "" {
		return nil, errorf(KindMissing, "one of type, life_cycle_state and reference_number is required")
	}
	where := []string{"r.organisation_id = $1", "r.provider = $2"}
	args := []any{sess.OrganisationID, string(provider)}
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
	rows, err := s.db.ReadQuery(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list provisioning requests: %w", err)
	}
	return collectRequests(rows)
}

func (s *Service) get(ctx context.Context, orgID string, provider Provider, ident Identifier) (*Request, error) {
	col, err := column(requestColumns, ident, "provisioning_request_identifier")
	if err != nil {
		return nil, err
	}
	var value any = ident.Value
	if ident.Field == "number" {
		n, err := strconv.ParseInt(ident.Value, 10, 64)
		if err != nil {
			return nil, errorf(KindNotFound, "no provisioning request with %s", ident)
		}
		value = n
	}
	// The lookup names only the unique column, so no planner can prefer an
	// index on the organisation; ownership is checked on the row.
	r, err := scanRequest(s.db.ReadRow(ctx, requestSelect+` WHERE `+col+` = $1`, value))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (r.organisationID != orgID || r.Provider != provider)) {
		return nil, errorf(KindNotFound, "no provisioning request with %s", ident)
	}
	return r, err
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

// Recent returns the newest requests of every organisation, optionally in
// one life-cycle state, for the operator console.
//
// q.Status is a life-cycle state; q.Search finds a request by its id or
// number, its smartcard, its CAS reference, or a parameter value the client
// sent (a subscription number, service code, smartcard serial number...),
// or a CA id it was resolved to; q.Before is a request number.
func (s *Service) Recent(ctx context.Context, q store.ListQuery) ([]*Request, error) {
	limit := min(max(q.Limit, 1), 500)
	number, before := int64(-1), int64(0)
	if n, err := strconv.ParseInt(q.Search, 10, 64); err == nil {
		number = n
	}
	if n, err := strconv.ParseInt(q.Before, 10, 64); err == nil {
		before = n
	}
	value, _ := json.Marshal(q.Search)
	rows, err := s.db.ReadQuery(ctx, requestSelect+` WHERE ($1 = '' OR r.life_cycle_state = $1)
		AND ($2 = '' OR r.id = $2 OR r.number = $3 OR r.smartcard_ca_id = $2 OR r.reference_number = $2 OR r.parameters LIKE $4 ESCAPE '\' OR r.client_identifiers LIKE $7 ESCAPE '\')
		AND ($5 = 0 OR r.number < $5) ORDER BY r.number DESC LIMIT $6`,
		q.Status, q.Search, number, `%"value":`+store.EscapeLike(string(value))+`%`, before, limit,
		`%=`+store.EscapeLike(strings.Trim(string(value), `"`))+`"%`)
	if err != nil {
		return nil, fmt.Errorf("recent provisioning requests: %w", err)
	}
	return collectRequests(rows)
}

// SendJobKey is the unique key of the job that sends a request to the
// CAS: the console finds a request's job by it.
func SendJobKey(requestID string) string { return "paytv.send:" + requestID }

// RequestByNumber returns a request of any organisation by its number, for
// the operator console.
func (s *Service) RequestByNumber(ctx context.Context, number int64) (*Request, error) {
	r, err := scanRequest(s.db.ReadRow(ctx, requestSelect+` WHERE r.number = $1`, number))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(KindNotFound, "no provisioning request number %d", number)
	}
	return r, err
}

// RequestByID returns a request of any organisation by its id, for the
// operator console.
func (s *Service) RequestByID(ctx context.Context, id string) (*Request, error) {
	r, err := scanRequest(s.db.ReadRow(ctx, requestSelect+` WHERE r.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(KindNotFound, "no provisioning request %s", id)
	}
	return r, err
}

// PurgeRequests removes the provisioning requests that reached COMPLETED
// or REJECTED before cutoff (the retention job calls it). A PENDING request
// is never removed.
func (s *Service) PurgeRequests(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM paytv_requests WHERE life_cycle_state <> 'PENDING' AND updated_at < $1`, micros(cutoff))
	if err != nil {
		return 0, fmt.Errorf("purge provisioning requests: %w", err)
	}
	return res.RowsAffected()
}

// OutcomeCounts counts the requests changed since a time by life-cycle
// state and error code ("REJECTED CAS_UNAVAILABLE"); a PENDING request that
// is retrying the CAS counts as "PENDING retrying".
func (s *Service) OutcomeCounts(ctx context.Context, since time.Time) (map[string]int, error) {
	return s.db.CountOutcomes(ctx, `SELECT life_cycle_state, CASE WHEN life_cycle_state = 'PENDING' AND error_description LIKE 'retrying:%'
		THEN 'retrying' ELSE COALESCE(error_code, '') END, count(*) FROM paytv_requests WHERE updated_at >= $1 GROUP BY 1, 2`, micros(since))
}

// collectRequests reads a list of requests; none is an empty list.
func collectRequests(rows *sql.Rows) ([]*Request, error) {
	out, err := store.Collect(rows, func(s store.Scanner) (*Request, error) { return scanRequest(s) })
	if out == nil && err == nil {
		out = []*Request{}
	}
	return out, err
}
