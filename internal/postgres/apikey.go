package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// APIKeyService implements tenancy.APIKeyService on the application role.
//
// A key reads nsk_<tenant id, 32 hex digits>_<secret>. Naming its tenant
// lets a request be checked in that tenant's context alone, without a
// lookup across tenants, and lets a header naming another tenant be refused
// before any query. Only a hash of the whole key is stored.
type APIKeyService struct {
	db *DB
}

var _ tenancy.APIKeyService = (*APIKeyService)(nil)

// NewAPIKeyService returns an APIKeyService using db.
func NewAPIKeyService(db *DB) *APIKeyService { return &APIKeyService{db: db} }

const apiKeyPrefix = "nsk_"

// ParseAPIKey returns the tenant id a key names, or false if it is not
// shaped like a key.
func ParseAPIKey(key string) (tenantID string, ok bool) {
	rest, found := strings.CutPrefix(key, apiKeyPrefix)
	hexID, secret, found2 := strings.Cut(rest, "_")
	if !found || !found2 || len(hexID) != 32 || len(secret) < 32 {
		return "", false
	}
	id := hexID[:8] + "-" + hexID[8:12] + "-" + hexID[12:16] + "-" + hexID[16:20] + "-" + hexID[20:]
	if !tenancy.IsUUID(id) {
		return "", false
	}
	return strings.ToLower(id), true
}

const apiKeyColumns = `id, tenant_id, name, prefix, coalesce(created_by::text, ''), created_at, last_used_at, revoked_at,
	read_only, api_access, gateway_access, expires_at, coalesce(host(last_used_ip), '')`

func scanAPIKey(row pgx.Row) (*tenancy.APIKey, error) {
	var k tenancy.APIKey
	err := row.Scan(&k.ID, &k.TenantID, &k.Name, &k.Prefix, &k.CreatedBy, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt,
		&k.ReadOnly, &k.API, &k.Gateway, &k.ExpiresAt, &k.LastUsedFrom)
	return &k, err
}

// CreateAPIKey makes a key that reads and writes on both surfaces and
// never expires; the returned secret is shown once.
func (s *APIKeyService) CreateAPIKey(ctx context.Context, tenantID, name, createdBy string) (*tenancy.APIKey, string, error) {
	return s.CreateScopedAPIKey(ctx, tenantID, name, createdBy, tenancy.FullAPIKeyScope)
}

// CreateScopedAPIKey makes a key limited to scope; the returned secret is
// shown once.
func (s *APIKeyService) CreateScopedAPIKey(ctx context.Context, tenantID, name, createdBy string, scope tenancy.APIKeyScope) (*tenancy.APIKey, string, error) {
	name = strings.TrimSpace(name)
	if err := tenancy.ValidateName("name", name); err != nil {
		return nil, "", err
	}
	if err := tenancy.ValidateAPIKeyScope(scope, time.Now()); err != nil {
		return nil, "", err
	}
	if len([]rune(name)) > 100 {
		return nil, "", tenancy.FieldErrorf(tenancy.EINVALID, "name", "name is too long: at most 100 characters")
	}
	secret, _ := tenancy.NewSecret()
	key := apiKeyPrefix + strings.ReplaceAll(tenantID, "-", "") + "_" + secret
	prefix := apiKeyPrefix + secret[:8]
	var creator any
	if createdBy != "" {
		creator = createdBy
	}
	var k *tenancy.APIKey
	err := changeTenant(ctx, s.db.App, tenantID, createdBy, func(tx pgx.Tx) error {
		var err error
		k, err = scanAPIKey(tx.QueryRow(ctx, `
			INSERT INTO auth.api_keys (tenant_id, name, prefix, key_hash, created_by, read_only, api_access, gateway_access, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			RETURNING `+apiKeyColumns, tenantID, name, prefix, tenancy.HashSecret(key), creator,
			scope.ReadOnly, scope.API, scope.Gateway, scope.ExpiresAt))
		if err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "api_key.create", k.Prefix, "name: "+k.Name+", "+describeScope(k.APIKeyScope))
	})
	if err != nil {
		return nil, "", fmt.Errorf("create API key: %w", translate(err))
	}
	return k, key, nil
}

// ListAPIKeys lists a tenant's keys, newest first, revoked ones included.
func (s *APIKeyService) ListAPIKeys(ctx context.Context, tenantID string) ([]*tenancy.APIKey, error) {
	var keys []*tenancy.APIKey
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		var err error
		keys, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.APIKey, error) { return scanAPIKey(r) })
		return err
	}, `SELECT `+apiKeyColumns+` FROM auth.api_keys WHERE tenant_id = $1 ORDER BY created_at DESC`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes a key by its prefix.
func (s *APIKeyService) RevokeAPIKey(ctx context.Context, tenantID, prefix string) (*tenancy.APIKey, error) {
	var k *tenancy.APIKey
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var was *time.Time
		err := tx.QueryRow(ctx, `SELECT revoked_at FROM auth.api_keys WHERE tenant_id = $1 AND prefix = $2 FOR UPDATE`,
			tenantID, prefix).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenancy.Errorf(tenancy.ENOTFOUND, "no API key with prefix %s", tenancy.Quote(prefix))
		} else if err != nil {
			return err
		}
		k, err = scanAPIKey(tx.QueryRow(ctx, `
			UPDATE auth.api_keys SET revoked_at = coalesce(revoked_at, $3)
			WHERE tenant_id = $1 AND prefix = $2
			RETURNING `+apiKeyColumns, tenantID, prefix, s.db.Now()))
		if err != nil || was != nil {
			return err
		}
		if err := announceCredentials(ctx, tx, "key", tenantID, k.ID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "api_key.revoke", k.Prefix, "name: "+k.Name)
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// describeScope says what a key may do, for the audit log.
func describeScope(sc tenancy.APIKeyScope) string {
	var parts []string
	if sc.ReadOnly {
		parts = append(parts, "read-only")
	} else {
		parts = append(parts, "read-write")
	}
	if sc.API {
		parts = append(parts, "tenant API")
	}
	if sc.Gateway {
		parts = append(parts, "gateway")
	}
	if sc.ExpiresAt != nil {
		parts = append(parts, "expires "+sc.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	} else {
		parts = append(parts, "no expiry")
	}
	return strings.Join(parts, ", ")
}

var errBadKey = tenancy.Errorf(tenancy.ENOTFOUND, "invalid or revoked API key")

// AuthenticateAPIKey finds the live key matching secret, in the context of
// the tenant the key names. It runs on every API request: one round trip,
// plus a write at most once a minute to record the key's use.
func (s *APIKeyService) AuthenticateAPIKey(ctx context.Context, secret, addr string) (*tenancy.APIKey, error) {
	tenantID, ok := ParseAPIKey(secret)
	if !ok {
		return nil, errBadKey
	}
	var k *tenancy.APIKey
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		var err error
		k, err = scanAPIKey(rows)
		return err
	}, `
		SELECT `+apiKeyColumns+` FROM auth.api_keys
		WHERE tenant_id = $1 AND key_hash = $2 AND revoked_at IS NULL`, tenantID, tenancy.HashSecret(secret))
	if err != nil {
		return nil, fmt.Errorf("authenticate API key: %w", err)
	}
	if k == nil {
		return nil, errBadKey
	}
	if k.LastUsedAt == nil || time.Since(*k.LastUsedAt) > lastSeenGranularity {
		err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE auth.api_keys SET last_used_at = now(), last_used_ip = $3::inet WHERE tenant_id = $1 AND id = $2`,
				tenantID, k.ID, inetOrNil(addr))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("record API key use: %w", err)
		}
	}
	return k, nil
}

// inetOrNil is addr for an inet column, or NULL when it is not an address.
func inetOrNil(addr string) any {
	if _, err := netip.ParseAddr(addr); err != nil {
		return nil
	}
	return addr
}
