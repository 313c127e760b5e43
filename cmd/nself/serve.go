package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/certs"
	"github.com/nself/nself/internal/password"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/services"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// serveMemoryLimit is the server's soft memory limit unless GOMEMLIMIT is
// set: room for the password hashes allowed at once (64 MiB each), and
// 64 MiB for the rest of the server, whose heap is a few tens of MB.
const serveMemoryLimit = password.MaxConcurrent*password.HashMemory + 64<<20

func (a *app) serveCommand() *cobra.Command {
	var addr, tlsAddr, acmeDir, acmeEmail, certDir, upstreamURL, pprofAddr string
	var grace, drain, recheck, usageEvery, reconcileEvery, certReload, mailEvery, usageFlush time.Duration
	var sweep orphanSweep
	var retry storageRetry
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the web portal, the tenant API and the admin console",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The background work (mail, sweeps, checks) ends with the
			// server, also when it could not start.
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			if a.cfg.BillingEnabled {
				// Billing fails closed: without the webhook secret no
				// event could be trusted, so the server does not start.
				if err := a.cfg.RequireStripeKeys(); err != nil {
					return err
				}
				if err := a.billingConfig().Validate(); err != nil {
					return err
				}
			}
			logs := newLogBuffer(a.Err, 50*time.Millisecond)
			defer logs.Close()
			log := slog.New(slog.NewTextHandler(logs, nil))
			if os.Getenv("GOGC") == "" {
				// The server keeps little live memory (the tenant cache, pools)
				// and allocates fast per request: collecting at 4x the live heap
				// instead of 2x spends a fifth less CPU on garbage collection
				// under load, for a few more megabytes. GOGC and GOMEMLIMIT in
				// the environment still decide when set.
				debug.SetGCPercent(400)
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				// A password hash allocates 64 MiB and leaves it as garbage;
				// at 4x the live heap the collector let a burst of 100
				// sign-ins take the process to 836 MB. The soft limit makes
				// it collect, and hand memory back, as the total nears it.
				debug.SetMemoryLimit(serveMemoryLimit)
			}
			// TLS is checked before anything starts: a wrong certificate
			// file is a one-line error, not a server that fails handshakes.
			tlsServe, err := a.tlsServing(cmd, log, tlsAddr, acmeDir, acmeEmail, certDir)
			if err != nil {
				return err
			}
			upstream, err := a.upstream(upstreamURL)
			if err != nil {
				return err
			}
			db, err := a.database(ctx)
			if err != nil {
				return err
			}
			key := []byte(a.cfg.SessionSecret)
			if len(key) == 0 {
				// Sessions then last only as long as this process, and other
				// processes would not accept them.
				key = make([]byte, 32)
				rand.Read(key)
				log.Warn("SESSION_SECRET is not set: using a random key; sessions end when the server restarts")
			}
			// Exports are built in a private folder of this server's own.
			exportDir := ""
			if a.cfg.MinioEndpoint != "" {
				if exportDir, err = spoolDir(a.cfg.ExportSpoolDir); err != nil {
					return err
				}
			}
			if a.cfg.MinioEndpoint == "" {
				log.Warn("MINIO_ENDPOINT is not set: tenants' logos and data exports are off")
			}
			scfg := a.servicesConfig(log, exportDir)
			if !a.cfg.BillingEnabled {
				scfg.Stripe = nil
			}
			svc, err := services.New(db, scfg)
			if err != nil {
				return err
			}
			a.svc = svc
			// The caches follow the database; exports still running when
			// the server stops end as failed.
			if err := svc.Start(ctx, 0); err != nil {
				return err
			}
			defer svc.Close()
			s := svc.Server(web.Config{
				BaseDomain:         string(a.cfg.BaseDomain),
				AdminHost:          string(a.cfg.AdminHost),
				RoutingMethod:      string(a.cfg.RoutingMethod),
				TrustedProxies:     a.cfg.TrustedProxies,
				SingleTenant:       !a.cfg.MultiTenancyEnabled,
				CustomDomainsOff:   !a.cfg.CustomDomainsEnabled,
				Secure:             a.cfg.PublicScheme == "https",
				PublicPort:         int(a.cfg.PublicPort),
				SessionKey:         key,
				PreviousSessionKey: []byte(a.cfg.SessionSecretPrevious),
				InternalToken:      a.cfg.InternalServiceToken,
				QueryTimeout:       time.Duration(a.cfg.DatabaseRequestTimeout),
				ShutdownDrain:      a.shutdownDrain(cmd, drain),
				Upstream:           upstream,
			})
			if err := s.CheckUpstreamPaths(upstream.Paths); err != nil {
				return err
			}
			// Single sign-on and two-factor sign-in are on when their keys
			// are set.
			if svc.SSO == nil {
				log.Warn("single sign-on is off: set SSO_SECRET_KEY (or SESSION_SECRET) so tenants' client secrets can be stored")
			}
			if svc.TwoFactor == nil {
				log.Warn("TOTP_ENCRYPTION_KEY is not set: two-factor authentication is off")
			}
			if svc.Domains != nil && a.cfg.CustomDomainsEnabled && !a.cfg.RequireDomainVerification {
				log.Warn("TENANT_REQUIRE_DOMAIN_VERIFICATION=false: custom domains route before their owner is verified; certificates are still issued for verified domains only")
			}
			if a.cfg.CustomDomainsEnabled && recheck > 0 {
				go recheckDomains(ctx, log, svc.DomainAdmin, svc.Verifier, recheck)
			}
			// Mail is composed with the looks and logos the pages use, and
			// sent from the outbox by every server process: a request
			// records its mail and never waits on SMTP.
			if svc.Sender == nil {
				log.Warn("SMTP_HOST is not set: mail waits in the outbox until a mail server is configured")
			} else if mailEvery > 0 {
				// The mail in hand when the server stops is sent and marked
				// before the process ends.
				mailDone := runMailSender(ctx, svc.Sender, mailEvery)
				defer func() { <-mailDone }()
			}
			meterCtx, stopMeter := context.WithCancel(context.WithoutCancel(ctx))
			meterDone := make(chan struct{})
			go func() {
				defer close(meterDone)
				svc.Meter.Run(meterCtx, usageFlush)
			}()
			// The meter's last flush hands back this process's blocks and
			// writes its counts once the server has stopped.
			defer func() { stopMeter(); <-meterDone }()
			if usageEvery > 0 {
				go sampleStorage(ctx, log, svc.BillingStore, a.sizer(log), usageEvery)
			}
			sweep.start(ctx, a, db, log)
			// Deleted tenants' files: removed when the console deletes a
			// tenant, and tried again here until they are gone.
			if svc.Storage != nil {
				retry.start(ctx, svc.Storage, log)
			}
			if svc.Billing != nil && reconcileEvery > 0 {
				go reconcileBilling(ctx, log, svc.Billing, reconcileEvery)
			}
			if tlsServe != nil {
				s.TLS = &web.TLSServing{Addr: tlsServe.addr, Wildcard: tlsServe.wildcard,
					Manager: certs.CertManager(s.TLSPolicy(), tlsServe.acme)}
				if tlsServe.wildcard != nil {
					// Renewing the certificate replaces its files: they are
					// read again when they change, and at once on SIGHUP.
					hup := make(chan os.Signal, 1)
					signal.Notify(hup, syscall.SIGHUP)
					defer signal.Stop(hup)
					go watchWildcard(ctx, log, tlsServe.wildcard, certReload, hup)
				}
			}
			if pprofAddr != "" {
				if err := servePprof(ctx, log, pprofAddr); err != nil {
					return err
				}
			}
			if upstream.URL != nil {
				log.Info("gateway", "upstream", upstream.URL.Redacted(), "paths", strings.Join(upstream.Paths, ","), "auth", string(a.cfg.Upstream.Auth))
			}
			err = s.Serve(ctx, addr, grace, func(l net.Addr) {
				log.Info("serving", "addr", l.String(),
					"portal", a.cfg.TenantURL("SLUG"), "admin", a.cfg.AdminURL())
				fmt.Fprintf(a.Out, "✓ Serving on http://%s (tenants at %s, admin at %s)\n", l, a.cfg.TenantURL("<slug>"), a.cfg.AdminURL())
			})
			stop()
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().DurationVar(&grace, "shutdown-grace", 30*time.Second, "how long requests in flight may take to finish on shutdown")
	cmd.Flags().DurationVar(&drain, "shutdown-drain", 5*time.Second, "how long to keep serving after SIGTERM with /readyz answering 503, before closing the listener (default: SHUTDOWN_DRAIN)")
	cmd.Flags().DurationVar(&recheck, "domain-recheck", time.Hour, "how often verified custom domains are checked again (0: never)")
	cmd.Flags().DurationVar(&usageEvery, "storage-sample", time.Hour, "how often each tenant's stored bytes are measured for usage (0: never)")
	cmd.Flags().DurationVar(&reconcileEvery, "billing-reconcile", 6*time.Hour, "how often subscriptions are compared with Stripe's (0: never)")
	cmd.Flags().DurationVar(&usageFlush, "usage-flush", postgres.DefaultFlushEvery, "how often API request counts are written to the database, in one transaction per 500 tenants (a crash loses at most this long's counts)")
	cmd.Flags().DurationVar(&mailEvery, "mail-every", 5*time.Minute, "the longest the mail sender sleeps between checks of the outbox; it wakes at once when mail is queued (a notice from the database) and when a retry is due, so this only catches mail queued without a notice (0: this process sends none)")
	sweep.flags(cmd)
	retry.flags(cmd)
	cmd.Flags().StringVar(&tlsAddr, "tls-addr", "", "also serve HTTPS here (e.g. :443), with certificates obtained over ACME and the wildcard certificate (default: TLS_ADDR)")
	cmd.Flags().StringVar(&acmeDir, "acme-directory", "", "ACME directory URL (default: ACME_DIRECTORY, else Let's Encrypt)")
	cmd.Flags().StringVar(&acmeEmail, "acme-email", "", "contact email for the ACME account (default: ACME_EMAIL)")
	cmd.Flags().StringVar(&certDir, "cert-dir", "", "folder for certificates and the ACME account key (default: TLS_CERT_DIR)")
	cmd.Flags().DurationVar(&certReload, "cert-reload", time.Minute, "how often the wildcard certificate's files are checked for a renewal (0: only on SIGHUP)")
	cmd.Flags().StringVar(&upstreamURL, "upstream", "", "proxy tenants' UPSTREAM_PATHS to this application (default: UPSTREAM_URL)")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off by default, and never on a public address")
	return cmd
}

// servePprof serves the profiler on its own listener, apart from the
// portal's routes, until ctx ends.
func servePprof(ctx context.Context, log *slog.Logger, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s for the profiler: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go srv.Serve(ln)
	log.Info("profiler", "addr", ln.Addr().String())
	return nil
}

// shutdownDrain is the drain period: the flag when given, else
// SHUTDOWN_DRAIN.
func (a *app) shutdownDrain(cmd *cobra.Command, flag time.Duration) time.Duration {
	if cmd.Flags().Changed("shutdown-drain") {
		return flag
	}
	return time.Duration(a.cfg.ShutdownDrain)
}

// tlsSettings is how `nself serve` terminates TLS.
type tlsSettings struct {
	addr     string
	acme     certs.ACMEConfig
	wildcard *certs.WildcardCertificate
}

// tlsServing reads the TLS flags, each falling back on its setting, and
// loads the wildcard certificate; nil when TLS is terminated elsewhere.
func (a *app) tlsServing(cmd *cobra.Command, log *slog.Logger, addr, acmeDir, acmeEmail, certDir string) (*tlsSettings, error) {
	or := func(flag, value, setting string) string {
		if cmd.Flags().Changed(flag) {
			return value
		}
		return setting
	}
	addr = or("tls-addr", addr, string(a.cfg.TLSAddr))
	if addr == "" {
		if a.cfg.WildcardCertFile != "" {
			log.Warn("TENANT_WILDCARD_CERT_FILE is not used: nself serves no TLS (TLS_ADDR and --tls-addr are not set)")
		}
		return nil, nil
	}
	t := &tlsSettings{addr: addr, acme: certs.ACMEConfig{
		DirectoryURL: or("acme-directory", acmeDir, string(a.cfg.ACMEDirectory)),
		Email:        or("acme-email", acmeEmail, a.cfg.ACMEEmail),
		CacheDir:     or("cert-dir", certDir, a.cfg.TLSCertDir),
	}}
	if t.acme.CacheDir == "" {
		return nil, usageError{"serving TLS needs --cert-dir (or TLS_CERT_DIR), where certificates and the ACME account are kept"}
	}
	var err error
	if t.wildcard, err = a.wildcardCertificate(log); err != nil {
		return nil, err
	}
	return t, nil
}

// wildcardCertificate loads the operator's certificate for *.BASE_DOMAIN
// when tenants' subdomains are served with it (TENANT_SUBDOMAIN_WILDCARD).
// Without its files the server does not start rather than order a
// certificate per subdomain, which the operator turned off and which Let's
// Encrypt's weekly limit would stop after 50 tenants.
func (a *app) wildcardCertificate(log *slog.Logger) (*certs.WildcardCertificate, error) {
	c := a.cfg
	files := c.WildcardCertFile != ""
	switch {
	case !c.SubdomainWildcard:
		if files {
			log.Warn("TENANT_WILDCARD_CERT_FILE is not used: TENANT_SUBDOMAIN_WILDCARD=false gets each subdomain a certificate of its own over ACME")
		}
		return nil, nil
	case !files && !c.SubdomainsRouted():
		// No tenant is reached at a subdomain: nothing to cover.
		return nil, nil
	case !files:
		return nil, fmt.Errorf("TENANT_SUBDOMAIN_WILDCARD=true needs TENANT_WILDCARD_CERT_FILE and TENANT_WILDCARD_KEY_FILE (a certificate for *.%s and its key) when nself serves TLS; or set TENANT_SUBDOMAIN_WILDCARD=false to get a certificate per subdomain over ACME", c.BaseDomain)
	}
	w, err := certs.LoadWildcardCertificate(c.WildcardCertFile, c.WildcardKeyFile, string(c.BaseDomain))
	if err != nil {
		return nil, fmt.Errorf("invalid TENANT_WILDCARD_CERT_FILE %q with TENANT_WILDCARD_KEY_FILE %q: %w", c.WildcardCertFile, c.WildcardKeyFile, err)
	}
	log.Info("tenants' subdomains are served with the wildcard certificate", "names", w.Leaf().DNSNames, "expires", w.Leaf().NotAfter)
	return w, nil
}

// wildcardExpiryWarning is how long before the wildcard certificate
// expires the server starts warning, once a day.
const wildcardExpiryWarning = 14 * 24 * time.Hour

// watchWildcard reads the wildcard certificate's files again every
// interval (when they changed) and on each SIGHUP, and warns while the
// certificate nears its end.
func watchWildcard(ctx context.Context, log *slog.Logger, w *certs.WildcardCertificate, every time.Duration, hup <-chan os.Signal) {
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	var lastErr string
	var warned time.Time
	check := func(asked bool) {
		changed, err := w.Reload()
		switch {
		case err != nil:
			// A renewal half written fails until its second file lands:
			// said once, not at every tick.
			if asked || err.Error() != lastErr {
				log.Error("wildcard certificate not reloaded; the previous one is still served", "err", err)
			}
			lastErr = err.Error()
		case changed:
			lastErr = ""
			log.Info("wildcard certificate reloaded", "names", w.Leaf().DNSNames, "expires", w.Leaf().NotAfter)
		case asked:
			log.Info("wildcard certificate unchanged", "expires", w.Leaf().NotAfter)
		}
		if end := w.Leaf().NotAfter; time.Until(end) < wildcardExpiryWarning && time.Since(warned) > 24*time.Hour {
			warned = time.Now()
			log.Warn("the wildcard certificate expires soon: renew its files (they are read again when they change)", "expires", end)
		}
	}
	check(false)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			check(true)
		case <-tick:
			check(false)
		}
	}
}

// recheckDomains checks verified custom domains again, every interval, so
// one whose record is gone fails after the grace period and stops routing.
// Several server processes may all run it; a domain checked by one is not
// due for the others.
func recheckDomains(ctx context.Context, log *slog.Logger, svc *postgres.DomainService, v tenancy.DomainVerifier, every time.Duration) {
	runEvery(ctx, every, func() {
		n, err := svc.RecheckDue(ctx, v, time.Now().Add(-every), 500)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("domain recheck", "checked", n, "err", err)
		case n > 0:
			log.Info("domain recheck", "checked", n)
		}
	})
}

// runEvery runs job every interval until ctx ends.
func runEvery(ctx context.Context, every time.Duration, job func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			job()
		}
	}
}

// sampleStorage measures every tenant's stored bytes each interval, which
// adds to the month's GB-hours. Several processes may all run it: each
// reading adds the time since the previous one, whoever took it.
func sampleStorage(ctx context.Context, log *slog.Logger, store *postgres.BillingService, size func(context.Context, string) (int64, error), every time.Duration) {
	runEvery(ctx, every, func() {
		ids, err := store.ActiveTenantIDs(ctx)
		if err != nil {
			log.Error("storage sample", "err", err)
			return
		}
		for _, id := range ids {
			n, err := size(ctx, id)
			if err == nil {
				err = store.RecordStorage(ctx, id, n, time.Now())
			}
			if err != nil && ctx.Err() == nil {
				log.Error("storage sample", "tenant", id, "err", err)
			}
		}
	})
}

// sizer measures a tenant's stored bytes in object storage: its bucket and
// its export archives.
func (a *app) sizer(log *slog.Logger) func(context.Context, string) (int64, error) {
	store, err := a.blobStore()
	if err != nil {
		log.Warn("storage usage is not measured", "err", err)
		return func(context.Context, string) (int64, error) { return 0, nil }
	}
	return func(ctx context.Context, tenantID string) (int64, error) {
		return store.TenantSize(ctx, tenantID)
	}
}

// reconcileBilling compares subscriptions with Stripe's every interval.
func reconcileBilling(ctx context.Context, log *slog.Logger, svc tenancy.Billing, every time.Duration) {
	runEvery(ctx, every, func() {
		results, err := svc.Reconcile(ctx)
		if err != nil {
			log.Error("billing reconcile", "err", err)
			return
		}
		for _, r := range results {
			switch {
			case r.Err != nil:
				log.Error("billing reconcile", "tenant", r.Tenant.Slug, "err", r.Err)
			case r.Changed != "":
				log.Warn("billing reconcile repaired a subscription", "tenant", r.Tenant.Slug, "change", r.Changed)
			}
		}
	})
}
