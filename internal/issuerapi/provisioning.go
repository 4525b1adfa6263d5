package issuerapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"

	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/httpapi"
	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/wire"
)

var (
	lastDigitsPattern = regexp.MustCompile(`^[0-9]{4,5}$`)
	guidPattern       = regexp.MustCompile(`^[0-9a-fA-F-]{1,64}$`)
)

// cardShows reads what a card registration says the card shows wallets:
// lastDigits, termsAndConditionsId and cardArtManifest (ours).
func cardShows(o object, in *issuer.CardInput) error {
	var err error
	if in.LastDigits, err = o.String("lastDigits", wire.Text{Pattern: lastDigitsPattern}); err != nil {
		return err
	}
	if raw := o.Raw("termsAndConditionsId"); raw != nil {
		terms := ""
		if string(raw) != "null" {
			if terms, err = o.String("termsAndConditionsId", wire.Text{Pattern: guidPattern}); err != nil {
				return err
			}
		}
		in.TermsID = &terms
	}
	if raw := o.Raw("cardArtManifest"); raw != nil {
		in.SetCardArt = true
		if string(raw) != "null" {
			if err := json.Unmarshal(raw, &in.CardArt); err != nil {
				return bad("cardArtManifest must be an array of asset GUIDs")
			}
			for _, g := range in.CardArt {
				if !guidPattern.MatchString(g) {
					return bad("cardArtManifest entries must match %s", guidPattern)
				}
			}
		}
	}
	return nil
}

type provisioningDataJSON struct {
	OpaqueCardAccountData string `json:"opaqueCardAccountData"`
	ExpiresAt             string `json:"expiresAt"`
}

func (a *API) provisioningData(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	cardID := r.PathValue("cardId")
	if err := checkID("cardId", cardID, cardIDPattern); err != nil {
		return err
	}
	if _, err := readObject(r, false, true); err != nil {
		return err
	}
	data, exp, err := a.accounts.IssueData(ctx, c.issuerID, cardID)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, provisioningDataJSON{OpaqueCardAccountData: data, ExpiresAt: timestamp(exp)})
	return nil
}

type assetJSON struct {
	GUID        string `json:"guid"`
	Kind        string `json:"kind"`
	ContentType string `json:"contentType"`
	Size        int    `json:"size"`
	SHA256      string `json:"sha256"`
	Description string `json:"description,omitempty"`
	CreatedAt   string `json:"creationTime"`
}

func assetOut(as asset.Asset) assetJSON {
	return assetJSON{GUID: as.GUID, Kind: string(as.Kind), ContentType: as.ContentType, Size: as.Size, SHA256: as.SHA256,
		Description: as.Description, CreatedAt: timestamp(as.CreatedAt)}
}

var descriptionPattern = regexp.MustCompile(`^[^\x00-\x1f\x7f]{1,128}$`)

// addAsset stores the body as an asset of the issuer, with the body's
// Content-Type; ?description= names it.
func (a *API) addAsset(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	if err := onlyQuery(q, "description"); err != nil {
		return err
	}
	desc := q.Get("description")
	if desc != "" && !descriptionPattern.MatchString(desc) {
		return bad("description has 1 to 128 printable characters")
	}
	content, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return bad("the asset is larger than %d bytes", asset.MaxSize)
	case err != nil:
		return bad("the body is unreadable")
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return bad("Content-Type is required: image/png, image/jpeg, text/plain, text/html or application/pdf")
	}
	as, err := a.assets.Add(ctx, c.issuerID, ct, content, desc)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, assetOut(*as))
	return nil
}

func (a *API) listAssets(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	if err := onlyQuery(r.URL.Query()); err != nil {
		return err
	}
	list, err := a.assets.List(ctx, c.issuerID)
	if err != nil {
		return err
	}
	out := struct {
		Assets []assetJSON `json:"assets"`
	}{Assets: []assetJSON{}}
	for _, as := range list {
		out.Assets = append(out.Assets, assetOut(as))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) assetInfo(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	guid := r.PathValue("guid")
	if err := checkID("guid", guid, guidPattern); err != nil {
		return err
	}
	as, err := a.assets.Info(ctx, c.issuerID, guid)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, assetOut(*as))
	return nil
}

func (a *API) removeAsset(ctx context.Context, w http.ResponseWriter, r *http.Request, c caller) error {
	guid := r.PathValue("guid")
	if err := checkID("guid", guid, guidPattern); err != nil {
		return err
	}
	if err := a.assets.Remove(ctx, c.issuerID, guid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
