package main

import (
	"context"
	"io"
	"time"

	"github.com/provhub/provhub/internal/hub"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	db := addDBFlag(fs, defaultDB)
	migrate := fs.Bool("migrate", true, "apply pending migrations at start (false: refuse to start when the schema is behind)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long to drain requests and jobs on SIGINT/SIGTERM")
	workers := fs.Int("max-workers", 100, "jobs this instance runs at once")
	casURL := fs.String("cas-url", hub.DefaultCASURL, "address of the conditional-access system (provhub's CAS protocol; `provhub sim cas` simulates one)")
	casTimeout := fs.Duration("cas-timeout", 10*time.Second, "bound on one call to the CAS")
	tokenIdle := fs.Duration("crm-token-idle", time.Hour, "a CRM token lapses after this long without use")
	walletURL := fs.String("wallet-url", hub.DefaultWalletURL, "the wallet server (`provhub sim wallet` simulates one)")
	pod := fs.String("pod", "", "this instance's name in the wallet server's x-pod header (default: the host name)")
	tesURL := fs.String("tes-url", hub.DefaultTESURL, "the transit entity server's device gateway (`provhub sim tes` simulates one)")
	tesTimeout := fs.Duration("tes-timeout", 10*time.Second, "bound on one call to the TES")
	opTTL := fs.Duration("device-operation-ttl", 2*time.Minute, "how long a top-up, park or reader-mode loop may take")
	secureCookie := fs.Bool("console-secure-cookie", false, "mark the console's session cookie Secure (when the hub is reached over HTTPS)")
	audiences := fs.String("issuer-audience", "provhub", "comma-separated aud values an issuer's assertion may carry (one without aud is accepted too)")
	retention := fs.Duration("operation-retention", 90*24*time.Hour, "how long consumer operations are kept")
	secretFile := addSecretKeyFlag(fs)
	logf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := logf.logger(stderr)
	if err != nil {
		return err
	}
	key, err := secretKey(*secretFile, *db, stderr)
	if err != nil {
		return err
	}
	h, err := hub.New(ctx, hub.Config{
		SecretKey: key, Listen: *listen, DatabaseURL: *db, Migrate: *migrate, ShutdownTimeout: *shutdown,
		MaxWorkers: *workers, Logger: log, CASURL: *casURL, CASTimeout: *casTimeout, CRMTokenIdle: *tokenIdle,
		WalletURL: *walletURL, Pod: *pod, IssuerAudiences: splitList(*audiences), OperationRetention: *retention,
		TESURL: *tesURL, TESTimeout: *tesTimeout, DeviceOperationTTL: *opTTL, ConsoleSecureCookie: *secureCookie,
	})
	if err != nil {
		return err
	}
	return h.Run(ctx)
}
