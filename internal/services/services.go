// Package services builds the platform's services from what is configured,
// in one place, for `nself serve`, the CLI and the tests: they then run the
// same services, cached the same way, and cannot drift apart.
//
// An outside service that is not configured (Stripe, object storage, SMTP,
// DNS) leaves its field nil, and the web server built from the services
// registers no route and no menu entry for what needs it.
package services

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nself/nself/internal/billing"
	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/notify"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/secretbox"
	"github.com/nself/nself/internal/sso"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/internal/totp"
	"github.com/nself/nself/web"
)

// Config is what the services are built from besides the database. A nil
// outside service turns its features off.
type Config struct {
	Log      *slog.Logger
	Strategy tenancy.StrategyMode
	// Domains are the rules custom domains follow.
	Domains tenancy.DomainRules
	// CustomDomains routes tenants' verified custom domains;
	// RouteUnverified routes them before their owner is verified.
	CustomDomains   bool
	RouteUnverified bool
	// TenantURL is the address of a tenant's portal, for mail.
	TenantURL func(slug string) string

	// Objects is object storage (MinIO): logos, export archives and the
	// removal of deleted tenants' files need it.
	Objects *blob.Store
	// ExportDir is the private folder exports are built in.
	ExportDir string
	// Stripe sells plans; nil turns billing off.
	Stripe *billing.Config
	// Mailer delivers the outbox (SMTP); nil leaves mail in the outbox.
	Mailer      tenancy.Mailer
	MailRetry   tenancy.MailRetry
	SendTimeout time.Duration
	// DNS looks up custom domains' TXT records; nil: domains cannot be
	// verified.
	DNS tenancy.DomainVerifier
	// SSOKey seals tenants' single sign-on client secrets (32 bytes or
	// more); empty turns single sign-on off. SSOTimeout bounds each call
	// to a provider.
	SSOKey     []byte
	SSOTimeout time.Duration
	// TOTPKey seals people's authenticator secrets (32 bytes); empty
	// turns two-factor sign-in off.
	TOTPKey []byte
}

// ssoPurpose keys the box of client secrets apart from every other use of
// the same key (SESSION_SECRET may be it).
const ssoPurpose = "sso-client-secret"

// Services are the platform's services on one database.
type Services struct {
	DB  *postgres.DB
	Log *slog.Logger
	// Cache resolves tenants (and, with custom domains, their domains)
	// from memory; Creds verifies keys and sessions from memory. Both
	// follow the database once Start has run.
	Cache *postgres.TenantCache
	Creds *postgres.CredentialCache

	Tenants *postgres.TenantService
	Users   *postgres.UserService
	Members tenancy.MemberService
	// MemberAdmin and BrandingAdmin are the services Members and Branding
	// cache, read straight from the database: for a command, whose process
	// does not follow the database's changes.
	MemberAdmin    *postgres.MemberService
	BrandingAdmin  *postgres.BrandingService
	Plans          tenancy.PlanService
	PlanAdmin      *postgres.PlanService
	Auth           tenancy.AuthService
	APIKeys        tenancy.APIKeyService
	Sessions       tenancy.SessionService
	Admins         *postgres.AdminService
	Orgs           *postgres.OrgService
	Audit          *postgres.AuditService
	Invitations    *postgres.InvitationService
	Branding       tenancy.BrandingService
	EmailTemplates *postgres.EmailTemplateService
	DomainAdmin    *postgres.DomainService
	BillingStore   *postgres.BillingService
	Outbox         *postgres.MailOutbox
	Meter          *postgres.Meter
	Mail           *notify.Composer

	// Optional: nil when the outside service they need is not configured.
	Domains  web.DomainResolver         // custom domains are on
	Verifier tenancy.DomainVerifier     // DNS
	Logos    tenancy.LogoService        // object storage
	Exports  *postgres.ExportJobService // object storage
	Storage  *postgres.StorageRemover   // object storage
	Billing  tenancy.Billing            // Stripe
	Sender   *notify.Sender             // SMTP
	// Single sign-on and two-factor sign-in, each with its key.
	SSO         *postgres.SSOCache
	SSOProvider tenancy.SSOProvider
	TwoFactor   *postgres.TwoFactorService
}

// New builds the services. It opens no connection of its own beyond db's
// pools, and starts nothing: Start does.
func New(db *postgres.DB, cfg Config) (*Services, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	cache := postgres.NewTenantCache(db, log)
	creds := postgres.NewCredentialCache(db, log)
	members, branding := postgres.NewMemberService(db), postgres.NewBrandingService(db)
	s := &Services{
		MemberAdmin: members, BrandingAdmin: branding,
		DB: db, Log: log, Cache: cache, Creds: creds,
		Tenants:        postgres.NewTenantService(db, cfg.Strategy),
		Users:          postgres.NewUserService(db),
		Members:        members.Cached(creds),
		Plans:          postgres.NewPlanService(db).Cached(cache),
		PlanAdmin:      postgres.NewPlanService(db),
		Auth:           postgres.NewAuthService(db).Cached(creds),
		APIKeys:        postgres.NewAPIKeyService(db).Cached(creds),
		Sessions:       postgres.NewSessionService(db).Cached(creds),
		Admins:         postgres.NewAdminService(db),
		Orgs:           postgres.NewOrgService(db),
		Audit:          postgres.NewAuditService(db),
		Invitations:    postgres.NewInvitationService(db),
		Branding:       branding.Cached(cache),
		EmailTemplates: postgres.NewEmailTemplateService(db),
		DomainAdmin:    postgres.NewDomainService(db, cfg.Domains),
		BillingStore:   postgres.NewBillingService(db),
		Outbox:         postgres.NewMailOutbox(db),
		Meter:          postgres.NewMeter(db, log),
		Verifier:       cfg.DNS,
	}
	if cfg.CustomDomains {
		// Only verified domains route, unless the operator says
		// otherwise: an unverified one could be claimed by anybody.
		cache.Domains = postgres.NewDomainService(db, cfg.Domains)
		cache.RouteUnverified = cfg.RouteUnverified
		s.Domains = cache
	}
	// Mail lists its logos through the database alone; pages serve them
	// from object storage when there is one.
	var mailLogos notify.Logos = postgres.NewLogoService(db, nil)
	if cfg.Objects != nil {
		logos := postgres.NewLogoService(db, cfg.Objects)
		logos.Log = log
		cached := logos.Cached(cache)
		s.Logos, mailLogos = cached, cached
		ex := postgres.NewExportService(db, cfg.Objects, cfg.Strategy)
		ex.Domains = cfg.Domains
		ex.TempDir = cfg.ExportDir
		s.Exports = postgres.NewExportJobService(ex)
		s.Exports.Log = log
		s.Exports.Wake = cache.Woken(postgres.ExportChannel)
		s.Storage = postgres.NewStorageRemover(db, cfg.Objects)
		s.Storage.Log = log
		s.Storage.Wake = cache.Woken(postgres.StorageChannel)
	}
	s.Mail = &notify.Composer{Templates: s.EmailTemplates, Branding: s.Branding, Logos: mailLogos, TenantURL: cfg.TenantURL, Log: log}
	if cfg.Stripe != nil {
		svc, err := billing.New(*cfg.Stripe, s.BillingStore, log)
		if err != nil {
			return nil, err
		}
		s.Billing = svc
	}
	if cfg.Mailer != nil {
		s.Sender = &notify.Sender{Outbox: s.Outbox, Mailer: cfg.Mailer, Composer: s.Mail, Retry: cfg.MailRetry,
			SendTimeout: cfg.SendTimeout, Log: log, Wake: cache.Woken(postgres.MailChannel)}
	}
	if len(cfg.SSOKey) > 0 {
		box, err := secretbox.New(cfg.SSOKey, ssoPurpose)
		if err != nil {
			return nil, err
		}
		// The sign-in page's provider from memory, following the
		// tenant cache.
		s.SSO = postgres.NewSSOService(db, box).Cached(cache)
		s.SSOProvider = sso.New(cfg.SSOTimeout)
	}
	if len(cfg.TOTPKey) > 0 {
		box, err := totp.NewSealer(cfg.TOTPKey)
		if err != nil {
			return nil, err
		}
		s.TwoFactor = postgres.NewTwoFactorService(db, totp.TOTP{}, box)
	}
	return s, nil
}

// Start makes the caches follow the database until ctx ends, and readies
// the export jobs (failing those a stopped process left running). It
// returns once the caches listen, or when wait has passed.
func (s *Services) Start(ctx context.Context, wait time.Duration) error {
	go s.Cache.Listen(ctx)
	go s.Creds.Listen(ctx)
	if s.Exports != nil {
		if err := s.Exports.Start(ctx); err != nil {
			return err
		}
	}
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for _, ready := range []<-chan struct{}{s.Cache.Ready(), s.Creds.Ready()} {
		select {
		case <-ready:
		case <-t.C:
			return tenancy.Unavailable(tenancy.ServiceDatabase, errNotListening)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close ends the export jobs still running, as failed.
func (s *Services) Close() {
	if s.Exports != nil {
		s.Exports.Close()
	}
}

// Server is the web server on the services, with cfg.
func (s *Services) Server(cfg web.Config) *web.Server {
	srv := &web.Server{
		Config:         cfg,
		Log:            s.Log,
		Resolver:       s.Cache,
		Tenants:        s.Tenants,
		Users:          s.Users,
		Members:        s.Members,
		Plans:          s.Plans,
		Auth:           s.Auth,
		APIKeys:        s.APIKeys,
		Sessions:       s.Sessions,
		Admins:         s.Admins,
		Orgs:           s.Orgs,
		Audit:          s.Audit,
		Invitations:    s.Invitations,
		Branding:       s.Branding,
		EmailTemplates: s.EmailTemplates,
		DomainAdmin:    s.DomainAdmin,
		PlanAdmin:      s.PlanAdmin,
		Meter:          s.Meter,
		BillingStore:   s.BillingStore,
		Outbox:         s.Outbox,
		Mail:           s.Mail,
		DB:             s.DB,
	}
	// Each optional service is set only when there is one: an interface
	// holding a nil pointer would count as configured.
	if s.Domains != nil {
		srv.Domains = s.Domains
	}
	if s.Verifier != nil {
		srv.DomainVerifier = s.Verifier
	}
	if s.Logos != nil {
		srv.Logos = s.Logos
	}
	if s.Exports != nil {
		srv.Exports = s.Exports
	}
	if s.Storage != nil {
		srv.Storage = s.Storage
	}
	if s.Billing != nil {
		srv.Billing = s.Billing
	}
	if s.SSO != nil {
		srv.SSO, srv.SSOProvider = s.SSO, s.SSOProvider
	}
	if s.TwoFactor != nil {
		srv.TwoFactor = s.TwoFactor
	}
	return srv
}

var errNotListening = errors.New("the caches did not start following the database")
