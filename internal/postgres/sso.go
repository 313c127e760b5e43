package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// SSOService implements tenancy.SSOService on the application role.
// Client secrets are sealed with Sealer before they reach the database.
type SSOService struct {
	db     *DB
	sealer tenancy.Sealer
}

var _ tenancy.SSOService = (*SSOService)(nil)

// NewSSOService returns an SSOService using db, sealing secrets with sealer.
func NewSSOService(db *DB, sealer tenancy.Sealer) *SSOService {
	return &SSOService{db: db, sealer: sealer}
}

var errNoSSO = tenancy.Errorf(tenancy.ENOTFOUND, "This workspace has no single sign-on provider.")

// sealContext binds a sealed secret to its tenant: a value copied into
// another tenant's row does not open.
func sealContext(tenantID string) string { return "sso-client-secret|" + strings.ToLower(tenantID) }

// SSOConfig returns the tenant's provider.
func (s *SSOService) SSOConfig(ctx context.Context, tenantID string) (*tenancy.SSOConfig, error) {
	if !tenancy.IsUUID(tenantID) {
		return nil, errNoSSO
	}
	var c *tenancy.SSOConfig
	var sealed []byte
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		c = &tenancy.SSOConfig{TenantID: tenantID}
		return rows.Scan(&c.Issuer, &c.ClientID, &sealed, &c.DisplayName, &c.Domains, &c.DefaultRole, &c.RequireSSO, &c.UpdatedAt)
	}, `
		SELECT issuer, client_id, client_secret, display_name, email_domains, default_role, require_sso, updated_at
		FROM tenants.tenant_sso WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("read single sign-on: %w", err)
	}
	if c == nil {
		return nil, errNoSSO
	}
	if plain, err := s.sealer.Open(sealed, sealContext(tenantID)); err != nil {
		c.SecretUnreadable = true
	} else {
		c.ClientSecret = string(plain)
	}
	return c, nil
}

// SignInProvider returns the tenant's provider as its sign-in page shows
// it, without the client secret, or nil when it has none.
func (s *SSOService) SignInProvider(ctx context.Context, tenantID string) (*tenancy.SSOConfig, error) {
	c, err := s.SSOConfig(ctx, tenantID)
	if tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	c.ClientSecret = ""
	return c, nil
}

// SaveSSOConfig stores the tenant's provider. Turning "require single
// sign-on" on ends, in the same transaction, every session of a non-owner
// that was not opened through the provider.
func (s *SSOService) SaveSSOConfig(ctx context.Context, tenantID string, c *tenancy.SSOConfig) (*tenancy.SSOConfig, error) {
	var sealed []byte
	if c.ClientSecret != "" {
		var err error
		if sealed, err = s.sealer.Seal([]byte(c.ClientSecret), sealContext(tenantID)); err != nil {
			return nil, fmt.Errorf("seal client secret: %w", err)
		}
	}
	if c.Domains == nil {
		c.Domains = []string{}
	}
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var before *tenancy.SSOConfig
		rows, err := tx.Query(ctx, `
			SELECT issuer, client_id, display_name, email_domains, default_role, require_sso
			FROM tenants.tenant_sso WHERE tenant_id = $1 FOR UPDATE`, tenantID)
		if err != nil {
			return err
		}
		before, err = pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (*tenancy.SSOConfig, error) {
			b := &tenancy.SSOConfig{}
			return b, r.Scan(&b.Issuer, &b.ClientID, &b.DisplayName, &b.Domains, &b.DefaultRole, &b.RequireSSO)
		})
		if errors.Is(err, pgx.ErrNoRows) {
			before = nil
		} else if err != nil {
			return err
		}
		if before == nil && sealed == nil {
			return tenancy.FieldErrorf(tenancy.EINVALID, "client_secret", "Enter the client secret the provider gave this application.")
		}
		write := `
			UPDATE tenants.tenant_sso SET
				issuer = $2, client_id = $3, client_secret = coalesce($4, client_secret),
				display_name = $5, email_domains = $6, default_role = $7, require_sso = $8
			WHERE tenant_id = $1
			RETURNING updated_at`
		if before == nil {
			write = `
			INSERT INTO tenants.tenant_sso (tenant_id, issuer, client_id, client_secret, display_name, email_domains, default_role, require_sso)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			RETURNING updated_at`
		}
		if err := tx.QueryRow(ctx, write, tenantID, c.Issuer, c.ClientID, sealed, c.DisplayName, c.Domains, c.DefaultRole, c.RequireSSO).Scan(&c.UpdatedAt); err != nil {
			return err
		}
		// Every process's sign-in page shows the provider from memory
		// (SSOCache), and drops it on this notice.
		if err := notifyChange(ctx, tx, tenantID); err != nil {
			return err
		}
		summary := ssoChanges(before, c, sealed != nil)
		if c.RequireSSO && (before == nil || !before.RequireSSO) {
			rows, err := tx.Query(ctx, `
				DELETE FROM auth.sessions s
				WHERE s.tenant_id = $1
				  AND NOT EXISTS (SELECT 1 FROM tenants.tenant_members m
				                  WHERE m.tenant_id = $1 AND m.user_id = s.user_id AND m.role = 'owner')
				  AND NOT EXISTS (SELECT 1 FROM auth.sso_sessions o
				                  WHERE o.tenant_id = $1 AND o.session_id = s.id)
				RETURNING s.id`, tenantID)
			if err != nil {
				return err
			}
			ended, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			if err := announceCredentials(ctx, tx, "session", tenantID, ended...); err != nil {
				return err
			}
			summary = append(summary, fmt.Sprintf("%d password session(s) of non-owners ended", len(ended)))
		}
		if len(summary) == 0 {
			return nil
		}
		return recordAudit(ctx, tx, tenantID, "sso.configure", c.DisplayName, strings.Join(summary, "; "))
	})
	if err != nil {
		if tenancy.ErrorCode(err) != tenancy.EINTERNAL {
			return nil, err
		}
		return nil, fmt.Errorf("save single sign-on: %w", translate(err))
	}
	c.TenantID = tenantID
	return c, nil
}

// ssoChanges says what a save changed, for the audit log; the secret only
// as "changed".
func ssoChanges(before, after *tenancy.SSOConfig, secret bool) []string {
	if before == nil {
		return []string{fmt.Sprintf("provider %s added: issuer %s, client %s, domains %s, new people %s, require single sign-on %v",
			after.DisplayName, after.Issuer, after.ClientID, domainList(after.Domains), after.DefaultRole, after.RequireSSO)}
	}
	var out []string
	add := func(field, from, to string) {
		if from != to {
			out = append(out, tenancy.Changed(field, from, to))
		}
	}
	add("name", before.DisplayName, after.DisplayName)
	add("issuer", before.Issuer, after.Issuer)
	add("client id", before.ClientID, after.ClientID)
	if !slices.Equal(before.Domains, after.Domains) {
		add("domains", domainList(before.Domains), domainList(after.Domains))
	}
	add("new people", string(before.DefaultRole), string(after.DefaultRole))
	add("require single sign-on", fmt.Sprint(before.RequireSSO), fmt.Sprint(after.RequireSSO))
	if secret {
		out = append(out, "client secret changed")
	}
	return out
}

func domainList(d []string) string {
	if len(d) == 0 {
		return "(any)"
	}
	return strings.Join(d, ", ")
}

// DeleteSSOConfig removes the tenant's provider.
func (s *SSOService) DeleteSSOConfig(ctx context.Context, tenantID string) error {
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var name string
		err := tx.QueryRow(ctx, `DELETE FROM tenants.tenant_sso WHERE tenant_id = $1 RETURNING display_name`, tenantID).Scan(&name)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoSSO
		} else if err != nil {
			return err
		}
		if err := notifyChange(ctx, tx, tenantID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "sso.remove", name, "provider removed: everyone signs in with a password")
	})
	if err != nil && tenancy.ErrorCode(err) == tenancy.EINTERNAL {
		return fmt.Errorf("remove single sign-on: %w", err)
	}
	return err
}

// SSOSignIn signs in the tenant's user with the identity's verified email,
// creating the user (and the membership) on a first sign-in. Additions are
// serialized with the member service's, on the same advisory lock, so two
// first sign-ins cannot both take the plan's last place.
func (s *SSOService) SSOSignIn(ctx context.Context, tenantID string, who tenancy.SSOIdentity, meta tenancy.SessionMeta) (string, *tenancy.Identity, bool, error) {
	c, err := s.SSOConfig(ctx, tenantID)
	if err != nil {
		return "", nil, false, err
	}
	email, err := tenancy.CheckSSOIdentity(c, who)
	if err != nil {
		return "", nil, false, err
	}
	if meta.ClientIP != "" {
		a := tenancy.AuditActorFrom(ctx)
		a.Addr = meta.ClientIP
		ctx = tenancy.WithAuditActor(ctx, a)
	}
	var token string
	var created bool
	id := &tenancy.Identity{User: &tenancy.User{TenantID: tenantID}}
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		if err := lockMembers(ctx, tx, tenantID); err != nil {
			return err
		}
		var role *string
		err := tx.QueryRow(ctx, `
			SELECT u.id, u.email, u.name, u.created_at, m.role
			FROM auth.users u
			LEFT JOIN tenants.tenant_members m ON m.tenant_id = u.tenant_id AND m.user_id = u.id
			WHERE u.tenant_id = $1 AND u.email_lower = lower($2)
			FOR NO KEY UPDATE OF u`, tenantID, email).Scan(&id.User.ID, &id.User.Email, &id.User.Name, &id.User.CreatedAt, &role)
		known := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if role == nil {
			// A first sign-in: within the plan's member limit.
			var slug string
			var plan tenancy.Plan
			var members int64
			// Two statements, each naming the tenant: a distributed
			// PostgreSQL routes the count to the tenant's shard.
			if err := tx.QueryRow(ctx, `
				SELECT t.slug, p.name, p.max_users
				FROM tenants.tenants t JOIN public.billing_plans p ON p.name = t.plan
				WHERE t.id = $1`, tenantID).Scan(&slug, &plan.Name, &plan.MaxUsers); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenants.tenant_members WHERE tenant_id = $1`, tenantID).Scan(&members); err != nil {
				return err
			}
			if plan.MaxUsers != tenancy.Unlimited && members >= plan.MaxUsers {
				return tenancy.SSOSeatsFull(slug, plan)
			}
			if !known {
				if err := tx.QueryRow(ctx, `
					INSERT INTO auth.users (tenant_id, email, name) VALUES ($1, $2, left($3, 200))
					RETURNING id, email, name, created_at`, tenantID, email, who.Name).
					Scan(&id.User.ID, &id.User.Email, &id.User.Name, &id.User.CreatedAt); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, $3)`,
				tenantID, id.User.ID, c.DefaultRole); err != nil {
				return err
			}
			r := string(c.DefaultRole)
			role, created = &r, true
			if err := recordAudit(actingUser(ctx, id.User), tx, tenantID, "member.add", id.User.Email,
				fmt.Sprintf("first sign-in with %s: %s", c.DisplayName, tenancy.Changed("role", "", r))); err != nil {
				return err
			}
		}
		id.Role = tenancy.Role(*role)
		if _, err := tx.Exec(ctx, `UPDATE auth.users SET last_sign_in_at = now() WHERE tenant_id = $1 AND id = $2`, tenantID, id.User.ID); err != nil {
			return err
		}
		secret, err := openSession(ctx, tx, tenantID, id, meta)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO auth.sso_sessions (tenant_id, session_id, issuer, subject) VALUES ($1, $2, $3, left($4, 255))`,
			tenantID, id.SessionID, c.Issuer, who.Subject); err != nil {
			return err
		}
		token = secret
		return recordAudit(actingUser(ctx, id.User), tx, tenantID, "user.sign_in", id.User.Email,
			fmt.Sprintf("single sign-on with %s (subject %s), role: %s", c.DisplayName, who.Subject, id.Role))
	})
	if err != nil {
		if tenancy.ErrorCode(err) != tenancy.EINTERNAL {
			return "", nil, false, err
		}
		return "", nil, false, fmt.Errorf("single sign-on: %w", translate(err))
	}
	return token, id, created, nil
}

// RecordSSOEvent adds one entry to the tenant's audit log.
func (s *SSOService) RecordSSOEvent(ctx context.Context, tenantID, action, target, summary string) error {
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		return recordAudit(ctx, tx, tenantID, action, target, summary)
	})
	if err != nil {
		return fmt.Errorf("record %s: %w", action, err)
	}
	return nil
}
