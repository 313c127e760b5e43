package main

import (
	"time"

	"github.com/nself/nself/internal/services"
	"github.com/nself/nself/internal/totp"
)

// sealingKeys gives cfg the keys that seal single sign-on client secrets
// and authenticator secrets, each when it is set. Single sign-on's is
// SSO_SECRET_KEY, else SESSION_SECRET: without either it would change at
// every start and stored secrets would never open again. The settings were
// checked when they were read.
func (a *app) sealingKeys(cfg *services.Config) {
	key := a.cfg.SSOSecretKey
	if key == "" {
		key = a.cfg.SessionSecret
	}
	cfg.SSOKey = []byte(key)
	cfg.SSOTimeout = time.Duration(a.cfg.SSOTimeout)
	if a.cfg.TOTPEncryptionKey != "" {
		cfg.TOTPKey, _ = totp.ParseKey(a.cfg.TOTPEncryptionKey)
	}
}
