package paytv

import (
	"context"

	"github.com/provhub/provhub/internal/auth"
	"github.com/provhub/provhub/internal/cas"
)

// plan is a request resolved against the reference data.
type plan struct {
	subscriptionID string
	subject        string // the smartcard CA id whose queue the request joins
	command        cas.Command
	params         []Parameter
}

// param adds one entry of the request's parameters_set.
func (p *plan) param(name string, value *string) {
	p.params = append(p.params, Parameter{ID: auth.NewID(), Name: name, Value: value})
}

// planner resolves one request type's input into p (whose subscription,
// when the input names one, is already resolved).
type planner func(ctx context.Context, q *lookup, in CreateInput, p *plan) error

// planners are the request types this API creates, one planner each.
var planners = map[RequestType]planner{
	TypeAddSubscriptions:     planSubscriptions,
	TypeCancelSubscriptions:  planSubscriptions,
	TypeCreatePairing:        planPairing,
	TypeAddToExistingPairing: planPairing,
	TypeResetPINToDefault:    planPINReset,
	TypeResetPINToGivenValue: planPINReset,
}

// needsSubscription lists the types whose request belongs to a subscription.
var needsSubscription = map[RequestType]bool{
	TypeAddSubscriptions: true, TypeCancelSubscriptions: true, TypeResetPINToDefault: true, TypeResetPINToGivenValue: true,
}

// plan resolves a request: its subscription first (every type checks a
// subscription it names), then the type's own planner.
func (s *Service) plan(ctx context.Context, orgID string, in CreateInput) (*plan, error) {
	q := newLookup(s.db, orgID)
	if in.Type == TypeAddSubscriptions || in.Type == TypeCancelSubscriptions {
		// The three records such a request names, read in one round trip.
		if err := q.prefetch(ctx, in.Subscription, in.Service, in.Smartcard); err != nil {
			return nil, err
		}
	}
	p := &plan{}
	if in.Subscription != nil {
		id, state, err := q.subscription(ctx, *in.Subscription)
		if err != nil {
			return nil, err
		}
		if state != "ACTIVE" {
			return nil, errorf(KindNotAllowed, "subscription %s is %s; requests need an ACTIVE subscription", in.Subscription, state)
		}
		p.subscriptionID = id
	} else if needsSubscription[in.Type] {
		return nil, errorf(KindMissing, "subscription_identifier is required")
	}
	planType, ok := planners[in.Type]
	if !ok {
		return nil, errorf(KindInvalid, "provisioning request type %q cannot be created through this API", in.Type)
	}
	if err := planType(ctx, q, in, p); err != nil {
		return nil, err
	}
	return p, nil
}

// planSubscriptions: ADD_SUBSCRIPTIONS and CANCEL_SUBSCRIPTIONS, one
// service on one smartcard.
func planSubscriptions(ctx context.Context, q *lookup, in CreateInput, p *plan) error {
	if in.Service == nil || in.Smartcard == nil {
		return errorf(KindMissing, "service_identifier and smartcard_identifier are required")
	}
	svcCA, err := q.service(ctx, *in.Service)
	if err != nil {
		return err
	}
	card, err := q.item(ctx, "smartcard", *in.Smartcard, "smartcard_identifier")
	if err != nil {
		return err
	}
	command := cas.CmdAddSubscriptions
	if in.Type == TypeCancelSubscriptions {
		command = cas.CmdCancelSubscriptions
	}
	p.subject = card.caID
	p.command = cas.Command{Command: command, SmartcardCAID: card.caID, ServiceCAIDs: []string{svcCA}}
	p.param("service_ca_id", &svcCA)
	p.param("smartcard_ca_id", &card.caID)
	p.param("sub_provisioning_distribution_id", card.distribution)
	return nil
}

// planPairing: CREATE_PAIRING of smartcards and STBs, or
// ADD_TO_EXISTING_PAIRING of more to a smartcard's pairing.
func planPairing(ctx context.Context, q *lookup, in CreateInput, p *plan) error {
	var existing *item
	if in.Type == TypeAddToExistingPairing {
		if in.Smartcard == nil {
			return errorf(KindMissing, "smartcard_identifier is required")
		}
		if len(in.SmartcardSet)+len(in.STBSet) == 0 {
			return errorf(KindMissing, "smartcard_set or stb_set is required")
		}
		c, err := q.item(ctx, "smartcard", *in.Smartcard, "smartcard_identifier")
		if err != nil {
			return err
		}
		existing = c
	} else if len(in.SmartcardSet) == 0 || len(in.STBSet) == 0 {
		return errorf(KindMissing, "smartcard_set and stb_set are required")
	}
	cards, err := q.itemsByCAID(ctx, "smartcard", in.SmartcardSet)
	if err != nil {
		return err
	}
	stbs, err := q.itemsByCAID(ctx, "stb", in.STBSet)
	if err != nil {
		return err
	}
	if existing != nil {
		p.subject = existing.caID
		p.command = cas.Command{Command: cas.CmdAddToPairing, SmartcardCAID: existing.caID}
		p.param("existing_smartcard_ca_id", &existing.caID)
	} else {
		p.subject = cards[0].caID
		p.command = cas.Command{Command: cas.CmdCreatePairing}
	}
	for _, c := range cards {
		p.command.SmartcardCAIDs = append(p.command.SmartcardCAIDs, c.caID)
		p.param("smartcard_ca_id", &c.caID)
		p.param("smartcard_sub_provisioning_distribution_id", c.distribution)
	}
	for _, b := range stbs {
		p.command.STBCAIDs = append(p.command.STBCAIDs, b.caID)
		p.param("stb_ca_id", &b.caID)
		// The CRM spells this parameter so.
		p.param("stb_sub_provisioning_distributor_id", b.distribution)
	}
	return nil
}

// planPINReset: RESET_PIN_TO_DEFAULT_VALUE, or RESET_PIN_TO_GIVEN_VALUE
// with a four-digit PIN that is never shown.
func planPINReset(ctx context.Context, q *lookup, in CreateInput, p *plan) error {
	if in.Smartcard == nil {
		return errorf(KindMissing, "smartcard_identifier is required")
	}
	card, err := q.item(ctx, "smartcard", *in.Smartcard, "smartcard_identifier")
	if err != nil {
		return err
	}
	p.subject = card.caID
	p.command = cas.Command{Command: cas.CmdResetPIN, SmartcardCAID: card.caID}
	p.param("smartcard_ca_id", &card.caID)
	p.param("smartcard_sub_provisioning_distribution_id", card.distribution)
	if in.Type == TypeResetPINToGivenValue {
		if in.PIN == "" {
			return errorf(KindMissing, "pin is required")
		}
		if !cas.ValidPIN(in.PIN) {
			return errorf(KindInvalid, "pin must be four digits")
		}
		p.param("ca_pin", nil) // never shown
	} else if in.PIN != "" {
		return errorf(KindInvalid, "pin is not a parameter of reset_pin_to_default_value")
	}
	return nil
}
