package postgres

import (
	"context"
	"time"
)

// AgeUses makes every use the cache recorded look d older, so the next
// one is due to be written.
func (c *CredentialCache) AgeUses(d time.Duration) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.keys {
		e.touched.Add(-int64(d))
	}
	for _, e := range c.sessions {
		e.touched.Add(-int64(d))
	}
}

// WriteUses writes the uses recorded so far.
func (c *CredentialCache) WriteUses(ctx context.Context) { c.writeTouches(ctx) }

// Held counts the keys and sessions of a tenant the cache holds.
func (c *CredentialCache) Held(tenantID string) (keys, sessions int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.keys {
		if e.key.TenantID == tenantID {
			keys++
		}
	}
	for k := range c.sessions {
		if k.tenantID == tenantID {
			sessions++
		}
	}
	return keys, sessions
}

// Live reports whether the cache's listener is connected and listening.
func (c *CredentialCache) Live() bool { return c.live.Load() }

// Live reports whether the cache's listener is connected and listening.
func (c *TenantCache) Live() bool { return c.live.Load() }
