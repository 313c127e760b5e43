package postgres

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nself/nself/internal/tenancy"
)

// CredentialChannel is the LISTEN/NOTIFY channel on which every change
// that ends a credential or changes what it grants is announced, by the
// transaction that makes it (announceCredentials): KIND:TENANT_ID:ID, KIND
// being key, session or user, or tenant with no ID for all of a tenant's.
const CredentialChannel = "nself_credential_changed"

// DefaultTouchEvery is how often the last use of keys and sessions served
// from memory is written to the database.
const DefaultTouchEvery = 30 * time.Second

// CredentialCache verifies API keys and portal sessions from memory, so a
// request of a known caller costs no database round trip. Whatever revokes,
// deletes or changes a credential (revocation, sign-out, password reset or
// change, member removal, role change, a tenant's suspension or deletion)
// announces it on CredentialChannel in the transaction that makes the
// change, whatever path made it (the CLI's, the portal's, another
// process's), and every process running a CredentialCache drops that
// credential on hearing it.
//
// While the listening connection is down the cache is bypassed, since
// notices could be missed; once it is back, the cache starts empty. Uses
// of keys and sessions (last_used_at, last_seen_at) are written in batches,
// off the request path.
type CredentialCache struct {
	db  *DB
	log *slog.Logger
	// TouchEvery is how often recorded uses are written.
	TouchEvery time.Duration

	live  atomic.Bool
	ready chan struct{}
	once  sync.Once
	// heard counts the notices heard, so a test can wait for one.
	heard atomic.Uint64

	mu  sync.RWMutex
	gen uint64 // counts forgets and flushes
	// keys are by the key's hash (one string, shared with keyIDs: with
	// 100,000 keys a second copy of each hash costs megabytes); sessions by
	// tenant id and the token's hash. The other maps find them by id, and
	// a user's sessions by tenant and user.
	keys       map[string]*cachedKey
	keyIDs     map[string]string
	sessions   map[sessionKey]*cachedSession
	sessionIDs map[string]sessionKey
	users      map[string]map[sessionKey]struct{}

	touchMu        sync.Mutex
	keyTouches     map[string][]keyUse // tenant id → uses of its keys
	sessionTouches map[string][]string // tenant id → session ids
}

// keyUse is a use of a key to write: the key's id and the address it came
// from ("" when not an address).
type keyUse struct{ id, addr string }

// secretHash is a secret's SHA-256, as tenancy.HashSecret stores it. A
// lookup indexes with string(h[:]), which allocates nothing.
type secretHash [sha256.Size]byte

// hashOf is tenancy.HashSecret without an allocation for the usual
// secret: hashed from a copy on the stack.
func hashOf(secret string) secretHash {
	var buf [128]byte
	if len(secret) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], secret)])
	}
	return sha256.Sum256([]byte(secret))
}

// sessionKey finds a session: its tenant and its token's hash.
type sessionKey struct {
	tenantID string
	hash     secretHash
}

// cachedKey holds what verifying a key yields (its id, tenant, name,
// prefix, creation, scope and expiry), in one allocation: with 100,000
// keys cached, its creator and last use (stale from the moment it is
// cached) would cost megabytes for nothing.
type cachedKey struct {
	key     tenancy.APIKey
	touched atomic.Int64 // unix nanoseconds of the last use written or queued
}

type cachedSession struct {
	id      *tenancy.Identity
	expires time.Time    // on this process's clock
	seen    atomic.Int64 // last request, unix nanoseconds
	touched atomic.Int64
}

// NewCredentialCache returns a cache over db. It caches nothing until
// Listen has started listening.
func NewCredentialCache(db *DB, log *slog.Logger) *CredentialCache {
	c := &CredentialCache{db: db, log: log, TouchEvery: DefaultTouchEvery, ready: make(chan struct{})}
	c.reset()
	c.keyTouches, c.sessionTouches = map[string][]keyUse{}, map[string][]string{}
	return c
}

func (c *CredentialCache) reset() {
	c.keys, c.keyIDs = map[string]*cachedKey{}, map[string]string{}
	c.sessions, c.sessionIDs = map[sessionKey]*cachedSession{}, map[string]sessionKey{}
	c.users = map[string]map[sessionKey]struct{}{}
}

// Ready is closed once the cache listens for notices for the first time.
func (c *CredentialCache) Ready() <-chan struct{} { return c.ready }

// Heard is how many notices the cache has heard.
func (c *CredentialCache) Heard() uint64 { return c.heard.Load() }

// Listen listens for notices until ctx ends, reconnecting after failures,
// and writes recorded uses every TouchEvery (and once more at the end).
func (c *CredentialCache) Listen(ctx context.Context) error {
	go c.touchLoop(ctx)
	l := c.db.listener(func(ctx context.Context, err error) {
		c.live.Store(false)
		c.flush()
		if ctx.Err() == nil {
			c.log.Warn("credential cache: notice listener failed; verifying keys and sessions in the database until it is back", "err", err)
		}
	})
	l.Handle(CredentialChannel, credHandler{c})
	return l.Listen(ctx)
}

type credHandler struct{ c *CredentialCache }

// HandleBacklog runs once LISTEN is in place: anything cached before could
// be stale, so start empty.
func (h credHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	h.c.flush()
	h.c.live.Store(true)
	h.c.once.Do(func() { close(h.c.ready) })
	return nil
}

func (h credHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	defer h.c.heard.Add(1)
	kind, rest, _ := strings.Cut(n.Payload, ":")
	tenantID, id, ok := strings.Cut(rest, ":")
	if !ok {
		h.c.flush()
		return nil
	}
	switch kind {
	case "key":
		h.c.forgetKey(id)
	case "session":
		h.c.forgetSession(id)
	case "user":
		h.c.forgetUser(tenantID, id)
	case "tenant":
		h.c.forgetTenant(tenantID)
	default:
		h.c.flush()
	}
	return nil
}

func (c *CredentialCache) flush() {
	c.mu.Lock()
	c.gen++
	c.reset()
	c.mu.Unlock()
}

func (c *CredentialCache) forgetKey(keyID string) {
	c.mu.Lock()
	c.gen++
	if h, ok := c.keyIDs[keyID]; ok {
		delete(c.keys, h)
		delete(c.keyIDs, keyID)
	}
	c.mu.Unlock()
}

func (c *CredentialCache) forgetSession(sessionID string) {
	c.mu.Lock()
	c.gen++
	if k, ok := c.sessionIDs[sessionID]; ok {
		c.dropSessionLocked(k)
	}
	c.mu.Unlock()
}

func (c *CredentialCache) forgetUser(tenantID, userID string) {
	c.mu.Lock()
	c.gen++
	for k := range c.users[tenantID+":"+userID] {
		c.dropSessionLocked(k)
	}
	c.mu.Unlock()
}

// forgetTenant drops every key and session of a tenant: rare (suspension,
// deletion), so a walk over the cache is fine.
func (c *CredentialCache) forgetTenant(tenantID string) {
	c.mu.Lock()
	c.gen++
	for id, h := range c.keyIDs {
		if c.keys[h].key.TenantID == tenantID {
			delete(c.keys, h)
			delete(c.keyIDs, id)
		}
	}
	for k := range c.sessions {
		if k.tenantID == tenantID {
			c.dropSessionLocked(k)
		}
	}
	c.mu.Unlock()
}

func (c *CredentialCache) forgetSessionKey(k sessionKey) {
	c.mu.Lock()
	c.gen++
	c.dropSessionLocked(k)
	c.mu.Unlock()
}

func (c *CredentialCache) dropSessionLocked(k sessionKey) {
	s, ok := c.sessions[k]
	if !ok {
		return
	}
	delete(c.sessions, k)
	delete(c.sessionIDs, s.id.SessionID)
	uk := s.id.User.TenantID + ":" + s.id.User.ID
	if set := c.users[uk]; set != nil {
		delete(set, k)
		if len(set) == 0 {
			delete(c.users, uk)
		}
	}
}

// due reports whether a use at now should be written: the last one
// written or queued is older than lastSeenGranularity.
func due(touched *atomic.Int64, now time.Time) bool {
	last := touched.Load()
	return now.UnixNano()-last > int64(lastSeenGranularity) && touched.CompareAndSwap(last, now.UnixNano())
}

func (c *CredentialCache) queueTouch(m map[string][]string, tenantID, id string) {
	c.touchMu.Lock()
	m[tenantID] = append(m[tenantID], id)
	c.touchMu.Unlock()
}

func (c *CredentialCache) queueKeyUse(tenantID, id, addr string) {
	if inetOrNil(addr) == nil {
		addr = ""
	}
	c.touchMu.Lock()
	c.keyTouches[tenantID] = append(c.keyTouches[tenantID], keyUse{id, addr})
	c.touchMu.Unlock()
}

func (c *CredentialCache) touchLoop(ctx context.Context) {
	every := c.TouchEvery
	if every <= 0 {
		every = DefaultTouchEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			c.writeTouches(final)
			cancel()
			return
		case <-t.C:
			c.writeTouches(ctx)
		}
	}
}

// writeTouches writes the uses recorded since the last call: every
// tenant's in one transaction (per flushChunk tenants), one round trip,
// each tenant's statements after its own SET LOCAL for row-level security.
func (c *CredentialCache) writeTouches(ctx context.Context) {
	c.touchMu.Lock()
	keys, sessions := c.keyTouches, c.sessionTouches
	c.keyTouches, c.sessionTouches = map[string][]keyUse{}, map[string][]string{}
	c.touchMu.Unlock()
	tenants := slices.Sorted(maps.Keys(keys))
	for id := range sessions {
		if _, ok := keys[id]; !ok {
			tenants = append(tenants, id)
		}
	}
	// Sorted, so processes writing at once lock rows in the same order.
	slices.Sort(tenants)
	for chunk := range slices.Chunk(tenants, flushChunk) {
		b := &pgx.Batch{}
		for _, tenantID := range chunk {
			set, err := setTenantSQL(tenantID, "")
			if err != nil {
				continue
			}
			b.Queue(set)
			if uses := keys[tenantID]; len(uses) > 0 {
				ids, addrs := make([]string, len(uses)), make([]string, len(uses))
				for i, u := range uses {
					ids[i], addrs[i] = u.id, u.addr
				}
				// Each key's address is found by its place in the array: a
				// plain UPDATE of one tenant, which a distributed
				// PostgreSQL routes to one shard.
				b.Queue(`
					UPDATE auth.api_keys SET last_used_at = now(),
					       last_used_ip = coalesce(nullif(($3::text[])[array_position($2::uuid[], id)], '')::inet, last_used_ip)
					WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, tenantID, ids, addrs)
			}
			if ids := sessions[tenantID]; len(ids) > 0 {
				b.Queue(`UPDATE auth.sessions SET last_seen_at = greatest(last_seen_at, now()) WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, tenantID, ids)
			}
		}
		err := inTx(ctx, c.db.App, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
		if err != nil && ctx.Err() == nil {
			// Last use is a hint shown to people: it is not tried again.
			c.log.Warn("credential cache: could not record uses of keys and sessions", "tenants", len(chunk), "err", err)
		}
	}
}

// announceCredentials announces on CredentialChannel, when tx commits, that
// the credentials of a kind (key, session, user) with these ids end or
// change; kind tenant with the one id "" stands for all of the tenant's.
// The application sends it, not a trigger, on the connection that makes
// the change: on Citus that is the coordinator, where the servers listen.
// A trigger would fire on the worker holding the shard, where nobody
// listens, and a worker's transaction that sent a NOTIFY cannot be
// prepared for the two-phase commit; the coordinator's own transaction is
// not prepared, so a notice there commits with the rest.
func announceCredentials(ctx context.Context, tx pgx.Tx, kind, tenantID string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2 || ':' || $3 || ':' || id) FROM unnest($4::text[]) id`,
		CredentialChannel, kind, tenantID, ids)
	return err
}

// announceSuspended announces, when a tenant leaves the active status
// (suspended by an operator or by its subscription), that its keys and
// sessions are void: requests refuse the tenant on its status in the
// tenant cache anyway, and every process drops its credentials from
// memory.
func announceSuspended(ctx context.Context, tx pgx.Tx, tenantID string, from, to tenancy.Status) error {
	if from == to || to == tenancy.StatusActive {
		return nil
	}
	return announceCredentials(ctx, tx, "tenant", tenantID, "")
}

// announceCompleted announces, when a session's second factor was given
// (newToken set), that its old token is void: every process drops the
// person's sessions it holds, and reads them again on their next request.
func announceCompleted(ctx context.Context, tx pgx.Tx, tenantID, userID, newToken string) error {
	if newToken == "" {
		return nil
	}
	return announceCredentials(ctx, tx, "user", tenantID, userID)
}

// CachedAPIKeyService is an APIKeyService whose keys are verified from a
// CredentialCache.
type CachedAPIKeyService struct {
	*APIKeyService
	c *CredentialCache
}

var _ tenancy.APIKeyService = (*CachedAPIKeyService)(nil)

// Cached returns the service verifying keys through c.
func (s *APIKeyService) Cached(c *CredentialCache) *CachedAPIKeyService {
	return &CachedAPIKeyService{APIKeyService: s, c: c}
}

// AuthenticateAPIKey returns the live key matching secret, from memory
// when it was verified before and nothing has been heard of it since. The
// key returned is shared: callers must not change it. It carries what
// authenticates a request and what it may reach: id, tenant, name, prefix,
// creation time, scope and expiry.
func (s *CachedAPIKeyService) AuthenticateAPIKey(ctx context.Context, secret, addr string) (*tenancy.APIKey, error) {
	c := s.c
	if !c.live.Load() {
		return s.APIKeyService.AuthenticateAPIKey(ctx, secret, addr)
	}
	h := hashOf(secret)
	c.mu.RLock()
	e := c.keys[string(h[:])]
	gen := c.gen
	c.mu.RUnlock()
	if e != nil {
		if due(&e.touched, time.Now()) {
			c.queueKeyUse(e.key.TenantID, e.key.ID, addr)
		}
		return &e.key, nil
	}
	k, err := s.APIKeyService.AuthenticateAPIKey(ctx, secret, addr)
	if err != nil {
		return nil, err
	}
	e = &cachedKey{key: tenancy.APIKey{ID: k.ID, TenantID: k.TenantID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, APIKeyScope: k.APIKeyScope}}
	e.touched.Store(time.Now().UnixNano())
	// A notice heard while the key was read may not be in k: keep it only
	// if none was.
	c.mu.Lock()
	if c.live.Load() && c.gen == gen {
		hash := string(h[:])
		c.keys[hash] = e
		c.keyIDs[k.ID] = hash
	}
	c.mu.Unlock()
	return &e.key, nil
}

// RevokeAPIKey revokes the key, and forgets it here at once; other
// processes forget it on the notice.
func (s *CachedAPIKeyService) RevokeAPIKey(ctx context.Context, tenantID, prefix string) (*tenancy.APIKey, error) {
	k, err := s.APIKeyService.RevokeAPIKey(ctx, tenantID, prefix)
	if err == nil {
		s.c.forgetKey(k.ID)
	}
	return k, err
}

// CachedAuthService is an AuthService whose sessions are verified from a
// CredentialCache.
type CachedAuthService struct {
	*AuthService
	c *CredentialCache
}

var _ tenancy.AuthService = (*CachedAuthService)(nil)

// Cached returns the service verifying sessions through c.
func (s *AuthService) Cached(c *CredentialCache) *CachedAuthService {
	return &CachedAuthService{AuthService: s, c: c}
}

// Identify returns who holds a session token, from memory when the
// session was verified before, nothing has been heard of it since, and it
// has neither expired nor been idle here for IdleTimeout (another process
// may have seen it since: then the database decides). The identity
// returned is shared: callers must not change it.
func (s *CachedAuthService) Identify(ctx context.Context, tenantID, token string) (*tenancy.Identity, error) {
	c := s.c
	if !c.live.Load() {
		return s.AuthService.Identify(ctx, tenantID, token)
	}
	k := sessionKey{tenantID, hashOf(token)}
	c.mu.RLock()
	e := c.sessions[k]
	gen := c.gen
	c.mu.RUnlock()
	now := time.Now()
	if e != nil {
		if now.Before(e.expires) && now.UnixNano()-e.seen.Load() <= int64(tenancy.IdleTimeout) {
			e.seen.Store(now.UnixNano())
			if due(&e.touched, now) {
				c.queueTouch(c.sessionTouches, tenantID, e.id.SessionID)
			}
			return e.id, nil
		}
		c.forgetSessionKey(k)
		gen++
	}
	id, expires, err := s.AuthService.identify(ctx, tenantID, token)
	if err != nil {
		return nil, err
	}
	e = &cachedSession{id: id, expires: expires}
	e.seen.Store(now.UnixNano())
	e.touched.Store(now.UnixNano())
	c.mu.Lock()
	if c.live.Load() && c.gen == gen {
		c.sessions[k] = e
		c.sessionIDs[id.SessionID] = k
		uk := tenantID + ":" + id.User.ID
		if c.users[uk] == nil {
			c.users[uk] = map[sessionKey]struct{}{}
		}
		c.users[uk][k] = struct{}{}
	}
	c.mu.Unlock()
	return id, nil
}

// SignOut ends the session, and forgets it here at once.
func (s *CachedAuthService) SignOut(ctx context.Context, tenantID, token string) error {
	err := s.AuthService.SignOut(ctx, tenantID, token)
	if err == nil {
		s.c.forgetSessionKey(sessionKey{tenantID, hashOf(token)})
	}
	return err
}

// ResetPassword sets a new password and ends the account's sessions, here
// at once.
func (s *CachedAuthService) ResetPassword(ctx context.Context, tenantID, token, password string) (*tenancy.User, error) {
	u, err := s.AuthService.ResetPassword(ctx, tenantID, token, password)
	if err == nil {
		s.c.forgetUser(tenantID, u.ID)
	}
	return u, err
}

// CachedMemberService is a MemberService that makes a member's role change
// or removal take effect here at once; other processes hear of it from
// the notice.
type CachedMemberService struct {
	*MemberService
	c *CredentialCache
}

var _ tenancy.MemberService = (*CachedMemberService)(nil)

// Cached returns the service forgetting changed members' sessions in c.
func (s *MemberService) Cached(c *CredentialCache) *CachedMemberService {
	return &CachedMemberService{MemberService: s, c: c}
}

// UpdateMember changes a member's role.
func (s *CachedMemberService) UpdateMember(ctx context.Context, tenantID, userRef string, role tenancy.Role, actor tenancy.Actor) (*tenancy.MemberInfo, tenancy.Role, error) {
	m, was, err := s.MemberService.UpdateMember(ctx, tenantID, userRef, role, actor)
	if err == nil {
		s.c.forgetUser(tenantID, m.UserID)
	}
	return m, was, err
}

// RemoveMember takes a member's role away.
func (s *CachedMemberService) RemoveMember(ctx context.Context, tenantID, userRef string, actor tenancy.Actor) (*tenancy.MemberInfo, error) {
	m, err := s.MemberService.RemoveMember(ctx, tenantID, userRef, actor)
	if err == nil {
		s.c.forgetUser(tenantID, m.UserID)
	}
	return m, err
}
