package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/services"
)

// servicesConfig is what the settings configure, for services.New: serve
// and the commands build their services from it alike. exportDir is the
// folder exports are built in ("" for the system's temporary folder).
func (a *app) servicesConfig(log *slog.Logger, exportDir string) services.Config {
	c := a.cfg
	cfg := services.Config{
		Log:             log,
		Strategy:        c.Strategy,
		Domains:         a.domainRules(),
		CustomDomains:   c.CustomDomainsEnabled,
		RouteUnverified: !c.RequireDomainVerification,
		TenantURL:       c.TenantURL,
		ExportDir:       exportDir,
		DNS:             dnsverify.New(string(c.DNSResolver)),
		MailRetry:       c.MailRetry(),
		SendTimeout:     2*time.Duration(c.SMTPTimeout) + 10*time.Second,
	}
	// Without object storage logos and exports are off; serve says so.
	if c.MinioEndpoint != "" {
		if store, err := a.blobStore(); err != nil {
			log.Error("logos and data exports are off", "err", err)
		} else {
			cfg.Objects = store
		}
	}
	// Stripe is there with its keys: a command such as billing reconcile
	// uses it whenever they are set; serve sells plans only with
	// BILLING_ENABLED, and refuses to start without the keys then.
	if a.stripeOff() == nil {
		bc := a.billingConfig()
		cfg.Stripe = &bc
	}
	if c.SMTPHost != "" {
		cfg.Mailer = a.smtp()
	}
	a.sealingKeys(&cfg)
	return cfg
}

// services builds the platform's services from the settings, once per
// run, on the database.
func (a *app) services(ctx context.Context) (*services.Services, error) {
	if a.svc != nil {
		return a.svc, nil
	}
	db, err := a.database(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := services.New(db, a.servicesConfig(slog.New(slog.NewTextHandler(a.Err, &slog.HandlerOptions{Level: slog.LevelWarn})), ""))
	if err != nil {
		return nil, err
	}
	a.svc = svc
	return svc, nil
}
