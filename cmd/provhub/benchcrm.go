package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/sealed"
	cassim "github.com/provhub/provhub/internal/sim/cas"
)

// benchCRM measures the CRM API end to end: concurrent clients call
// add_subscriptions over HTTP on a hub whose jobs send every request to an
// in-process CAS simulator.
func benchCRM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench crm", stderr)
	db := addDBFlag(fs, "")
	requests := fs.Int("requests", 20000, "add_subscriptions calls")
	clients := fs.Int("clients", 64, "concurrent HTTP clients")
	cards := fs.Int("smartcards", 1000, "smartcards the requests spread over")
	workers := fs.Int("workers", 200, "jobs run at once")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *requests <= 0 || *clients <= 0 || *cards <= 0 {
		return errors.New("--requests, --clients and --smartcards must be positive")
	}
	url, cleanup, err := benchDB(*db)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	sim, err := cassim.New(cassim.Config{})
	if err != nil {
		return err
	}
	simURL, stopSim, err := serveLoopback(sim)
	if err != nil {
		return err
	}
	defer stopSim()

	h, err := hub.New(ctx, hub.Config{SecretKey: sealed.NewKey(), Listen: "127.0.0.1:0", DatabaseURL: url, Migrate: true, MaxWorkers: *workers,
		CASURL: simURL, Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	var pending int
	if err := h.DB().Reader().QueryRowContext(ctx, `SELECT count(*) FROM paytv_requests`).Scan(&pending); err != nil || pending > 0 {
		h.Close()
		if err == nil {
			err = errors.New("the database holds provisioning requests; run the benchmark on a scratch database")
		}
		return err
	}
	services := (*requests + *cards - 1) / *cards
	ref := paytv.ReferenceData{Organisation: "BENCH", Subscriptions: []paytv.SubscriptionData{{Number: "BENCH-1"}}}
	var cardIDs []string
	for i := range *cards {
		ca := fmt.Sprintf("%010d", i)
		ref.Smartcards = append(ref.Smartcards, paytv.ItemData{SerialNumber: "SC" + ca, CAID: ca})
		cardIDs = append(cardIDs, ca)
	}
	for i := range services {
		ref.Services = append(ref.Services, paytv.ServiceData{Code: fmt.Sprintf("SVC%d", i), CAID: fmt.Sprintf("%d", 1000+i)})
	}
	if _, err := h.PayTV().Import(ctx, ref); err != nil {
		h.Close()
		return err
	}
	sim.AddDevices(cardIDs, nil)
	if err := h.PayTV().AddUser(ctx, paytv.NewUser{Organisation: "BENCH", Username: "bench", Password: "bench-password"}); err != nil {
		h.Close()
		return err
	}
	addr, err := h.Listen()
	if err != nil {
		h.Close()
		return err
	}
	defer runHub(ctx, h)()

	base := "http://" + addr + "/crmapi/rest/v2/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients}, Timeout: time.Minute}
	token, err := benchLogin(ctx, client, base)
	if err != nil {
		return err
	}

	start := time.Now()
	accepted, latencies, err := runClients(ctx, *requests, *clients, func(i int) error {
		body, _ := json.Marshal(map[string]any{"token": token,
			"subscription_identifier": map[string]string{"number": "BENCH-1"},
			"service_identifier":      map[string]string{"code": fmt.Sprintf("SVC%d", i / *cards)},
			"smartcard_identifier":    map[string]string{"serial_number": "SC" + cardIDs[i%*cards]}})
		return benchPost(ctx, client, base+"conax_web_services/provisioning_requests/add_subscriptions", body, nil)
	})
	if err != nil {
		return err
	}
	if err := waitNone(ctx, h.DB(), "requests", `SELECT count(*) FROM paytv_requests WHERE life_cycle_state = 'PENDING'`); err != nil {
		return err
	}
	completed := time.Since(start)
	counts, e2e, err := outcomes(ctx, h.DB(), `SELECT life_cycle_state, executed_at - created_at FROM paytv_requests`)
	if err != nil {
		return err
	}
	done, rejected := counts["COMPLETED"], counts["REJECTED"]
	p50, p99 := percentiles(latencies)
	c50, c99 := percentiles(e2e)
	fmt.Fprintf(stdout, "crm add_subscriptions db=%s requests=%d clients=%d smartcards=%d workers=%d\n",
		h.DB().Dialect(), *requests, *clients, *cards, *workers)
	fmt.Fprintf(stdout, "  accepted (HTTP answered, PENDING stored):  %8.0f requests/s   p50 %v  p99 %v\n",
		float64(*requests)/accepted.Seconds(), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond))
	fmt.Fprintf(stdout, "  completed through the CAS simulator:       %8.0f requests/s   p50 %v  p99 %v (accepted to executed)\n",
		float64(*requests)/completed.Seconds(), c50.Round(time.Millisecond), c99.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  outcome: %d COMPLETED, %d REJECTED\n", done, rejected)
	return nil
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)*50/100], ds[min(len(ds)-1, len(ds)*99/100)]
}

func benchLogin(ctx context.Context, client *http.Client, base string) (string, error) {
	var data struct{ Token string }
	body, _ := json.Marshal(map[string]string{"username": "bench", "password": "bench-password", "organisation": "BENCH"})
	if err := benchPost(ctx, client, base+"authentication/token", body, &data); err != nil {
		return "", err
	}
	return data.Token, nil
}

func benchPost(ctx context.Context, client *http.Client, url string, body []byte, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status struct{ Code, Description string }
		Data   json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if env.Status.Code != "OK" {
		return fmt.Errorf("%s: %s %s", url, env.Status.Code, env.Status.Description)
	}
	if data != nil {
		return json.Unmarshal(env.Data, data)
	}
	return nil
}
