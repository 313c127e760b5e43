// Package web is the portal and API server: chi routes, middleware, and
// one file of handlers per resource. Handlers return errors; Error turns
// them into pages, partials or JSON in one place.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/sessions"

	"github.com/nself/nself/internal/notify"
	"github.com/nself/nself/internal/tenancy"
)

// Resolver finds tenants by slug or id, from a cache.
type Resolver interface {
	Lookup(ctx context.Context, ref string) (*tenancy.Tenant, error)
}

// Database is what the server needs to know of the database's health.
type Database interface {
	// Ready reports whether a request would get a connection now: the
	// database answers and its pools are not exhausted.
	Ready(ctx context.Context) error
	// Outage turns an error that means the database could not be reached
	// or did not answer in time into an EUNAVAILABLE error; it returns
	// nil for any other error.
	Outage(err error) error
}

// Config is what the server needs to know of the platform's settings.
type Config struct {
	BaseDomain string
	// AdminHost serves the platform console; admin.BASE_DOMAIN by default.
	AdminHost string
	// RoutingMethod is subdomain, custom_domain or both.
	RoutingMethod string
	// CustomDomainsOff is TENANT_CUSTOM_DOMAINS_ENABLED=false: the Domains
	// page says so instead of offering to add one.
	CustomDomainsOff bool
	// TrustedProxies are the addresses of the load balancers and proxies in
	// front of the server (TRUSTED_PROXIES): a request from one of them is
	// taken to come from the address its X-Forwarded-For names.
	TrustedProxies []netip.Prefix
	// SingleTenant is MULTI_TENANCY_ENABLED=false: the default tenant's
	// portal and API are at BaseDomain, and subdomains route nowhere.
	SingleTenant bool
	// Secure marks cookies Secure and sends HSTS (PUBLIC_SCHEME=https).
	Secure     bool
	PublicPort int
	// SessionKey signs session cookies and CSRF tokens; 32 bytes or more.
	SessionKey []byte
	// PreviousSessionKey, during a rollover to a new SessionKey, still
	// opens the cookies and CSRF tokens made with the old one.
	PreviousSessionKey []byte
	// InternalToken lets internal services name any tenant with the
	// X-Tenant-ID or X-Tenant-Slug header; empty disables it.
	InternalToken string
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// QueryTimeout bounds each database call a request makes
	// (DATABASE_REQUEST_TIMEOUT), so that a frozen database answers 503
	// in bounded time; 0 leaves them unbounded.
	QueryTimeout time.Duration
	// ShutdownDrain is how long Serve keeps accepting requests after it
	// is told to stop, with /readyz answering 503, so that a load balancer
	// moves traffic away before the listener closes.
	ShutdownDrain time.Duration
	// Upstream is the application the gateway proxies tenants' requests
	// to; a nil URL turns the gateway off.
	Upstream Upstream
}

// Meter counts tenants' API requests against their plans' monthly limits.
type Meter interface {
	Admit(ctx context.Context, tenantID string, limit int64) (tenancy.APIQuota, error)
	AddCompute(tenantID string, d time.Duration)
}

// BillingStore holds usage, payments and the Stripe events received.
type BillingStore interface {
	tenancy.UsageService
	ListPayments(ctx context.Context, tenantID string, limit int) ([]tenancy.Payment, error)
	ListEvents(ctx context.Context, status string, limit int) ([]*tenancy.EventRecord, error)
	FindEvent(ctx context.Context, id string) (*tenancy.EventRecord, error)
	Revenue(ctx context.Context) ([]tenancy.PlanRevenue, error)
	PastDue(ctx context.Context) ([]*tenancy.Tenant, error)
	SetTenantPlan(ctx context.Context, ref, plan string) (*tenancy.Tenant, error)
}

// Server holds the services the handlers use.
type Server struct {
	Config   Config
	Log      *slog.Logger
	Resolver Resolver
	Tenants  tenancy.TenantService
	Users    tenancy.UserService
	Members  tenancy.MemberService
	Plans    tenancy.PlanService
	Auth     tenancy.AuthService
	APIKeys  tenancy.APIKeyService
	Admins   tenancy.AdminService
	// Sessions lists and ends people's sessions, and changes passwords.
	Sessions tenancy.SessionService
	// TwoFactor enrols people in two-factor authentication and checks
	// their codes; nil (no TOTP_ENCRYPTION_KEY) turns it off.
	TwoFactor tenancy.TwoFactorService
	// Orgs groups tenants into organizations, for the console.
	Orgs tenancy.OrgService
	// Audit lists the audit log: a tenant's to its owners and admins,
	// every one to platform administrators.
	Audit tenancy.AuditService
	// Storage removes a deleted tenant's files right after the console
	// deletes it; nil leaves them to the server's retries.
	Storage tenancy.StorageRemover
	// Domains routes verified custom domains; nil turns them off.
	Domains DomainResolver
	// Invitations lets a tenant's admins invite people to join it.
	Invitations tenancy.InvitationService
	Logos       tenancy.LogoService     // tenants' logos; nil turns them off
	Branding    tenancy.BrandingService // brand colors, themes, settings; Look cached
	// EmailTemplates holds the tenants' own email templates; nil sends the defaults.
	EmailTemplates tenancy.EmailTemplateService
	// DomainAdmin lets a tenant's admins claim and verify custom domains;
	// DomainVerifier looks their TXT records up.
	DomainAdmin    tenancy.DomainService
	DomainVerifier tenancy.DomainVerifier
	// PlanAdmin lets platform administrators create, change and archive
	// plans.
	PlanAdmin tenancy.PlanAdmin
	// Meter enforces plans' monthly API request limits; nil counts
	// nothing.
	Meter Meter
	// BillingStore reports usage and payments; Billing sells plans through
	// Stripe, and is nil when billing is off.
	BillingStore BillingStore
	Billing      tenancy.Billing
	// SSO stores tenants' single sign-on providers and signs people in
	// with them; SSOProvider talks to the providers. Either nil turns
	// single sign-on off.
	SSO         tenancy.SSOService
	SSOProvider tenancy.SSOProvider
	// Exports builds data exports for owners in the background; nil turns
	// them off.
	Exports tenancy.ExportJobService
	// TLS, when set, makes Serve terminate TLS itself.
	TLS *TLSServing
	// Mail composes the tenants' mail for previews, as the outbox's sender
	// composes what it sends; Handler makes one from the server's services
	// when it is nil.
	Mail *notify.Composer
	// Outbox lists the mail not delivered yet in the console, and sends it
	// again.
	Outbox tenancy.Outbox
	DB     Database

	// draining is set when shutdown begins: /readyz answers 503 from then.
	draining *atomic.Bool

	limiter *attemptLimiter
	gateway *gateway
	policy  *TLSPolicy
	scheme  string
	store   *sessions.CookieStore
	// stripeOpening counts, per tenant, the Stripe sessions being opened
	// (see stripeSession).
	stripeOpening *openingCounts
	// on is what the configured services make available.
	on features
}

// features are what the server's services make available, fixed when
// Handler builds the routes: a feature whose service is not configured has
// no route and no menu entry, so no handler asks at request time whether
// its service is there.
type features struct {
	billing bool // Stripe: checkout, the billing portal, webhooks, replays
	usage   bool // plans and usage kept: the console's billing pages
	plans   bool // the console's plan editor
	logos   bool // object storage
	exports bool // object storage
	domains bool // tenants' custom domains, in the portal
	routed  bool // verified custom domains route to their tenants
	verify  bool // DNS lookups for custom domains
	mail    bool // the outbox, in the console
}

func (s *Server) features() features {
	return features{
		billing: s.Billing != nil && s.BillingStore != nil,
		usage:   s.BillingStore != nil,
		plans:   s.PlanAdmin != nil,
		logos:   s.Logos != nil,
		exports: s.Exports != nil,
		domains: s.DomainAdmin != nil,
		routed:  s.Domains != nil,
		verify:  s.DomainAdmin != nil && s.DomainVerifier != nil,
		mail:    s.Outbox != nil,
	}
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	if s.limiter == nil {
		s.limiter = newAttemptLimiter()
	}
	if s.draining == nil {
		s.draining = new(atomic.Bool)
	}
	if s.stripeOpening == nil {
		s.stripeOpening = &openingCounts{n: map[string]int{}}
	}
	s.scheme = "http"
	if s.Config.Secure {
		s.scheme = "https"
	}
	if s.Mail == nil {
		s.Mail = &notify.Composer{Templates: s.EmailTemplates, Branding: s.Branding, Logos: s.Logos, TenantURL: s.tenantURL, Log: s.Log}
	}
	s.on = s.features()
	if s.Meter == nil {
		s.Meter = unmetered{}
	}
	if s.Config.MaxBodyBytes == 0 {
		s.Config.MaxBodyBytes = 1 << 20
	}
	if s.Config.Upstream.URL != nil && s.gateway == nil {
		s.gateway = newGateway(s, s.Config.Upstream)
	}
	r := chi.NewRouter()
	r.Use(s.forwardedClient, s.logRequests, s.recoverPanics, s.securityHeaders, s.limitBody, s.checkInput)
	r.Get("/healthz", s.handleHealth)
	r.Get("/readyz", s.handleReady)
	r.Handle("/static/*", staticHandler())
	r.Get("/internal/tls/allow", s.tlsPolicy().handleTLSAllow)
	if s.on.billing {
		r.Post("/webhooks/stripe", s.handleStripeWebhook)
	}
	r.Handle("/*", s.siteRouter())
	return r
}

// Serve listens on addr until ctx ends, then shuts down gracefully: for
// Config.ShutdownDrain it goes on serving while /readyz answers 503, then
// it stops accepting and requests in flight get up to grace to finish.
// With TLS set, it also
// serves HTTPS on TLS.Addr with certificates from TLS.Manager, and the
// plain listener answers ACME HTTP challenges.
func (s *Server) Serve(ctx context.Context, addr string, grace time.Duration, ready func(net.Addr)) error {
	h := s.Handler()
	servers := []*http.Server{s.httpServer(h)}
	listeners := []net.Listener{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	listeners = append(listeners, ln)
	if s.TLS != nil {
		servers[0].Handler = s.TLS.Manager.HTTPHandler(h)
		tlsSrv := s.httpServer(h)
		tlsSrv.TLSConfig = s.TLSConfig(s.TLS.Manager, s.TLS.Wildcard)
		tln, err := net.Listen("tcp", s.TLS.Addr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s: %w", s.TLS.Addr, err)
		}
		servers = append(servers, tlsSrv)
		listeners = append(listeners, tls.NewListener(tln, tlsSrv.TLSConfig))
	}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	select {
	case err := <-errc:
		for _, srv := range servers {
			srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	if err := s.drain(servers, errc); err != nil {
		return err
	}
	s.Log.Info("shutting down", "grace", grace.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	for range servers {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// drain turns /readyz to 503 and keeps serving for Config.ShutdownDrain,
// so that a load balancer sees the server leave and sends new requests
// elsewhere before the listener closes. Responses ask clients to close
// their connections meanwhile, so that kept-alive ones move too.
func (s *Server) drain(servers []*http.Server, errc <-chan error) error {
	s.draining.Store(true)
	if s.Config.ShutdownDrain <= 0 {
		return nil
	}
	s.Log.Info("draining: /readyz answers 503", "drain", s.Config.ShutdownDrain.String())
	for _, srv := range servers {
		srv.SetKeepAlivesEnabled(false)
	}
	t := time.NewTimer(s.Config.ShutdownDrain)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case err := <-errc:
		for _, srv := range servers {
			srv.Close()
		}
		return err
	}
}

// TLSServing is the HTTPS side of Serve.
type TLSServing struct {
	Addr    string
	Manager CertificateSource
	// Wildcard, when set, serves the names it covers instead of Manager.
	Wildcard SiteCertificate
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
	}
}

// tlsPolicy is the server's certificate policy, made once.
func (s *Server) tlsPolicy() *TLSPolicy {
	if s.policy == nil {
		s.policy = NewTLSPolicy(s)
	}
	return s.policy
}

// TLSPolicy returns the policy that admits host names for certificates.
func (s *Server) TLSPolicy() *TLSPolicy { return s.tlsPolicy() }

// handleHealth answers GET /healthz: the process is up.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// handleReady answers GET /readyz: the server takes requests and could
// serve them now. It answers 503 while shutting down, and while the
// database does not answer or a pool has no connection to give (every one
// busy), since requests would then wait or fail.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("shutting down\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.DB.Ready(ctx); err != nil {
		s.Log.Warn("not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(tenancy.ErrorMessage(err) + "\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

// tenantURL is the address of a tenant's portal.
func (s *Server) tenantURL(slug string) string {
	host := slug + "." + s.Config.BaseDomain
	if s.Config.SingleTenant {
		host = s.Config.BaseDomain
	}
	if s.Config.PublicPort != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(s.Config.PublicPort))
	}
	return s.scheme + "://" + host
}
