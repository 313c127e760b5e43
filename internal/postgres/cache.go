package postgres

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/nself/nself/internal/tenancy"
)

// TenantCache resolves tenants by slug or id from memory, so a page view
// does not query the registry. Every change to a tenant is announced on
// ChangeChannel (NOTIFY, sent when the changing transaction commits), and
// every process running a TenantCache drops that tenant on hearing it. While
// the listening connection is down the cache is bypassed, since changes
// could be missed; once it is back, the cache starts empty.
type TenantCache struct {
	db  *DB
	log *slog.Logger
	// Domains finds the tenant of a verified custom domain; nil when custom
	// domains are off.
	Domains tenancy.DomainLookup
	// RouteUnverified routes domains before they are verified
	// (TENANT_REQUIRE_DOMAIN_VERIFICATION=false).
	RouteUnverified bool

	live  atomic.Bool
	ready chan struct{}
	once  sync.Once

	mu      sync.RWMutex
	entries map[string]*tenancy.Tenant // by slug and by id; nil marks a known miss
	gen     uint64                     // counts forgets and flushes
	// hooks hear every tenant dropped, and "" when everything is.
	hooks []func(tenantID string)

	// wakes are the channels of Woken, by LISTEN channel.
	wakes map[string]wakeHandler
}

// OnChange makes fn hear of every change the cache hears: the tenant's id,
// or "" when the cache starts over. Caches of other per-tenant values use
// it to follow the same invalidation.
func (c *TenantCache) OnChange(fn func(tenantID string)) {
	c.mu.Lock()
	c.hooks = append(c.hooks, fn)
	c.mu.Unlock()
}

// NewTenantCache returns a cache over db. It caches nothing until Listen
// has started listening.
func NewTenantCache(db *DB, log *slog.Logger) *TenantCache {
	return &TenantCache{db: db, log: log, ready: make(chan struct{}), entries: map[string]*tenancy.Tenant{},
		wakes: map[string]wakeHandler{}}
}

// Woken returns what wakes a job that sleeps until there is work for it:
// it receives when a notice arrives on channel (MailChannel, say), and
// each time the listener connects, since notices sent while it was down
// were lost. One pending wake-up stands for any number of notices; one
// reader per channel. The notices share the cache's LISTEN connection. It
// must be called before Listen.
func (c *TenantCache) Woken(channel string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.wakes[channel]
	if !ok {
		w = make(wakeHandler, 1)
		c.wakes[channel] = w
	}
	return w
}

// Listen listens for changes until ctx ends, reconnecting after failures.
func (c *TenantCache) Listen(ctx context.Context) error {
	l := c.db.listener(func(ctx context.Context, err error) {
		c.live.Store(false)
		c.flush()
		if ctx.Err() == nil {
			c.log.Warn("tenant cache: change listener failed; serving from the database until it is back", "err", err)
		}
	})
	l.Handle(ChangeChannel, cacheHandler{c})
	c.mu.RLock()
	for channel, w := range c.wakes {
		l.Handle(channel, w)
	}
	c.mu.RUnlock()
	return l.Listen(ctx)
}

// listener is a LISTEN connection of its own as the application role,
// made again a second after it fails; failed is told each failure, so a
// cache can stop trusting what it holds.
func (db *DB) listener(failed func(ctx context.Context, err error)) *pgxlisten.Listener {
	return &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			// Through the pool's gate: during an outage the listener
			// waits its turn like the pool's own attempts.
			if g := db.appGate; g != nil {
				if err := g.admit(); err != nil {
					return nil, err
				}
			}
			return pgx.ConnectConfig(ctx, db.App.Config().ConnConfig)
		},
		LogError:       failed,
		ReconnectDelay: time.Second,
	}
}

// Ready is closed once the cache listens for changes for the first time.
func (c *TenantCache) Ready() <-chan struct{} { return c.ready }

type cacheHandler struct{ c *TenantCache }

// HandleBacklog runs once LISTEN is in place: anything cached before could
// be stale, so start empty.
func (h cacheHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.c.flush()
	h.c.live.Store(true)
	h.c.once.Do(func() { close(h.c.ready) })
	return nil
}

func (h cacheHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	if n.Payload == PlansChanged {
		// Tenants carry their plan's name only, but callers read limits
		// through both caches: start both over.
		h.c.flush()
		return nil
	}
	h.c.forget(n.Payload)
	return nil
}

// wakeHandler passes notices on without waiting.
type wakeHandler chan struct{}

func (w wakeHandler) wake() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// HandleBacklog runs once LISTEN is in place, at each connection: what was
// queued while the listener was down was not heard, so look once.
func (w wakeHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	w.wake()
	return nil
}

func (w wakeHandler) HandleNotification(context.Context, *pgconn.Notification, *pgx.Conn) error {
	w.wake()
	return nil
}

// Heard counts the changes the cache has heard (and its fresh starts), so
// a test can wait for a notice to arrive.
func (c *TenantCache) Heard() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// forget drops a tenant, and every remembered miss: a new tenant may now
// answer to a slug that was unknown.
func (c *TenantCache) forget(tenantID string) {
	c.mu.Lock()
	c.gen++
	for k, t := range c.entries {
		if t == nil || t.ID == tenantID {
			delete(c.entries, k)
		}
	}
	hooks := c.hooks
	c.mu.Unlock()
	for _, fn := range hooks {
		fn(tenantID)
	}
}

func (c *TenantCache) flush() {
	c.mu.Lock()
	c.gen++
	c.entries = map[string]*tenancy.Tenant{}
	hooks := c.hooks
	c.mu.Unlock()
	for _, fn := range hooks {
		fn("")
	}
}

// Lookup returns the tenant with that slug or id, deleted ones included,
// or ENOTFOUND. The tenant returned is shared: callers must not change it.
func (c *TenantCache) Lookup(ctx context.Context, ref string) (*tenancy.Tenant, error) {
	ref = strings.ToLower(ref)
	return c.cached(ctx, ref, func() (*tenancy.Tenant, error) {
		return findTenant(ctx, c.db.Admin, ref, false)
	})
}

// LookupDomain returns the tenant a custom domain routes to (verified
// domains only, unless RouteUnverified), or ENOTFOUND. Entries are dropped
// with their tenant's changes, and remembered misses with any change, so
// verifying, removing or un-verifying a domain takes effect in every
// process at once.
func (c *TenantCache) LookupDomain(ctx context.Context, host string) (*tenancy.Tenant, error) {
	if c.RouteUnverified {
		return c.lookupDomain(ctx, host, "claimed:", c.Domains.LookupClaimedDomain)
	}
	return c.LookupVerifiedDomain(ctx, host)
}

// LookupVerifiedDomain returns the tenant whose verified custom domain host
// is, whatever the routing allows: what certificates may be issued for.
func (c *TenantCache) LookupVerifiedDomain(ctx context.Context, host string) (*tenancy.Tenant, error) {
	return c.lookupDomain(ctx, host, "domain:", c.Domains.LookupVerifiedDomain)
}

func (c *TenantCache) lookupDomain(ctx context.Context, host, prefix string, lookup func(context.Context, string) (string, error)) (*tenancy.Tenant, error) {
	if c.Domains == nil {
		return nil, tenancy.Errorf(tenancy.ENOTFOUND, "custom domains are off")
	}
	host = strings.ToLower(host)
	return c.cached(ctx, prefix+host, func() (*tenancy.Tenant, error) {
		id, err := lookup(ctx, host)
		if err != nil {
			return nil, err
		}
		return findTenant(ctx, c.db.Admin, id, false)
	})
}

// cached answers key from memory, or loads it and remembers the answer
// (a miss included) when nothing changed while it loaded.
func (c *TenantCache) cached(ctx context.Context, key string, load func() (*tenancy.Tenant, error)) (*tenancy.Tenant, error) {
	if !c.live.Load() {
		return load()
	}
	c.mu.RLock()
	t, hit := c.entries[key]
	gen := c.gen
	c.mu.RUnlock()
	if hit {
		if t == nil {
			return nil, tenancy.Errorf(tenancy.ENOTFOUND, "%s not found", tenancy.Quote(key))
		}
		return t, nil
	}
	t, err := load()
	if err != nil && tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		return nil, err
	}
	// A change announced while the query ran may not be in its result:
	// store it only if nothing was forgotten meanwhile.
	c.mu.Lock()
	if c.live.Load() && c.gen == gen {
		c.entries[key] = t
		if t != nil && !strings.Contains(key, ":") {
			c.entries[t.ID] = t
			c.entries[t.Slug] = t
		}
	}
	c.mu.Unlock()
	return t, err
}

// SSOCache is an SSOService whose sign-in page's provider comes from
// memory, kept with the tenant (a tenantMemo on the TenantCache): the
// sign-in page is what anonymous visitors hit most, and it makes no
// database round trip. Saving or removing the provider announces the
// change on ChangeChannel in the same transaction, so every process drops
// its entry when it commits. Signing in reads the stored provider, with
// its secret, as before.
type SSOCache struct {
	*SSOService
	pages *tenantMemo[*tenancy.SSOConfig] // nil: a known "no provider"
}

var _ tenancy.SSOService = (*SSOCache)(nil)

// Cached returns s with the sign-in page's provider served from memory,
// invalidated through tc.
func (s *SSOService) Cached(tc *TenantCache) *SSOCache {
	return &SSOCache{SSOService: s, pages: newTenantMemo[*tenancy.SSOConfig](tc)}
}

// SignInProvider returns the tenant's provider for its sign-in page from
// memory, or reads and remembers it. It is shared: callers must not
// change it.
func (c *SSOCache) SignInProvider(ctx context.Context, tenantID string) (*tenancy.SSOConfig, error) {
	return c.pages.get(ctx, tenantID, c.SSOService.SignInProvider)
}

// SaveSSOConfig saves, and drops the entry at once in this process: the
// notice may arrive after the owner's next page.
func (c *SSOCache) SaveSSOConfig(ctx context.Context, tenantID string, cfg *tenancy.SSOConfig) (*tenancy.SSOConfig, error) {
	defer c.pages.forget(tenantID)
	return c.SSOService.SaveSSOConfig(ctx, tenantID, cfg)
}

// DeleteSSOConfig removes, and drops the entry at once in this process.
func (c *SSOCache) DeleteSSOConfig(ctx context.Context, tenantID string) error {
	defer c.pages.forget(tenantID)
	return c.SSOService.DeleteSSOConfig(ctx, tenantID)
}
