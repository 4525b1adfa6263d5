package paytv

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
	// Concurrent creates are written together, a few statements a batch
	// (see writeAccepts).
	clientIDs := clientIdentifiers(in)
	number, err := s.accepts.Write(ctx, accept{
		request: newRequest{ID: id, OrganisationID: sess.OrganisationID, Provider: in.Provider, Type: in.Type,
			Priority: in.Priority, ProcessImmediately: in.ProcessImmediately, ProcessImmediatelyGiven: in.ProcessImmediately || in.ProcessImmediatelyGiven,
			ScheduledAt: micros(scheduled), CreatedAt: micros(now), SubscriptionID: plan.subscriptionID, SmartcardCAID: plan.subject,
			Command: string(command), Parameters: string(params), PIN: in.PIN, UserID: sess.User.ID, UnitID: sess.Unit.ID, ClientIdentifiers: clientIDs},
		job: &engine.InsertOpts{Priority: jobPriority, RunAt: scheduled, Subject: "smartcard:" + plan.subject, UniqueKey: SendJobKey(id)},
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

// accept is a request to store PENDING and the job that will send it.
type accept struct {
	request newRequest
	job     *engine.InsertOpts
}

// writeAccepts stores accepted requests and their jobs in tx and returns
// the number drawn for each. A batch of requests costs the statements of
// one on PostgreSQL: one insert of every request, and the engine's probe
// of busy subjects and insert of every job.
func (s *Service) writeAccepts(ctx context.Context, tx *store.Tx, as []accept) ([]int64, error) {
	reqs := make([]newRequest, len(as))
	jobs := make([]engine.InsertParams, len(as))
	for i, a := range as {
		reqs[i] = a.request
		jobs[i] = engine.InsertParams{Args: SendArgs{RequestID: a.request.ID}, Opts: a.job}
	}
	numbers, err := insertRequestsTx(ctx, tx, reqs)
	if err != nil {
		return nil, err
	}
	if _, err := s.engine.InsertMany(ctx, tx, jobs); err != nil {
		return nil, err
	}
	return numbers, nil
}

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
	return listRequests(ctx, s.db, sess.OrganisationID, provider, f)
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
	r, err := readRequestWhere(ctx, s.db, col, value)
	if err == nil && (r == nil || r.organisationID != orgID || r.Provider != provider) {
		return nil, errorf(KindNotFound, "no provisioning request with %s", ident)
	}
	return r, err
}

// Recent returns the newest requests of every organisation, optionally in
// one life-cycle state, for the operator console.
//
// q.Status is a life-cycle state; q.Search finds a request by its id or
// number, its smartcard, its CAS reference, or a parameter value the client
// sent (a subscription number, service code, smartcard serial number...),
// or a CA id it was resolved to; q.Before is a request number.
func (s *Service) Recent(ctx context.Context, q store.ListQuery) ([]*Request, error) {
	return recentRequests(ctx, s.db, q, min(max(q.Limit, 1), 500))
}

// SendJobKey is the unique key of the job that sends a request to the
// CAS: the console finds a request's job by it.
func SendJobKey(requestID string) string { return "paytv.send:" + requestID }

// RequestByNumber returns a request of any organisation by its number, for
// the operator console.
func (s *Service) RequestByNumber(ctx context.Context, number int64) (*Request, error) {
	r, err := readRequestWhere(ctx, s.db, "r.number", number)
	if err == nil && r == nil {
		return nil, errorf(KindNotFound, "no provisioning request number %d", number)
	}
	return r, err
}

// RequestByID returns a request of any organisation by its id, for the
// operator console.
func (s *Service) RequestByID(ctx context.Context, id string) (*Request, error) {
	r, err := readRequestWhere(ctx, s.db, "r.id", id)
	if err == nil && r == nil {
		return nil, errorf(KindNotFound, "no provisioning request %s", id)
	}
	return r, err
}

// PurgeRequests removes the provisioning requests that reached COMPLETED
// or REJECTED before cutoff (the retention job calls it). A PENDING request
// is never removed.
func (s *Service) PurgeRequests(ctx context.Context, tx *store.Tx, cutoff time.Time) (int64, error) {
	return purgeRequestsTx(ctx, tx, micros(cutoff))
}

// OutcomeCounts counts the requests changed since a time by life-cycle
// state and error code ("REJECTED CAS_UNAVAILABLE"); a PENDING request that
// is retrying the CAS counts as "PENDING retrying".
func (s *Service) OutcomeCounts(ctx context.Context, since time.Time) (map[string]int, error) {
	return requestOutcomes(ctx, s.db, micros(since))
}
