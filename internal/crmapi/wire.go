package crmapi

import (
	"encoding/json"
	"time"

	"github.com/provhub/provhub/internal/paytv"
)

// provisioningRequest is the wire form of a request.
type provisioningRequest struct {
	ID             string  `json:"id"`
	Number         string  `json:"number"`
	Type           string  `json:"type"`
	SequenceNumber *int64  `json:"sequence_number"`
	ScheduledDate  *string `json:"scheduled_date"`
	ExecutedDate   *string `json:"executed_date"`
	Priority       string  `json:"priority"`
	// ProcessImmediately is 0 or 1, null when the call did not name it,
	// as every published example answers it (the document says Boolean).
	ProcessImmediately       *int           `json:"process_immediately"`
	LifeCycleState           string         `json:"life_cycle_state"`
	Request                  *string        `json:"request"`
	Response                 *string        `json:"response"`
	ReferenceNumber          *string        `json:"reference_number"`
	ErrorCode                *string        `json:"error_code"`
	ErrorDescription         *string        `json:"error_description"`
	ProviderErrorCode        *string        `json:"provider_error_code"`
	ProviderErrorDescription *string        `json:"provider_error_description"`
	Name                     *string        `json:"name"`
	ProcessName              *string        `json:"process_name"`
	ProcessID                *string        `json:"process_id"`
	LogInformation           logInformation `json:"log_information"`
	ParametersSet            []parameter    `json:"parameters_set"`
}

// responseFields are the names fields_set may list, in wire order.
var responseFields = []string{
	"id", "number", "type", "sequence_number", "scheduled_date", "executed_date", "priority",
	"process_immediately", "life_cycle_state", "request", "response", "reference_number",
	"error_code", "error_description", "provider_error_code", "provider_error_description",
	"name", "process_name", "process_id", "log_information", "parameters_set",
}

type logInformation struct {
	CreatedDate   string  `json:"created_date"`
	UpdatedDate   string  `json:"updated_date"`
	CreatedByUser userRef `json:"created_by_user"`
	UpdatedByUser userRef `json:"updated_by_user"`
	CreatedByUnit unitRef `json:"created_by_unit"`
	UpdatedByUnit unitRef `json:"updated_by_unit"`
}

type userRef struct {
	ID         string  `json:"id"`
	Username   string  `json:"username"`
	PersonName *string `json:"person_name"`
	Email      *string `json:"email"`
}

type unitRef struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	Description     *string `json:"description"`
	AlternativeCode *string `json:"alternative_code"`
	GroupName       *string `json:"group_name"`
	CommunityName   *string `json:"community_name"`
}

// parameter is one parameters_set entry: {"id": ..., "<name>": value}.
type parameter struct {
	ID    string
	Name  string
	Value *string
}

func (p parameter) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]*string{"id": &p.ID, p.Name: p.Value})
}

func formatDate(t time.Time) string { return t.UTC().Format(dateLayout) }

func optionalDate(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatDate(*t)
	return &s
}

func toWire(r *paytv.Request) provisioningRequest {
	user := userRef{ID: r.CreatedBy.ID, Username: r.CreatedBy.Username, PersonName: r.CreatedBy.PersonName, Email: r.CreatedBy.Email}
	unit := unitRef{ID: r.CreatedUnit.ID, Name: r.CreatedUnit.Name, Description: r.CreatedUnit.Description,
		AlternativeCode: r.CreatedUnit.AlternativeCode, GroupName: r.CreatedUnit.GroupName, CommunityName: r.CreatedUnit.CommunityName}
	w := provisioningRequest{
		ID: r.ID, Number: itoa(r.Number), Type: string(r.Type), SequenceNumber: r.SequenceNumber,
		ScheduledDate: optionalDate(&r.ScheduledAt), ExecutedDate: optionalDate(r.ExecutedAt),
		Priority: string(r.Priority), ProcessImmediately: zeroOne(r.ProcessImmediately, r.ProcessImmediatelyGiven), LifeCycleState: string(r.LifeCycleState),
		Request: r.Request, Response: r.Response, ReferenceNumber: r.ReferenceNumber,
		ErrorCode: r.ErrorCode, ErrorDescription: r.ErrorDescription,
		ProviderErrorCode: r.ProviderErrorCode, ProviderErrorDescription: r.ProviderErrorDescription,
		LogInformation: logInformation{
			CreatedDate: formatDate(r.CreatedAt), UpdatedDate: formatDate(r.UpdatedAt),
			CreatedByUser: user, UpdatedByUser: user, CreatedByUnit: unit, UpdatedByUnit: unit,
		},
		ParametersSet: make([]parameter, 0, len(r.Parameters)),
	}
	for _, p := range r.Parameters {
		w.ParametersSet = append(w.ParametersSet, parameter{ID: p.ID, Name: p.Name, Value: p.Value})
	}
	return w
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// project keeps only the fields named in fields (all when nil).
func project(r *paytv.Request, fields []string) (any, error) {
	w := toWire(r)
	if fields == nil {
		return w, nil
	}
	raw, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(fields))
	for _, f := range fields {
		out[f] = all[f]
	}
	return out, nil
}

// zeroOne is process_immediately as the published examples answer it.
func zeroOne(v, given bool) *int {
	if !given {
		return nil
	}
	n := 0
	if v {
		n = 1
	}
	return &n
}
