package main

import (
	"log/slog"
	"time"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/secretbox"
	"github.com/nself/nself/internal/sso"
	"github.com/nself/nself/web"
)

// ssoPurpose keys the box of client secrets apart from every other use of
// the same setting.
const ssoPurpose = "sso-client-secret"

// serveSSO turns single sign-on on when a key can seal client secrets:
// SSO_SECRET_KEY, else SESSION_SECRET. Without either the key would change
// at every start and stored secrets would never open again, so single
// sign-on stays off (no routes, no menu entry).
func (a *app) serveSSO(s *web.Server, db *postgres.DB, log *slog.Logger) {
	key := a.cfg.SSOSecretKey
	if key == "" {
		key = a.cfg.SessionSecret
	}
	if key == "" {
		log.Warn("single sign-on is off: set SSO_SECRET_KEY (or SESSION_SECRET) so tenants' client secrets can be stored")
		return
	}
	box, err := secretbox.New([]byte(key), ssoPurpose)
	if err != nil {
		log.Warn("single sign-on is off", "err", err)
		return
	}
	// The sign-in page's provider from memory, following the tenant cache.
	s.SSO = postgres.NewSSOService(db, box).Cached(a.svc.Cache)
	s.SSOProvider = sso.New(time.Duration(a.cfg.SSOTimeout))
}
