package main

import (
	"fmt"
	"log/slog"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/internal/totp"
)

// twoFactor is two-factor authentication, sealing secrets with
// TOTP_ENCRYPTION_KEY; nil, and a warning, without the key.
func (a *app) twoFactor(db *postgres.DB, log *slog.Logger) (tenancy.TwoFactorService, error) {
	if a.cfg.TOTPEncryptionKey == "" {
		log.Warn("TOTP_ENCRYPTION_KEY is not set: two-factor authentication is off")
		return nil, nil
	}
	key, err := totp.ParseKey(a.cfg.TOTPEncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("invalid TOTP_ENCRYPTION_KEY: %w", err)
	}
	sealer, err := totp.NewSealer(key)
	if err != nil {
		return nil, fmt.Errorf("invalid TOTP_ENCRYPTION_KEY: %w", err)
	}
	return postgres.NewTwoFactorService(db, totp.TOTP{}, sealer), nil
}
