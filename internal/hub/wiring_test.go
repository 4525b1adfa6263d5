package hub_test

import (
	"strings"
	"testing"

	"github.com/provhub/provhub/internal/asset"
	"github.com/provhub/provhub/internal/engine"
	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/retention"
	"github.com/provhub/provhub/internal/store"
	"github.com/provhub/provhub/internal/store/storetest"
	"github.com/provhub/provhub/internal/transit"
	"github.com/provhub/provhub/internal/wallet"
)

// TestWiring_NoServiceExistsWithoutItsEngine: every service that queues
// jobs is made with its engine and the engine's registry, registers its
// job kinds as it is made, and is refused without them (there is no setter
// to forget, and no nil engine to find at the first request).
func TestWiring_NoServiceExistsWithoutItsEngine(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	wc, err := wallet.NewClient(wallet.ClientConfig{BaseURL: "http://127.0.0.1:1", Pod: "wiring"})
	if err != nil {
		t.Fatal(err)
	}
	jobs := engine.NewRegistry()
	eng, err := engine.New(engine.Config{DB: db, Registry: jobs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)

	_, err = paytv.New(paytv.Config{DB: db})
	refused(t, "paytv", err)
	_, err = transit.New(transit.Config{DB: db, Wallet: wc})
	refused(t, "transit", err)
	_, err = retention.New(retention.Config{DB: db})
	refused(t, "retention", err)

	if _, err := paytv.New(paytv.Config{DB: db, Engine: eng, Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
	tr, err := transit.New(transit.Config{DB: db, Wallet: wc, Engine: eng, Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	_, err = issuer.New(issuer.Config{DB: db, Transit: tr, Assets: asset.New(db, nil)})
	refused(t, "issuer", err)
	if _, err := issuer.New(issuer.Config{DB: db, Transit: tr, Assets: asset.New(db, nil), Engine: eng, Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
	if _, err := retention.New(retention.Config{DB: db, Engine: eng, Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
	kinds := strings.Join(jobs.Kinds(), " ")
	for _, want := range []string{"paytv.send_request", "transit.wallet_task", "retention.purge"} {
		if !strings.Contains(kinds, want) {
			t.Errorf("kind %s not registered by its service (registered: %s)", want, kinds)
		}
	}
}

func refused(t *testing.T, service string, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "Config.Engine and Config.Jobs are required") {
		t.Errorf("%s without its engine: %v", service, err)
	}
}
