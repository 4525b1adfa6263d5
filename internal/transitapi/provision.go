package transitapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"

	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/cardaccount"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/transit"
	"github.com/provhub/provhub/internal/wire"
)

// podHeader checks the x-pod header every wallet-server call carries (max
// 128, published); the other families have none.
func podHeader(r *http.Request) error {
	if !strings.HasPrefix(r.URL.Path, WalletPrefix) {
		return nil
	}
	pod := r.Header.Get("x-pod")
	switch {
	case pod == "":
		return missing("x-pod header")
	case len(pod) > 128:
		return badFormat("x-pod header must have at most 128 characters")
	}
	return nil
}

// accountRequest is what checkCardAccount and provisionCard share.
type accountRequest struct {
	issuerID   string
	source     cardaccount.Source
	descriptor cardaccount.Descriptor
}

// parseAccountRequest reads issuerId, cardAccountDescriptor and cardSource.
func parseAccountRequest(b body) (accountRequest, error) {
	var r accountRequest
	var err error
	if r.issuerID, err = b.String("issuerId", wire.Text{Required: true, Min: 1, Max: 16}); err != nil {
		return r, err
	}
	src, err := b.String("cardSource", wire.Text{Min: 1, Max: 16})
	if err != nil {
		return r, err
	}
	switch s := cardaccount.Source(src); s {
	case "", cardaccount.OnFile, cardaccount.UserInput, cardaccount.ClientSDK, cardaccount.ReaderMode:
		r.source = s
	default:
		return r, badFormat("cardSource must be ON-FILE, USER-INPUT, CLIENT-SDK or READER-MODE")
	}
	r.descriptor, err = parseDescriptor(b)
	return r, err
}

// parseDescriptor reads cardAccountDescriptor: an object with exactly one
// of walletCardAccountId (1 to 64) and opaqueCardAccountData (1 to 512).
func parseDescriptor(b body) (cardaccount.Descriptor, error) {
	var d cardaccount.Descriptor
	o, _, err := b.Object("cardAccountDescriptor", true)
	if err != nil {
		return d, err
	}
	if unknown := o.Unknown("walletCardAccountId", "opaqueCardAccountData"); len(unknown) > 0 {
		return d, badFormat("cardAccountDescriptor has no member %q", unknown[0])
	}
	if d.WalletCardAccountID, err = o.String("walletCardAccountId", wire.Text{Min: 1, Max: 64}); err != nil {
		return d, err
	}
	if d.OpaqueCardAccountData, err = o.String("opaqueCardAccountData", wire.Text{Min: 1, Max: cardaccount.MaxDataLength}); err != nil {
		return d, err
	}
	if d.WalletCardAccountID == "" && d.OpaqueCardAccountData == "" {
		return d, missing("cardAccountDescriptor.walletCardAccountId or cardAccountDescriptor.opaqueCardAccountData")
	}
	return d, nil
}

// resolve finds the card account a request names for the calling partner.
func (a *API) resolve(ctx context.Context, r accountRequest) (*cardaccount.Account, error) {
	if err := actFor(ctx, r.issuerID); err != nil {
		return nil, err
	}
	return a.accounts.Resolve(ctx, partner.FromContext(ctx).ID, r.issuerID, r.source, r.descriptor)
}

func (a *API) checkCardAccount(ctx context.Context, b body) (map[string]any, error) {
	r, err := parseAccountRequest(b)
	if err != nil {
		return nil, err
	}
	acct, err := a.resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	terms := acct.Profile.TermsID
	if terms == "" {
		terms = asset.NoTerms
	}
	art := acct.Profile.CardArt
	if art == nil {
		art = []string{}
	}
	return map[string]any{"termsAndConditionsId": terms, "cardArtManifest": art}, nil
}

func (a *API) getAsset(ctx context.Context, b body) (map[string]any, error) {
	guid, err := b.String("guid", wire.Text{Required: true, Min: 1, Max: 64})
	if err != nil {
		return nil, err
	}
	p := partner.FromContext(ctx)
	as, content, err := a.assets.Get(ctx, guid, p.Serves)
	if err != nil {
		return nil, err
	}
	return map[string]any{"contentType": as.ContentType, "content": base64.StdEncoding.EncodeToString(content)}, nil
}

var digitsPattern = regexp.MustCompile(`^[0-9]+$`)

// provisionInput is provisionCard's body beyond the account request.
type provisionInput struct {
	accountRequest
	walletAccountID, lastDigits, otp, seID, deviceID string
}

func parseProvision(b body) (provisionInput, error) {
	var in provisionInput
	var err error
	if in.accountRequest, err = parseAccountRequest(b); err != nil {
		return in, err
	}
	fields := []struct {
		name string
		dst  *string
		text wire.Text
	}{
		{"walletAccountId", &in.walletAccountID, wire.Text{Min: 1, Max: 64}},
		{"cardLastDigits", &in.lastDigits, wire.Text{Required: true, Min: 4, Max: 5, Pattern: digitsPattern}},
		{"issuerOtp", &in.otp, wire.Text{Min: 6, Max: 6, Pattern: digitsPattern}},
		{"seId", &in.seID, wire.Text{Required: true, Min: 1, Max: 48, Pattern: seIDPattern}},
		{"deviceId", &in.deviceID, wire.Text{Min: 1, Max: 48}},
	}
	for _, f := range fields {
		if *f.dst, err = b.String(f.name, f.text); err != nil {
			return in, err
		}
	}
	return in, nil
}

func (a *API) provisionCard(ctx context.Context, b body) (map[string]any, error) {
	in, err := parseProvision(b)
	if err != nil {
		return nil, err
	}
	acct, err := a.resolve(ctx, in.accountRequest)
	if err != nil {
		return nil, err
	}
	if err := acct.CheckWalletAccount(in.walletAccountID); err != nil {
		return nil, err
	}
	if err := a.accounts.CheckLocked(ctx, acct.IssuerID, acct.CardID); err != nil {
		return nil, err
	}
	if err := cardaccount.CheckLastDigits(acct.Profile, in.lastDigits); err != nil {
		if cardaccount.KindOf(err) == cardaccount.KindInvalidInfo {
			if rerr := a.accounts.RecordWrongProof(ctx, acct.IssuerID, acct.CardID); rerr != nil {
				return nil, rerr
			}
		}
		return nil, err
	}
	p := partner.FromContext(ctx)
	// A repeat of a call whose answer was lost finds its card and is
	// answered alike, without using up an OTP again.
	existing, err := a.svc.Card(ctx, acct.CardID)
	repeat := err == nil && existing.IssuerID == acct.IssuerID && existing.SEID == strings.ToUpper(in.seID) &&
		existing.State != transit.Deleted && existing.State != transit.Erased
	if !repeat && in.otp != "" {
		if err := a.accounts.VerifyOTP(ctx, acct.IssuerID, acct.CardID, in.otp); err != nil {
			return nil, err
		}
	}
	c, err := a.svc.ProvisionCard(ctx, transit.ProvisionInput{IssuerID: acct.IssuerID, CardAccountID: acct.CardID, SEID: in.seID, DeviceID: in.deviceID})
	if err != nil {
		return nil, err
	}
	wca, err := a.accounts.WalletCardAccountID(ctx, p.ID, acct.IssuerID, acct.CardID, in.walletAccountID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"walletCardId": c.WalletCardID, "walletCardAccountId": wca}, nil
}
