package postgres

import (
	"context"
	"sync"
)

// tenantMemo remembers one value per tenant, derived from the tenant's
// rows, and forgets it whenever the TenantCache hears that tenant change
// (every change is announced on ChangeChannel), or everything when the
// TenantCache starts over. While the TenantCache is not listening, changes
// could be missed, so it reads through. The brand look and the logo list
// are kept this way, for every page view.
type tenantMemo[V any] struct {
	tc *TenantCache

	mu      sync.RWMutex
	entries map[string]V
	gen     uint64 // counts forgets
}

func newTenantMemo[V any](tc *TenantCache) *tenantMemo[V] {
	m := &tenantMemo[V]{tc: tc, entries: map[string]V{}}
	tc.OnChange(m.forget)
	return m
}

// forget drops one tenant's value, or every value for "".
func (m *tenantMemo[V]) forget(tenantID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	if tenantID == "" {
		m.entries = map[string]V{}
		return
	}
	delete(m.entries, tenantID)
}

// get returns the tenant's value from memory, or loads and remembers it.
// The value is shared: callers must not change it.
func (m *tenantMemo[V]) get(ctx context.Context, tenantID string, load func(context.Context, string) (V, error)) (V, error) {
	if !m.tc.live.Load() {
		return load(ctx, tenantID)
	}
	m.mu.RLock()
	v, hit := m.entries[tenantID]
	gen := m.gen
	m.mu.RUnlock()
	if hit {
		return v, nil
	}
	v, err := load(ctx, tenantID)
	if err != nil {
		return v, err
	}
	// A change heard while loading may not be in v: keep it only if none was.
	m.mu.Lock()
	if m.tc.live.Load() && m.gen == gen {
		m.entries[tenantID] = v
	}
	m.mu.Unlock()
	return v, nil
}
