package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/provhub/provhub/internal/cliflag"
	"github.com/provhub/provhub/internal/hub"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cliflag.NewFlagSet("serve", stderr)
	d := hub.Defaults() // every default in one place
	listen := fs.String("listen", d.Listen, "HTTP listen address")
	db := cliflag.DB(fs, defaultDB)
	migrate := fs.Bool("migrate", true, "apply pending migrations at start (false: refuse to start when the schema is behind)")
	shutdown := fs.Duration("shutdown-timeout", d.ShutdownTimeout, "how long to drain requests and jobs on SIGINT/SIGTERM")
	workers := fs.Int("max-workers", d.MaxWorkers, "jobs this instance runs at once")
	casURL := fs.String("cas-url", d.CASURL, "address of the conditional-access system (provhub's CAS protocol; \"provhub sim cas\" simulates one)")
	casTimeout := fs.Duration("cas-timeout", d.CASTimeout, "bound on one call to the CAS")
	casRetryFor := fs.Duration("cas-retry-for", d.CASRetryFor, "how long a provisioning request keeps retrying an unavailable CAS, from its first failure, before it is REJECTED CAS_UNAVAILABLE")
	walletRetryFor := fs.Duration("wallet-retry-for", d.WalletRetryFor, "how long a wallet task keeps retrying an unavailable or busy wallet server, from its first failure, before it is FAILED")
	tokenIdle := fs.Duration("crm-token-idle", d.CRMTokenIdle, "a CRM token lapses after this long without use")
	walletURL := fs.String("wallet-url", d.WalletURL, "the wallet server (\"provhub sim wallet\" simulates one)")
	walletTimeout := fs.Duration("wallet-timeout", d.WalletTimeout, "bound on one call to the wallet server")
	walletPoll := fs.Duration("wallet-poll", d.WalletPoll, "the longest wait before a wallet task's first getTaskStatus poll (the hub polls sooner while tasks of the operation end sooner); later waits grow from it (x2, x5, x10, x20, then every x50)")
	pod := fs.String("pod", "", "this instance's name in the wallet server's x-pod header (default: the host name)")
	tesURL := fs.String("tes-url", d.TESURL, "the transit entity server's device gateway (\"provhub sim tes\" simulates one)")
	tesTimeout := fs.Duration("tes-timeout", d.TESTimeout, "bound on one call to the TES")
	tesRetryFor := fs.Duration("tes-retry-for", d.TESRetryFor, "how long one step of a top-up, park or reader-mode loop keeps asking an unavailable TES before the device is told to repeat it (the loop rides out a TES outage until --device-operation-ttl)")
	opTTL := fs.Duration("device-operation-ttl", d.DeviceOperationTTL, "how long a top-up, park or reader-mode loop may take (and so how long it rides out a TES outage)")
	opsPerSE := fs.Int("device-operations-per-se", d.DeviceOperationsPerSE, "top-up, park and reader-mode operations one secure element may start in 10 minutes (more are refused with 321)")
	secureCookie := fs.Bool("console-secure-cookie", false, "mark the console's session cookie Secure (when the hub is reached over HTTPS)")
	audiences := fs.String("issuer-audience", strings.Join(d.IssuerAudiences, ","), "comma-separated aud values an issuer's assertion may carry (one without aud is accepted too)")
	retention := fs.Duration("operation-retention", d.OperationRetention, "how long consumer operations are kept")
	deviceRetention := fs.Duration("device-operation-retention", d.DeviceOperationRetention, "how long ended top-up, park and reader-mode operations (with their relay steps) are kept")
	crmRetention := fs.Duration("crm-request-retention", d.CRMRequestRetention, "how long COMPLETED and REJECTED provisioning requests are kept")
	actionRetention := fs.Duration("console-action-retention", d.ConsoleActionRetention, "how long operators' recorded console actions are kept")
	secretFile := addSecretKeyFlag(fs)
	partnerListen := fs.String("partner-listen", "", "serve the partner-facing routes (TES, wallet-server and device calls) on this address only, apart from the console and the northbound APIs")
	metricsListen := fs.String("metrics-listen", "", "serve /metrics on this address only (not on --listen)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) of the hub: every listener speaks HTTPS")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	clientCA := fs.String("client-ca", "", "PEM CA certificates that partners' client certificates must chain to (mutual TLS; with --tls-cert)")
	logf := cliflag.Log(fs)
	if err := cliflag.Parse(fs, args); err != nil {
		return err
	}
	log, err := logf.Logger(stderr)
	if err != nil {
		return err
	}
	key, err := secretKey(*secretFile, *db, stderr)
	if err != nil {
		return err
	}
	tlsConfig, err := serverTLS(*tlsCert, *tlsKey, *clientCA)
	if err != nil {
		return err
	}
	h, err := hub.New(ctx, hub.Config{Version: versionString(),
		CASRetryFor: *casRetryFor, WalletRetryFor: *walletRetryFor, TESRetryFor: *tesRetryFor,
		DeviceOperationRetention: *deviceRetention, CRMRequestRetention: *crmRetention, ConsoleActionRetention: *actionRetention,
		SecretKey: key, PartnerListen: *partnerListen, MetricsListen: *metricsListen, TLS: tlsConfig, Listen: *listen, DatabaseURL: *db, Migrate: *migrate, ShutdownTimeout: *shutdown,
		MaxWorkers: *workers, Logger: log, CASURL: *casURL, CASTimeout: *casTimeout, CRMTokenIdle: *tokenIdle,
		WalletURL: *walletURL, WalletTimeout: *walletTimeout, WalletPoll: *walletPoll, Pod: *pod, IssuerAudiences: splitList(*audiences), OperationRetention: *retention,
		TESURL: *tesURL, TESTimeout: *tesTimeout, DeviceOperationTTL: *opTTL, DeviceOperationsPerSE: *opsPerSE, ConsoleSecureCookie: *secureCookie,
	})
	if err != nil {
		return err
	}
	return h.Run(ctx)
}

// serverTLS loads the hub's certificate and, when given, the CAs that
// partners' client certificates must chain to.
func serverTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "" && caFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("--tls-cert and --tls-key go together (and --client-ca needs them)")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert and --tls-key: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		raw, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("--client-ca %s holds no PEM certificate", caFile)
		}
		c.ClientCAs = pool
	}
	return c, nil
}
