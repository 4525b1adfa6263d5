package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// AccessTokenWithKeyFile is an issuer's side of the token endpoint: it signs
// a five-minute assertion with the private key in keyFile (PEM) and
// exchanges it at hubURL's token endpoint for an access token and its
// lifetime in seconds. The issuer command and the demo's tour use it.
func AccessTokenWithKeyFile(ctx context.Context, hubURL, id, kid, keyFile, aud string) (string, int, error) {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return "", 0, err
	}
	key, err := ParsePrivateKey(raw)
	if err != nil {
		return "", 0, err
	}
	now := time.Now()
	assertion, err := SignAssertion(key, Assertion{IssuerID: id, Kid: kid, Audience: aud, Expires: now.Add(5 * time.Minute), IssuedAt: now})
	if err != nil {
		return "", 0, err
	}
	form := url.Values{"grant_type": {GrantType}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(hubURL, "/")+"/authz/v1/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("call the token endpoint: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", 0, fmt.Errorf("token endpoint answered HTTP %d with no JSON", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		return "", 0, errors.New("token refused: " + strings.TrimSpace(out.Error+" "+out.Description))
	}
	return out.AccessToken, out.ExpiresIn, nil
}
