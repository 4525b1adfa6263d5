package hub

import "time"

// DefaultCASURL, DefaultWalletURL and DefaultTESURL are where `provhub sim
// cas`, `provhub sim wallet` and `provhub sim tes` listen by default.
const (
	DefaultCASURL    = "http://127.0.0.1:9300"
	DefaultWalletURL = "http://127.0.0.1:9400"
	DefaultTESURL    = "http://127.0.0.1:9500/tes/devicegtwapi/1/0"
)

// Defaults is the hub's configuration with every setting at its default:
// the one place the defaults live. New takes a zero setting from it, and
// `provhub serve` shows it as its flags' defaults (the README's table is
// checked against those flags). Migrate, a yes or no, is left to the
// caller: the serve command migrates unless told not to.
func Defaults() Config {
	return Config{
		Listen:                   "127.0.0.1:8080",
		ShutdownTimeout:          30 * time.Second,
		MaxWorkers:               100,
		CASURL:                   DefaultCASURL,
		CASTimeout:               10 * time.Second,
		CASRetryFor:              10 * time.Minute,
		WalletRetryFor:           10 * time.Minute,
		TESRetryFor:              2 * time.Second,
		CRMTokenIdle:             time.Hour,
		WalletURL:                DefaultWalletURL,
		WalletTimeout:            10 * time.Second,
		WalletPoll:               100 * time.Millisecond,
		TESURL:                   DefaultTESURL,
		TESTimeout:               10 * time.Second,
		DeviceOperationTTL:       2 * time.Minute,
		DeviceOperationsPerSE:    10,
		IssuerAudiences:          []string{"provhub"},
		OperationRetention:       90 * 24 * time.Hour,
		DeviceOperationRetention: 30 * 24 * time.Hour,
		CRMRequestRetention:      180 * 24 * time.Hour,
		ConsoleActionRetention:   365 * 24 * time.Hour,
	}
}

// withDefaults returns c with every zero setting taken from Defaults.
func (c Config) withDefaults() Config {
	d := Defaults()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fillString := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	fill(&c.ShutdownTimeout, d.ShutdownTimeout)
	fill(&c.CASTimeout, d.CASTimeout)
	fill(&c.CASRetryFor, d.CASRetryFor)
	fill(&c.WalletRetryFor, d.WalletRetryFor)
	fill(&c.TESRetryFor, d.TESRetryFor)
	fill(&c.CRMTokenIdle, d.CRMTokenIdle)
	fill(&c.WalletTimeout, d.WalletTimeout)
	fill(&c.WalletPoll, d.WalletPoll)
	fill(&c.TESTimeout, d.TESTimeout)
	fill(&c.DeviceOperationTTL, d.DeviceOperationTTL)
	fill(&c.OperationRetention, d.OperationRetention)
	fill(&c.DeviceOperationRetention, d.DeviceOperationRetention)
	fill(&c.CRMRequestRetention, d.CRMRequestRetention)
	fill(&c.ConsoleActionRetention, d.ConsoleActionRetention)
	// An empty address would listen on every interface at a random port.
	fillString(&c.Listen, d.Listen)
	fillString(&c.CASURL, d.CASURL)
	fillString(&c.WalletURL, d.WalletURL)
	fillString(&c.TESURL, d.TESURL)
	if c.MaxWorkers <= 0 {
		c.MaxWorkers = d.MaxWorkers
	}
	if c.DeviceOperationsPerSE <= 0 {
		c.DeviceOperationsPerSE = d.DeviceOperationsPerSE
	}
	if len(c.IssuerAudiences) == 0 {
		c.IssuerAudiences = d.IssuerAudiences
	}
	return c
}

// pollSchedule is the wait before each getTaskStatus poll of a wallet
// task: first, then 2, 5, 10 and 20 times it, then every 50 times it.
func pollSchedule(first time.Duration) []time.Duration {
	out := make([]time.Duration, 0, 6)
	for _, k := range []time.Duration{1, 2, 5, 10, 20, 50} {
		out = append(out, k*first)
	}
	return out
}
