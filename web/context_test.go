package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/nself/nself/internal/tenancy"
)

// A value read from the request context is the reader's own: changing it
// changes neither what the next reader gets nor what middleware put in,
// which for the tenant and the identity is the entry of a cache that every
// request shares.
func TestContextValuesAreCopies(t *testing.T) {
	deleted := time.Now()
	cached := &tenancy.Tenant{ID: "t1", Slug: "acme", Name: "Acme", Plan: "free", Status: tenancy.StatusActive, DeletedAt: &deleted}
	user := &tenancy.User{ID: "u1", TenantID: "t1", Email: "ann@acme.test"}
	id := &tenancy.Identity{User: user, Role: tenancy.RoleMember, SessionID: "s1"}
	admin := &tenancy.Admin{ID: "a1", Email: "root@nself.test"}
	used := time.Now()
	key := &tenancy.APIKey{ID: "k1", TenantID: "t1", Name: "ci", LastUsedAt: &used}

	ctx := withSession(withKeyTenant(context.Background(), key, cached), id, admin, "csrf-1")

	// A handler changes everything it is given.
	tt := TenantFrom(ctx)
	tt.Plan, tt.Name, tt.Status = "enterprise", "Hacked", tenancy.StatusSuspended
	*tt.DeletedAt = time.Time{}
	got := IdentityFrom(ctx)
	got.Role = tenancy.RoleOwner
	got.User.Email = "mallory@evil.test"
	got.User.TenantID = "t2"
	a := AdminFrom(ctx)
	a.Email = "mallory@evil.test"
	k := APIKeyFrom(ctx)
	k.TenantID = "t2"
	*k.LastUsedAt = time.Time{}

	if again := TenantFrom(ctx); again.Plan != "free" || again.Name != "Acme" || again.Status != tenancy.StatusActive || !again.DeletedAt.Equal(deleted) {
		t.Errorf("the request's tenant changed: %+v", again)
	}
	if cached.Plan != "free" || cached.Name != "Acme" || !cached.DeletedAt.Equal(deleted) {
		t.Errorf("the cached tenant changed: %+v", cached)
	}
	if again := IdentityFrom(ctx); again.Role != tenancy.RoleMember || again.User.Email != "ann@acme.test" || again.User.TenantID != "t1" {
		t.Errorf("the request's identity changed: %+v %+v", again, again.User)
	}
	if id.Role != tenancy.RoleMember || user.Email != "ann@acme.test" {
		t.Errorf("the cached identity changed: %+v %+v", id, user)
	}
	if again := AdminFrom(ctx); again.Email != "root@nself.test" || admin.Email != "root@nself.test" {
		t.Errorf("the administrator changed: %+v", again)
	}
	if again := APIKeyFrom(ctx); again.TenantID != "t1" || !again.LastUsedAt.Equal(used) || key.TenantID != "t1" {
		t.Errorf("the API key changed: %+v", again)
	}

	// Changing a value after middleware put it in changes nothing either.
	cached.Name = "Renamed in the cache"
	if TenantFrom(ctx).Name != "Acme" {
		t.Error("the request's tenant follows its source after it was set")
	}
}

// Setting a value makes a new context: one taken before, by a goroutine
// say, never sees the value change under it.
func TestContextSettingLeavesEarlierContexts(t *testing.T) {
	sc := newRequestScope(context.Background(), "req-1", nil)
	base, note := context.Context(sc), &sc.note
	withT := withTenant(base, &tenancy.Tenant{ID: "t1", Slug: "acme"})
	signedIn := withSession(withT, &tenancy.Identity{User: &tenancy.User{ID: "u1"}, Role: tenancy.RoleOwner}, nil, "csrf-1")
	if TenantFrom(base) != nil {
		t.Error("setting the tenant changed the context it was set on")
	}
	if IdentityFrom(withT) != nil || CSRFFrom(withT) != "" {
		t.Error("signing in changed the context before it")
	}
	if TenantFrom(signedIn).Slug != "acme" || IdentityFrom(signedIn).Role != tenancy.RoleOwner || CSRFFrom(signedIn) != "csrf-1" {
		t.Error("the signed-in context lost a value")
	}
	// The log note is the one thing shared, on purpose: it is how a
	// handler tells the outermost middleware what to log.
	noteTenant(signedIn, "other")
	if note.tenant != "other" {
		t.Errorf("the log note says %q", note.tenant)
	}
}

// Routing sets the tenant in the request's first state, where its log
// line and every later context see it; readers still get copies, so the
// cached tenant stays as it was. A request whose context is no longer its
// first gets a new one.
func TestRoutedTo(t *testing.T) {
	cached := &tenancy.Tenant{ID: "t1", Slug: "acme", Name: "Acme"}
	sc := newRequestScope(context.Background(), "req-1", nil)
	r := httptest.NewRequest(http.MethodGet, "http://acme.nself.test/", nil).WithContext(sc)
	routed := routedTo(r, cached)
	if routed != r || tenantOf(routed.Context()) != cached || sc.note.tenant != "acme" {
		t.Errorf("routed: same request %v, tenant %+v, log note %q", routed == r, tenantOf(routed.Context()), sc.note.tenant)
	}
	TenantFrom(routed.Context()).Name = "changed by a handler"
	if cached.Name != "Acme" {
		t.Error("a handler changed the cached tenant")
	}
	if got := middleware.GetReqID(routed.Context()); got != "req-1" {
		t.Errorf("request id %q", got)
	}

	derived := r.WithContext(withCSRF(sc, "x"))
	other := &tenancy.Tenant{ID: "t2", Slug: "globex"}
	again := routedTo(derived, other)
	if again == derived || TenantFrom(again.Context()).ID != "t2" || tenantOf(sc) != cached {
		t.Error("a request whose context is not its first had its tenant set in place")
	}
}

// keysOnly is an API key service that knows one key.
type keysOnly struct {
	tenancy.APIKeyService
	key *tenancy.APIKey
}

func (k keysOnly) AuthenticateAPIKey(context.Context, string, string) (*tenancy.APIKey, error) {
	return k.key, nil
}

// sharedTenant is a resolver that hands every request the same tenant, as
// the tenant cache does.
type sharedTenant struct{ t *tenancy.Tenant }

func (s sharedTenant) Lookup(context.Context, string) (*tenancy.Tenant, error) { return s.t, nil }

// Through the API's middleware, with requests at once: a handler that
// changes its tenant and key leaves the next request's, and the cache's,
// as they were.
func TestHandlersCannotChangeSharedValues(t *testing.T) {
	cached := &tenancy.Tenant{ID: "t1", Slug: "acme", Name: "Acme", Plan: "free", Status: tenancy.StatusActive}
	key := &tenancy.APIKey{ID: "k1", TenantID: "t1", Name: "ci", APIKeyScope: tenancy.FullAPIKeyScope}
	s := &Server{Resolver: sharedTenant{cached}, APIKeys: keysOnly{key: key}}
	var mu sync.Mutex
	var seen []string
	h := s.authenticateAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tt, k := TenantFrom(r.Context()), APIKeyFrom(r.Context())
		mu.Lock()
		seen = append(seen, tt.Plan+"/"+k.TenantID)
		mu.Unlock()
		tt.Plan, tt.Status, k.TenantID = "enterprise", tenancy.StatusSuspended, "t2"
	}))
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodGet, "http://api.nself.test/v1/tenant", nil)
			req.Header.Set("Authorization", "Bearer nself_k1")
			h.ServeHTTP(httptest.NewRecorder(), req)
		}()
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Fatalf("%d requests reached the handler", len(seen))
	}
	for _, v := range seen {
		if v != "free/t1" {
			t.Errorf("a request saw what another changed: %s", v)
		}
	}
	if cached.Plan != "free" || cached.Status != tenancy.StatusActive || key.TenantID != "t1" {
		t.Errorf("the shared tenant or key changed: %+v %+v", cached, key)
	}
}
