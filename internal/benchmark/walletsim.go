package benchmark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/wallet"
)

// WalletSim measures a wallet server's sendScript: provhub's
// simulator, or any server of api/wallet.yaml (such as a mock generated from
// the document), so the two can be compared on the same load.
func WalletSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("bench wallet-sim", stderr)
	url := fs.String("url", "http://127.0.0.1:9400", "the wallet server")
	name := fs.String("name", "", "label printed with the figures [the URL]")
	requests := fs.Int("requests", 20000, "sendScript calls")
	clients := fs.Int("clients", 32, "concurrent clients")
	ses := fs.Int("secure-elements", 1000, "secure elements the calls spread over")
	setup := fs.Bool("setup", true, "register the devices and cards through provhub's simulator admin endpoints first")
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	if *requests <= 0 || *clients <= 0 || *ses <= 0 {
		return errors.New("--requests, --clients and --secure-elements must be positive")
	}
	if *name == "" {
		*name = *url
	}
	base := strings.TrimRight(*url, "/")
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *clients}}
	seID := func(i int) string { return fmt.Sprintf("%08X", i%*ses) }
	if *setup {
		for i := range *ses {
			if err := adminPost(ctx, hc, base+"/admin/devices", map[string]string{"seId": seID(i), "deviceId": fmt.Sprintf("dev-%d", i)}); err != nil {
				return err
			}
			if err := adminPost(ctx, hc, base+"/admin/cards", map[string]string{"walletCardId": fmt.Sprintf("wc-%d", i), "seId": seID(i), "instanceAid": "A000000151535001"}); err != nil {
				return err
			}
		}
	}
	// Bodies are built before the clock starts, so the load generator spends
	// as little CPU as it can on the shared machine.
	now := time.Now().UTC().Format(time.RFC3339)
	bodies := make([][]byte, *requests)
	for i := range bodies {
		bodies[i], _ = json.Marshal(wallet.SendScriptRequest{
			RequestHeader: wallet.RequestHeader{RequestID: fmt.Sprintf("r%d", i), SessionID: "bench", GenerationDateTime: now},
			TaskID:        fmt.Sprintf("bench-%d", i), WalletCardID: fmt.Sprintf("wc-%d", i%*ses), SEID: seID(i),
			APDUCommands: []wallet.APDUCommand{{Data: "00A4040008A00000015153500100", MessageID: "1", MessageName: "select"}},
		})
	}
	var mu sync.Mutex
	codes := map[int]int{}
	elapsed, lat, err := runClients(ctx, *requests, *clients, func(i int) error {
		code, err := sendOnce(ctx, hc, base+"/sendScript", bodies[i])
		mu.Lock()
		codes[code]++
		mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	p50, p99 := percentiles(lat)
	fmt.Fprintf(stdout, "sendScript %s: %d calls, %d clients, %d secure elements: %.0f calls/s, p50 %v p99 %v, status codes %v\n",
		*name, *requests, *clients, *ses, float64(*requests)/elapsed.Seconds(), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), codes)
	return nil
}

func sendOnce(ctx context.Context, hc *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-pod", "bench")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var res wallet.HeaderOnlyResponse
	raw, err := io.ReadAll(resp.Body)
	if err == nil {
		err = json.Unmarshal(raw, &res)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("sendScript: HTTP %d: %v", resp.StatusCode, err)
	}
	return res.ResponseHeader.StatusCode, nil
}

func adminPost(ctx context.Context, hc *http.Client, url string, v any) error {
	body, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, msg)
	}
	return nil
}
