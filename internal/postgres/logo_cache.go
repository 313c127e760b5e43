package postgres

import (
	"context"
	"sync"

	"github.com/nself/nself/internal/tenancy"
)

// LogoCache is a LogoService whose reads of a tenant's logo list come from
// memory, so every page can show the tenant's logo and /logo/{kind} can
// answer If-None-Match without a query. It follows the TenantCache's
// invalidation: every logo change is announced on ChangeChannel, and the
// TenantCache passes each tenant it hears of on, so one listening
// connection serves both; while the TenantCache is not listening, reads go
// to the database. Bytes are not cached: they are read from object storage
// only when a browser does not have them yet.
type LogoCache struct {
	*LogoService
	tc *TenantCache

	mu      sync.RWMutex
	entries map[string][]*tenancy.Logo // by tenant id; an empty list is a known "none"
	gen     uint64
}

var _ tenancy.LogoService = (*LogoCache)(nil)

// Cached returns s with its lists served from memory, invalidated through tc.
func (s *LogoService) Cached(tc *TenantCache) *LogoCache {
	c := &LogoCache{LogoService: s, tc: tc, entries: map[string][]*tenancy.Logo{}}
	tc.OnChange(c.forget)
	return c
}

// forget drops one tenant's list, or every list for "".
func (c *LogoCache) forget(tenantID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if tenantID == "" {
		c.entries = map[string][]*tenancy.Logo{}
		return
	}
	delete(c.entries, tenantID)
}

// ListLogos returns the tenant's logos from memory when it can. The list
// is shared: callers must not change it.
func (c *LogoCache) ListLogos(ctx context.Context, tenantID string) ([]*tenancy.Logo, error) {
	if !c.tc.live.Load() {
		return c.LogoService.ListLogos(ctx, tenantID)
	}
	c.mu.RLock()
	list, hit := c.entries[tenantID]
	gen := c.gen
	c.mu.RUnlock()
	if hit {
		return list, nil
	}
	list, err := c.LogoService.ListLogos(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []*tenancy.Logo{}
	}
	// A change announced while the query ran may not be in its result.
	c.mu.Lock()
	if c.tc.live.Load() && c.gen == gen {
		c.entries[tenantID] = list
	}
	c.mu.Unlock()
	return list, nil
}

// Logo returns the tenant's logo of that kind from the cached list, or nil.
func (c *LogoCache) Logo(ctx context.Context, tenantID string, kind tenancy.LogoKind) (*tenancy.Logo, error) {
	list, err := c.ListLogos(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for _, l := range list {
		if l.Kind == kind {
			return l, nil
		}
	}
	return nil, nil
}

// GetLogo returns the logo, found in the cached list, and its bytes.
func (c *LogoCache) GetLogo(ctx context.Context, tenantID string, kind tenancy.LogoKind) (*tenancy.Logo, []byte, error) {
	if err := checkLogoRef(tenantID, kind); err != nil {
		return nil, nil, err
	}
	list, err := c.ListLogos(ctx, tenantID)
	if err != nil {
		return nil, nil, err
	}
	return c.open(ctx, list, kind)
}

// UploadLogo uploads, and forgets the tenant's list at once in this
// process: the notification may arrive after the next page view.
func (c *LogoCache) UploadLogo(ctx context.Context, tenantID string, kind tenancy.LogoKind, data []byte) (*tenancy.Logo, error) {
	l, err := c.LogoService.UploadLogo(ctx, tenantID, kind, data)
	c.forget(tenantID)
	return l, err
}

// RemoveLogo removes, and forgets the tenant's list at once.
func (c *LogoCache) RemoveLogo(ctx context.Context, tenantID string, kind tenancy.LogoKind) (*tenancy.Logo, error) {
	l, err := c.LogoService.RemoveLogo(ctx, tenantID, kind)
	c.forget(tenantID)
	return l, err
}
