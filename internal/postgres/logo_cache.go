package postgres

import (
	"context"

	"github.com/nself/nself/internal/tenancy"
)

// LogoCache is a LogoService whose reads of a tenant's logo list come from
// memory (a tenantMemo), so every page can show the tenant's logo and
// /logo/{kind} can answer If-None-Match without a query. Bytes are not
// cached: they are read from object storage only when a browser does not
// have them yet.
type LogoCache struct {
	*LogoService
	lists *tenantMemo[[]*tenancy.Logo] // an empty list is a known "none"
}

var _ tenancy.LogoService = (*LogoCache)(nil)

// Cached returns s with its lists served from memory, invalidated through tc.
func (s *LogoService) Cached(tc *TenantCache) *LogoCache {
	return &LogoCache{LogoService: s, lists: newTenantMemo[[]*tenancy.Logo](tc)}
}

// forget drops one tenant's list, or every list for "".
func (c *LogoCache) forget(tenantID string) { c.lists.forget(tenantID) }

// ListLogos returns the tenant's logos from memory when it can. The list
// is shared: callers must not change it.
func (c *LogoCache) ListLogos(ctx context.Context, tenantID string) ([]*tenancy.Logo, error) {
	return c.lists.get(ctx, tenantID, func(ctx context.Context, tenantID string) ([]*tenancy.Logo, error) {
		list, err := c.LogoService.ListLogos(ctx, tenantID)
		if list == nil && err == nil {
			list = []*tenancy.Logo{}
		}
		return list, err
	})
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
