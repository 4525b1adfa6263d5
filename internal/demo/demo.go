package demo

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/provhub/provhub/internal/apdu"
	"github.com/provhub/provhub/internal/cardaccount"
	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/hub"
	"github.com/provhub/provhub/internal/issuer"
	"github.com/provhub/provhub/internal/loopback"
	"github.com/provhub/provhub/internal/oauth"
	"github.com/provhub/provhub/internal/partner"
	"github.com/provhub/provhub/internal/paytv"
	"github.com/provhub/provhub/internal/sealed"
	cassim "github.com/provhub/provhub/internal/sim/cas"
	simtes "github.com/provhub/provhub/internal/sim/tes"
	simwallet "github.com/provhub/provhub/internal/sim/wallet"
	"github.com/provhub/provhub/internal/transit"
)

//go:embed demodata/crm.json
var demoCRM []byte

// The demo's fixed names.
const (
	demoIssuer  = "DEMOBANK01"
	demoKid     = "demo-key"
	demoCRMUser = "demo"
	demoCRMOrg  = "CRMDEMO"
	demoPod     = "demo"
)

// demoCard is one transit card of the sample data: an issuer card with a
// digital card on a simulated phone and a TES account.
type demoCard struct {
	consumer, card, lastDigits, se, device string
	balance                                uint32
}

// demoCards are the first run's cards.
var demoCards = []demoCard{
	{"alice", "CARD-ALICE-1", "4711", "0A11CE01", "phone-alice", 1200},
	{"alice", "CARD-ALICE-2", "4712", "0A11CE02", "watch-alice", 300},
	{"bob", "CARD-BOB-1", "8150", "0B0B0001", "phone-bob", 1000},
}

// demoSample names one run's sample data. The first run on a data folder
// has the plain names; each later run its own ("alice-r2", "CARD-BOB-1-r2",
// secure elements with the run in two hex digits): the simulators start
// empty every time, so a tour run again needs consumers and phones they
// know, and the tour deletes a consumer, whose id is then burnt. Earlier
// runs' records stay on the console.
type demoSample struct {
	Run   int `json:"run"`
	cards []demoCard
	// DeleteConsumer is the consumer the tour deletes (with her two
	// digital cards); TopUpCard, of TopUpConsumer, the card it tops up
	// with Purchase and then breaks a suspension of.
	DeleteConsumer string `json:"delete_consumer"`
	TopUpConsumer  string `json:"top_up_consumer"`
	TopUpCard      string `json:"top_up_card"`
	Purchase       string `json:"purchase"`
	// Smartcard, Subscription and Service are the CRM step's identifiers.
	Smartcard    string `json:"smartcard"`
	Subscription string `json:"subscription"`
	Service      string `json:"service"`
}

func newDemoSample(run int) demoSample {
	name := func(s string) string {
		if run <= 1 {
			return s
		}
		return fmt.Sprintf("%s-r%d", s, run)
	}
	s := demoSample{Run: run, Purchase: fmt.Sprintf("P-DEMO-%d", run), Smartcard: "S60058", Subscription: "S60058", Service: "SPORTS"}
	for _, c := range demoCards {
		if run > 1 {
			c.se = c.se[:4] + fmt.Sprintf("%02X", run%256) + c.se[6:]
		}
		c.consumer, c.card, c.device = name(c.consumer), name(c.card), name(c.device)
		s.cards = append(s.cards, c)
	}
	s.DeleteConsumer = s.cards[0].consumer
	s.TopUpConsumer, s.TopUpCard = s.cards[2].consumer, s.cards[2].card
	return s
}

// demoRunNumber counts the demo's runs on a data folder (in demo.run):
// 1 on a new folder; a folder an earlier version used (a database, no
// count) starts at 2, as its first run's consumer may be deleted.
func demoRunNumber(dir string, reused bool) (int, error) {
	path := filepath.Join(dir, "demo.run")
	last := 0
	if raw, err := os.ReadFile(path); err == nil {
		last, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
	} else if reused {
		last = 1
	}
	run := last + 1
	if err := os.WriteFile(path, []byte(strconv.Itoa(run)+"\n"), 0o600); err != nil {
		return 0, err
	}
	return run, os.Chmod(path, 0o600)
}

// ReadyLine is the demo's first line of output, for programs.
type ReadyLine struct {
	Ready bool `json:"ready"`
	// Reused is set when --data held an earlier run's database.
	Reused    bool   `json:"reused"`
	Hub       string `json:"hub"`
	Console   string `json:"console"`
	Data      string `json:"data"`
	WalletSim string `json:"wallet_sim"`
	TESSim    string `json:"tes_sim"`
	CASSim    string `json:"cas_sim"`
	Issuer    struct {
		ID             string `json:"id"`
		Kid            string `json:"kid"`
		PrivateKeyFile string `json:"private_key_file"`
	} `json:"issuer"`
	CRM struct {
		Username     string `json:"username"`
		Password     string `json:"password"`
		Organisation string `json:"organisation"`
	} `json:"crm"`
	Operator struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"operator"`
	// TES is the demo's transit entity server as a partner of the hub:
	// its id and the file holding its signing secret.
	TES struct {
		PartnerID  string `json:"partner_id"`
		SecretFile string `json:"secret_file"`
	} `json:"tes"`
	// Sample names this run's sample data, which the tour uses.
	Sample demoSample `json:"sample"`
}

// The demo's partners, registered for the demo issuer.
const (
	demoTESPartner    = "demo-tes"
	demoWalletPartner = "demo-wallet"
)

// Run is `provhub demo`: version names the build in the hub's answers.
func Run(ctx context.Context, args []string, version string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "the hub's HTTP address (127.0.0.1:0 picks a free port)")
	data := fs.String("data", "", "folder for the database and the issuer's key (default: a new temporary folder)")
	scenario := fs.Bool("scenario", false, "run the tour and print each step's outcome, then keep serving")
	logf := cliflag.Log(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	// The demo's own output is the tour: warnings only, unless the
	// --log-level given says otherwise.
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "log-level" })
	if !explicit {
		logf.Level = "warn"
	}
	log, err := logf.Logger(stderr)
	if err != nil {
		return err
	}
	// The port first: nothing is made when the demo cannot serve.
	if l, err := net.Listen("tcp", *listen); err != nil {
		return fmt.Errorf("cannot listen on %s (%w); choose another address, or --listen 127.0.0.1:0 for any free port", *listen, err)
	} else {
		l.Close()
	}
	dir := *data
	if dir == "" {
		if dir, err = os.MkdirTemp("", "provhub-demo-"); err != nil {
			return err
		}
		// A folder of our own making goes with the demo.
		defer func() {
			if err := os.RemoveAll(dir); err == nil {
				fmt.Fprintf(stdout, "removed %s (give --data DIR to keep the database and keys)\n", dir)
			}
		}()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}

	// The systems provhub drives, each on a loopback port of its own.
	cas, err := cassim.New(cassim.Config{Logger: log})
	if err != nil {
		return err
	}
	casURL, stopCAS, err := loopback.Serve(cas)
	if err != nil {
		return err
	}
	defer stopCAS()
	sims, err := loopback.StartSims(simwallet.Config{Logger: log, TaskDelay: 10 * time.Millisecond}, simtes.Config{Logger: log})
	if err != nil {
		return err
	}
	defer sims.Stop()
	wsim, tsim, walletURL, tesURL := sims.Wallet, sims.TES, sims.WalletURL, sims.TESURL

	// The secret key that seals the hub's keys lives beside the database,
	// as provhub serve makes it for a SQLite database.
	key, _, err := sealed.EnsureKeyFile(filepath.Join(dir, "provhub.db.secret"))
	if err != nil {
		return err
	}
	_, statErr := os.Stat(filepath.Join(dir, "provhub.db"))
	reused := statErr == nil
	run, err := demoRunNumber(dir, reused)
	if err != nil {
		return err
	}
	h, err := hub.New(ctx, hub.Config{Version: version, SecretKey: key, Listen: *listen, DatabaseURL: "sqlite:" + filepath.Join(dir, "provhub.db"), Migrate: true,
		Logger: log, CASURL: casURL, WalletURL: walletURL, TESURL: tesURL, Pod: demoPod})
	if err != nil {
		return err
	}
	addr, err := h.Listen()
	if err != nil {
		h.Close()
		return err
	}
	hubURL := "http://" + addr
	wsim.SetPodURL(demoPod, hubURL)
	wsim.SetHubURL(hubURL)
	stopHub := loopback.RunHub(ctx, h)
	defer func() {
		stopHub()
		wsim.Wait()
	}()

	ready := ReadyLine{Ready: true, Reused: reused, Hub: hubURL, Console: hubURL + "/console/", Data: dir, WalletSim: walletURL,
		TESSim: strings.TrimSuffix(tesURL, "/tes/devicegtwapi/1/0"), CASSim: casURL, Sample: newDemoSample(run)}
	ready.Issuer.ID, ready.Issuer.Kid, ready.Issuer.PrivateKeyFile = demoIssuer, demoKid, filepath.Join(dir, "issuer.key")
	ready.CRM.Username, ready.CRM.Organisation = demoCRMUser, demoCRMOrg
	// The TES and the wallet server call the hub as registered partners,
	// with signing secrets kept in the data folder (mode 0600).
	ready.TES.PartnerID, ready.TES.SecretFile = demoTESPartner, filepath.Join(dir, "tes-partner.secret")
	if _, err := ensureDemoPartner(ctx, h.Partners(), partner.NewPartner{ID: demoTESPartner, Role: partner.RoleTES, Issuers: []string{demoIssuer}},
		ready.TES.SecretFile); err != nil {
		return fmt.Errorf("register the TES partner: %w", err)
	}
	walletSecret, err := ensureDemoPartner(ctx, h.Partners(), partner.NewPartner{ID: demoWalletPartner, Role: partner.RoleWallet, Issuers: []string{demoIssuer}},
		filepath.Join(dir, "wallet-partner.secret"))
	if err != nil {
		return fmt.Errorf("register the wallet partner: %w", err)
	}
	wsim.SetPartner(demoWalletPartner, walletSecret)
	if ready.CRM.Password, err = demoSecret(dir, "crm-user.password"); err != nil {
		return err
	}
	if ready.Issuer.Kid, err = demoIssuerKey(ctx, h, ready.Issuer.PrivateKeyFile); err != nil {
		return fmt.Errorf("the issuer's key: %w", err)
	}
	if err := seedDemo(ctx, h, cas, wsim, tsim, ready.CRM.Password, ready.Sample); err != nil {
		return fmt.Errorf("load the sample data: %w", err)
	}
	ready.Operator.Username = "operator"
	if ready.Operator.Password, err = demoSecret(dir, "operator.password"); err != nil {
		return err
	}
	if err := h.Console().AddOperator(ctx, ready.Operator.Username, ready.Operator.Password); err != nil {
		return fmt.Errorf("add the console operator: %w", err)
	}
	line, _ := json.Marshal(ready)
	fmt.Fprintf(stdout, "%s\n", line)
	fmt.Fprint(stdout, demoTour(ready))
	if *scenario {
		if err := runScenario(ctx, ready, wsim, stdout); err != nil {
			fmt.Fprintf(stdout, "scenario stopped: %v\n", err)
		}
	}
	fmt.Fprintf(stdout, "\nprovhub demo is serving on %s; Ctrl-C stops it.\n", hubURL)
	<-ctx.Done()
	return nil
}

// demoSecret returns the password kept in dir/name (mode 0600), making it
// on first use: a demo run again on the same --data keeps its logins.
func demoSecret(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	if raw, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(raw))) >= 8 {
		return strings.TrimSpace(string(raw)), nil
	}
	pw := randomPassword()
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, os.Chmod(path, 0o600)
}

// demoIssuerKey makes sure the issuer can sign with the key in keyFile: a
// key left there by an earlier run is used again; a new one is made when
// there is none, registered under demoKid, or under a fresh kid when
// demoKid already names another key (a data folder whose key file went).
// It returns the kid.
func demoIssuerKey(ctx context.Context, h *hub.Hub, keyFile string) (string, error) {
	pubFile := strings.TrimSuffix(keyFile, ".key") + ".pub"
	public, err := os.ReadFile(pubFile)
	_, kerr := os.Stat(keyFile)
	kidFile := strings.TrimSuffix(keyFile, ".key") + ".kid"
	if err == nil && kerr == nil {
		kid := demoKid
		if raw, err := os.ReadFile(kidFile); err == nil && strings.TrimSpace(string(raw)) != "" {
			kid = strings.TrimSpace(string(raw))
		}
		if err := h.OAuth().AddClientKey(ctx, demoIssuer, kid, public); err != nil && !errors.Is(err, oauth.ErrKeyExists) {
			return "", err
		}
		return kid, nil
	}
	private, public, err := oauth.GenerateKey()
	if err != nil {
		return "", err
	}
	kid := demoKid
	err = h.OAuth().AddClientKey(ctx, demoIssuer, kid, public)
	if errors.Is(err, oauth.ErrKeyExists) {
		kid = demoKid + "-" + randomPassword()[:8]
		err = h.OAuth().AddClientKey(ctx, demoIssuer, kid, public)
	}
	if err != nil {
		return "", err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, private}, {pubFile, public}, {kidFile, []byte(kid + "\n")}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return "", err
		}
	}
	return kid, nil
}

// demoAsset returns the issuer's asset described as desc, adding it from
// content when there is none (a demo run again keeps its assets).
func demoAsset(ctx context.Context, h *hub.Hub, contentType string, content []byte, desc string) (string, error) {
	list, err := h.Assets().List(ctx, demoIssuer)
	if err != nil {
		return "", err
	}
	for _, a := range list {
		if a.Description == desc {
			return a.GUID, nil
		}
	}
	a, err := h.Assets().Add(ctx, demoIssuer, contentType, content, desc)
	if err != nil {
		return "", err
	}
	return a.GUID, nil
}

// seedDemo loads the sample data, the CRM user with password.
func seedDemo(ctx context.Context, h *hub.Hub, cas *cassim.Simulator, wsim *simwallet.Simulator, tsim *simtes.Simulator, password string, sample demoSample) error {
	// Pay-TV: reference data, the CAS's devices, a CRM user.
	var ref paytv.ReferenceData
	if err := json.Unmarshal(demoCRM, &ref); err != nil {
		return err
	}
	if _, err := h.PayTV().Import(ctx, ref); err != nil {
		return err
	}
	var cards, stbs []string
	for _, c := range ref.Smartcards {
		cards = append(cards, c.CAID)
	}
	for _, b := range ref.STBs {
		stbs = append(stbs, b.CAID)
	}
	cas.AddDevices(cards, stbs)
	if err := h.PayTV().AddUser(ctx, paytv.NewUser{Organisation: demoCRMOrg, Username: demoCRMUser, Password: password, PersonName: "Demo operator"}); err != nil {
		return err
	}

	// The issuer's terms and card art, and its OTP key.
	termsID, err := demoAsset(ctx, h, "text/plain; charset=utf-8", []byte(demoTerms), "demo terms")
	if err != nil {
		return err
	}
	otpKey, err := h.Accounts().NewOTPKey(ctx, demoIssuer)
	if err != nil {
		return err
	}
	rawOTPKey, _ := base64.StdEncoding.DecodeString(otpKey)

	// Consumers, cards, digital cards on simulated phones, TES accounts.
	// Each card is provisioned as a wallet server does it: checkCardAccount,
	// getAsset for its terms and art, provisionCard.
	by := issuer.Requestor{Type: issuer.RequestorIssuer, ID: demoIssuer}
	var seeded []string
	for i, c := range sample.cards {
		// A consumer a tour of an earlier run deleted stays deleted.
		if cons, err := h.Issuer().Consumer(ctx, demoIssuer, c.consumer); err == nil && cons.State == issuer.ConsumerDeleted {
			continue
		}
		seeded = append(seeded, c.card)
		art, err := demoAsset(ctx, h, "image/png", demoArt(i), "card art of "+demoCards[i].card)
		if err != nil {
			return err
		}
		if err := h.Issuer().RegisterCard(ctx, demoIssuer, c.card, issuer.CardInput{ConsumerID: c.consumer, CardProductID: "DEMO_TRANSIT",
			LastDigits: c.lastDigits, TermsID: &termsID, CardArt: []string{art}, SetCardArt: true}, by); err != nil {
			return err
		}
		data, _, err := h.Accounts().IssueData(ctx, demoIssuer, c.card)
		if err != nil {
			return err
		}
		req := simwallet.ProvisionRequest{IssuerID: demoIssuer, SEID: c.se, DeviceID: c.device, CardSource: "USER-INPUT",
			OpaqueCardAccountData: data, LastDigits: c.lastDigits, WalletAccountID: "wallet-" + c.consumer}
		if i == 0 {
			// The first card comes with the issuer's OTP, as an issuer
			// that sends its user a code would.
			req.OTP = cardaccount.OTP(rawOTPKey, demoIssuer, c.card, cardaccount.Step(time.Now()))
		}
		res, err := wsim.Provision(ctx, req)
		if err != nil {
			return err
		}
		if !res.OK() {
			return fmt.Errorf("provisioning %s: %s answered %d %s", c.card, res.Step, res.StatusCode, res.StatusMessage)
		}
		if card, err := h.Transit().Card(ctx, c.card); err == nil && card.State == transit.PendingPerso {
			dgis := []apdu.DGI{{ID: 0x0101, Value: []byte(c.card)}, {ID: 0x9F10, Value: []byte{byte(i), 0x01, 0x02, 0x03}}}
			if _, err := h.Transit().SubmitPersoData(ctx, demoIssuer, c.card, dgis); err != nil {
				return err
			}
		}
		if err := wsim.SetCardBalance(res.WalletCardID, c.balance); err != nil {
			return err
		}
		if err := tsim.AddAccount(simtes.Account{ID: c.card, IssuerID: demoIssuer, DeviceID: c.device, Balance: int64(c.balance)}); err != nil {
			return err
		}
	}
	if err := tsim.AddPurchase(simtes.Purchase{ID: sample.Purchase, CardAccountID: sample.TopUpCard, Amount: 500}); err != nil {
		return err
	}
	// Wait until the wallet server has personalised every card.
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range seeded {
		for {
			card, err := h.Transit().Card(ctx, id)
			if err != nil {
				return err
			}
			if card.State == transit.Active {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("card %s is still %s", id, card.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func randomPassword() string {
	var pw [9]byte
	_, _ = rand.Read(pw[:])
	return hex.EncodeToString(pw[:])
}

// ensureDemoPartner registers a signing partner for the demo, or, when the
// data folder was used before, reuses the secret kept there.
func ensureDemoPartner(ctx context.Context, r *partner.Registry, np partner.NewPartner, secretPath string) (string, error) {
	np.Signing = true
	secret, err := r.Add(ctx, np)
	switch {
	case errors.Is(err, partner.ErrExists):
		raw, rerr := os.ReadFile(secretPath)
		if rerr != nil {
			return "", fmt.Errorf("partner %s exists but its secret %s cannot be read: %w", np.ID, secretPath, rerr)
		}
		return strings.TrimSpace(string(raw)), nil
	case err != nil:
		return "", err
	}
	if err := os.WriteFile(secretPath, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, os.Chmod(secretPath, 0o600)
}
