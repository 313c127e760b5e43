package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nself/nself/internal/password"
	"github.com/nself/nself/internal/tenancy"
)

// ChangeChannel is the LISTEN/NOTIFY channel on which every change to a
// tenant is announced, with the tenant's id as payload, so that every
// process caching tenants can drop its copy.
const ChangeChannel = "nself_tenant_changed"

// TenantService implements tenancy.TenantService on the platform path.
type TenantService struct {
	db *DB
	// Mode is the platform's TENANT_STRATEGY.
	Mode tenancy.StrategyMode
}

var _ tenancy.TenantService = (*TenantService)(nil)

// NewTenantService returns a TenantService using db.
func NewTenantService(db *DB, mode tenancy.StrategyMode) *TenantService {
	return &TenantService{db: db, Mode: mode}
}

const tenantColumns = `
	id, slug, name, status, plan, coalesce(owner_user_id::text, ''), strategy,
	coalesce(schema_name, ''), coalesce(stripe_customer_id, ''),
	coalesce(stripe_subscription_id, ''), coalesce(subscription_status, ''),
	created_at, updated_at, deleted_at`

func scanTenant(row pgx.Row) (*tenancy.Tenant, error) {
	var t tenancy.Tenant
	err := row.Scan(&t.ID, &t.Slug, &t.Name, &t.Status, &t.Plan, &t.OwnerID, &t.Strategy,
		&t.SchemaName, &t.StripeCustomerID, &t.StripeSubscriptionID, &t.SubscriptionStatus,
		&t.CreatedAt, &t.UpdatedAt, &t.DeletedAt)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateTenant creates the tenant, its schema, its owner's account and
// membership and its first settings in one transaction: a failure at any
// step leaves nothing behind.
func (s *TenantService) CreateTenant(ctx context.Context, in tenancy.NewTenant) (*tenancy.Created, error) {
	if err := tenancy.ValidateName("name", in.Name); err != nil {
		return nil, err
	}
	slug := in.Slug
	if slug == "" {
		slug = tenancy.SlugFromName(in.Name)
		if err := tenancy.ValidateSlug(slug); err != nil {
			return nil, tenancy.FieldErrorf(tenancy.EINVALID, "slug",
				"cannot derive a usable slug from name %s (%s); pass a slug", tenancy.Quote(in.Name), err)
		}
	} else if err := tenancy.ValidateSlug(slug); err != nil {
		return nil, err
	}
	strategy, err := s.Mode.Resolve(in.Strategy)
	if err != nil {
		return nil, err
	}
	plan := in.Plan
	if plan == "" {
		plan = tenancy.DefaultPlan
	}
	var ownerHash any
	if in.OwnerPassword != "" {
		if err := tenancy.ValidatePassword(in.OwnerPassword); err != nil {
			return nil, err
		}
		if ownerHash, err = password.Hash(ctx, in.OwnerPassword); err != nil {
			return nil, fmt.Errorf("create tenant: %w", err)
		}
	}
	owner := strings.TrimSpace(in.Owner)
	ownerIsID := tenancy.IsUUID(owner)
	if owner != "" && !ownerIsID {
		if owner, err = tenancy.NormalizeEmail(owner); err != nil {
			return nil, tenancy.FieldErrorf(tenancy.EINVALID, "owner",
				"owner %s is neither a user id (uuid) nor an email address", tenancy.Quote(in.Owner))
		}
	}

	out := &tenancy.Created{}
	err = inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		if _, err := usablePlan(ctx, tx, plan); err != nil {
			return err
		}
		t, err := s.insertTenant(ctx, tx, slug, in.Name, plan, strategy)
		if err != nil {
			return err
		}
		out.Tenant = t
		id := t.ID
		if _, err := tx.Exec(ctx, `
			INSERT INTO tenants.tenant_settings (tenant_id, key, value)
			VALUES ($1, 'branding.company_name', $2)`, id, in.Name); err != nil {
			return err
		}
		summary := fmt.Sprintf("name: %s, plan: %s, strategy: %s", in.Name, plan, strategy)
		if owner != "" {
			if err := s.createOwner(ctx, tx, out, owner, ownerIsID, ownerHash); err != nil {
				return err
			}
			summary += ", owner: " + out.Owner.Email
		}
		if err := recordAudit(ctx, tx, id, "tenant.create", slug, summary); err != nil {
			return err
		}
		return notifyChange(ctx, tx, id)
	})
	if err != nil {
		return nil, fmt.Errorf("create tenant %s: %w", slug, translate(err))
	}
	return out, nil
}

// insertTenant adds a tenant to the registry under a free slug, with its
// own schema under the schema strategy, and leaves tx in the new tenant's
// context: the rows written after it belong to the tenant.
func (s *TenantService) insertTenant(ctx context.Context, tx pgx.Tx, slug, name, plan string, strategy tenancy.Strategy) (*tenancy.Tenant, error) {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM tenants.tenants WHERE slug = $1`, slug).Scan(&status)
	switch {
	case err == nil && status == string(tenancy.StatusDeleted):
		return nil, tenancy.FieldErrorf(tenancy.ECONFLICT, "slug", "slug %s belonged to a deleted tenant and cannot be reused", tenancy.Quote(slug))
	case err == nil:
		return nil, tenancy.FieldErrorf(tenancy.ECONFLICT, "slug", "slug %s is already taken", tenancy.Quote(slug))
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	}
	id, schema, err := s.newTenantID(ctx, tx, strategy)
	if err != nil {
		return nil, err
	}
	return s.insertTenantAs(ctx, tx, id, schema, slug, name, plan, strategy)
}

// insertTenantAs is insertTenant for an id (and schema name) drawn before
// the transaction, by newTenantID: an import stores the new tenant's
// objects under its id before it writes a row. A schema name taken in the
// meantime fails the insert (tenants_schema_name_key).
func (s *TenantService) insertTenantAs(ctx context.Context, tx pgx.Tx, id, schema, slug, name, plan string, strategy tenancy.Strategy) (*tenancy.Tenant, error) {
	if err := s.db.mayAdd(slug); err != nil {
		return nil, err
	}
	var schemaName any
	if schema != "" {
		schemaName = schema
	}
	t, err := scanTenant(tx.QueryRow(ctx, `
		INSERT INTO tenants.tenants (id, slug, name, plan, strategy, schema_name)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+tenantColumns, id, slug, name, plan, strategy, schemaName))
	if err != nil {
		return nil, err
	}
	if err := setTenant(ctx, tx, id, ""); err != nil {
		return nil, err
	}
	if schema != "" {
		if err := s.createSchema(ctx, tx, id, schema); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// newTenantID picks the new tenant's id and, under the schema strategy, its
// schema name, made of the first 8 hex digits of the id. Those digits can
// repeat between tenants, so an id whose schema name is in use is drawn
// again.
func (s *TenantService) newTenantID(ctx context.Context, q queryRower, strategy tenancy.Strategy) (id, schema string, err error) {
	for range 10 {
		id = uuid.NewString()
		if strategy != tenancy.StrategySchema {
			return id, "", nil
		}
		schema = s.db.SchemaPrefix + strings.ReplaceAll(id, "-", "")[:8]
		var taken bool
		if err := q.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
			    OR EXISTS (SELECT 1 FROM tenants.tenants WHERE schema_name = $1)`, schema).Scan(&taken); err != nil {
			return "", "", err
		}
		if !taken {
			return id, schema, nil
		}
	}
	return "", "", fmt.Errorf("no free schema name after 10 tries")
}

// createSchema creates a tenant's own schema with the tenant tables (the
// built-in ones and the operator's), grants the application role access
// (row-level security inside still limits it to this tenant's rows) and
// records it. tx is in the tenant's context.
func (s *TenantService) createSchema(ctx context.Context, tx pgx.Tx, tenantID, schema string) error {
	// On Citus the schema is a schema-based shard: it and the tables
	// created in it live together on one worker.
	if _, err := tx.Exec(ctx, `
		DO $$ BEGIN
		  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
		    SET LOCAL citus.enable_schema_based_sharding = on;
		  END IF;
		END $$`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO tenants.tenant_schemas (tenant_id, schema_name) VALUES ($1, $2)`, tenantID, schema); err != nil {
		return err
	}
	sources, err := s.db.tenantSources()
	if err != nil {
		return err
	}
	_, err = s.db.applyTenantMigrations(ctx, tx, schema, tenantID, sources)
	return err
}

// createOwner gives the new tenant its owner: a copy of an existing account
// (same id, email and name, and the password when all of the person's
// accounts share it, as it is the same person) or a new
// account for an email, which must set its password through a one-time
// link. tx is in the tenant's context.
func (s *TenantService) createOwner(ctx context.Context, tx pgx.Tx, out *tenancy.Created, owner string, isID bool, passwordHash any) error {
	t := out.Tenant
	u := &tenancy.User{TenantID: t.ID}
	if isID {
		// The platform path may read accounts across tenants (policy
		// platform_read). An account's own times may have come from an
		// imported archive, so they choose nothing: the account in the
		// newest tenant (a time the platform wrote) gives the email's
		// spelling and the name. The accounts must agree on the email, as
		// they are one person's; the password is copied only when every
		// account has the same one, else the owner sets one with a link.
		rows, err := tx.Query(ctx, `
			SELECT u.id, u.email, u.email_lower, u.name, u.password_hash
			FROM auth.users u JOIN tenants.tenants t ON t.id = u.tenant_id
			WHERE u.id = $1
			ORDER BY t.created_at DESC, t.id`, owner)
		if err != nil {
			return err
		}
		type account struct {
			id, email, lower, name string
			hash                   *string
		}
		accounts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (account, error) {
			var a account
			err := r.Scan(&a.id, &a.email, &a.lower, &a.name, &a.hash)
			return a, err
		})
		if err != nil {
			return err
		}
		if len(accounts) == 0 {
			return tenancy.FieldErrorf(tenancy.ENOTFOUND, "owner", "no user with id %s", owner)
		}
		first := accounts[0]
		u.ID, u.Email, u.Name = first.id, first.email, first.name
		hash := first.hash
		for _, a := range accounts[1:] {
			if a.lower != first.lower {
				return tenancy.FieldErrorf(tenancy.ECONFLICT, "owner",
					"the accounts with user id %s have different email addresses; pass the owner's email instead", owner)
			}
			if hash != nil && (a.hash == nil || *a.hash != *hash) {
				hash = nil
			}
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO auth.users (tenant_id, id, email, name, password_hash)
			VALUES ($1, $2, $3, $4, $5) RETURNING created_at`,
			t.ID, u.ID, u.Email, u.Name, hash).Scan(&u.CreatedAt); err != nil {
			return err
		}
		if hash == nil {
			if out.PasswordToken, err = issuePasswordToken(ctx, tx, t.ID, u.ID, "set", tenancy.SetPasswordTokenTTL); err != nil {
				return err
			}
		}
	} else {
		u.Email = owner
		if err := tx.QueryRow(ctx, `
			INSERT INTO auth.users (tenant_id, email, password_hash) VALUES ($1, $2, $3)
			RETURNING id, created_at`, t.ID, owner, passwordHash).Scan(&u.ID, &u.CreatedAt); err != nil {
			return err
		}
		if passwordHash == nil {
			var err error
			if out.PasswordToken, err = issuePasswordToken(ctx, tx, t.ID, u.ID, "set", tenancy.SetPasswordTokenTTL); err != nil {
				return err
			}
		}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO tenants.tenant_members (tenant_id, user_id, role) VALUES ($1, $2, 'owner')`,
		t.ID, u.ID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		UPDATE tenants.tenants SET owner_user_id = $2 WHERE id = $1`, t.ID, u.ID); err != nil {
		return err
	}
	t.OwnerID = u.ID
	out.Owner = u
	// The owner is a new account of the tenant: welcomed, and sent the
	// link that sets a password when it has none.
	return queueWelcome(ctx, tx, t.ID, u, out.PasswordToken)
}

// issuePasswordToken stores the hash of a new one-time secret for the user
// and returns the secret. tx is in the tenant's context.
func issuePasswordToken(ctx context.Context, tx pgx.Tx, tenantID, userID, purpose string, ttl time.Duration) (string, error) {
	secret, hash := tenancy.NewSecret()
	_, err := tx.Exec(ctx, `
		INSERT INTO auth.password_tokens (tenant_id, user_id, token_hash, purpose, expires_at)
		VALUES ($1, $2, $3, $4, now() + $5::interval)`,
		tenantID, userID, hash, purpose, interval(ttl))
	return secret, err
}

func usablePlan(ctx context.Context, tx pgx.Tx, plan string) (*tenancy.Plan, error) {
	p, err := scanPlan(tx.QueryRow(ctx, `SELECT `+planColumns+` FROM public.billing_plans WHERE name = $1`, plan))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		var names string
		if err := tx.QueryRow(ctx, `
			SELECT string_agg(name, ', ' ORDER BY sort_order, name)
			FROM public.billing_plans WHERE archived_at IS NULL`).Scan(&names); err != nil {
			return nil, err
		}
		return nil, tenancy.FieldErrorf(tenancy.ENOTFOUND, "plan", "plan %s does not exist (plans: %s)", tenancy.Quote(plan), names)
	case err != nil:
		return nil, err
	case p.Archived:
		return nil, tenancy.FieldErrorf(tenancy.EINVALID, "plan", "plan %s is archived and takes no new tenants", tenancy.Quote(plan))
	}
	return p, nil
}

func notifyChange(ctx context.Context, tx pgx.Tx, tenantID string) error {
	return announce(ctx, tx, ChangeChannel, tenantID)
}

// announce sends a notice on channel when tx commits; nothing if it does
// not. Notices of one transaction with the same payload arrive as one.
func announce(ctx context.Context, tx pgx.Tx, channel, payload string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload)
	return err
}

// FindTenant finds a tenant by id or slug.
func (s *TenantService) FindTenant(ctx context.Context, ref string) (*tenancy.Tenant, error) {
	return findTenant(ctx, s.db.Admin, ref, false)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func findTenant(ctx context.Context, q queryRower, ref string, forUpdate bool) (*tenancy.Tenant, error) {
	where := `slug = $1`
	if tenancy.IsUUID(ref) {
		where = `id = $1::uuid`
	}
	sql := `SELECT ` + tenantColumns + ` FROM tenants.tenants WHERE ` + where
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	t, err := scanTenant(q.QueryRow(ctx, sql, strings.ToLower(ref)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenancy.Errorf(tenancy.ENOTFOUND, "tenant %s not found", tenancy.Quote(ref))
	}
	return t, err
}

// ListTenants lists tenants, oldest first.
func (s *TenantService) ListTenants(ctx context.Context, f tenancy.TenantFilter) ([]*tenancy.Tenant, int, error) {
	limit := any(nil)
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := s.db.Admin.Query(ctx, `
		SELECT `+tenantColumns+`, count(*) OVER ()
		FROM tenants.tenants
		WHERE ($1 = '' OR status = $1)
		  AND ($1 <> '' OR $2 OR status <> 'deleted')
		  AND ($3 = '' OR plan = $3)
		  AND ($4 = '' OR slug ILIKE $4 ESCAPE '\' OR name ILIKE $4 ESCAPE '\')
		ORDER BY created_at, id
		LIMIT $5 OFFSET $6`,
		string(f.Status), f.IncludeDeleted, f.Plan, likePattern(f.Query), limit, f.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list tenants: %w", translate(err))
	}
	defer rows.Close()
	var out []*tenancy.Tenant
	total := 0
	for rows.Next() {
		var t tenancy.Tenant
		if err := rows.Scan(&t.ID, &t.Slug, &t.Name, &t.Status, &t.Plan, &t.OwnerID, &t.Strategy,
			&t.SchemaName, &t.StripeCustomerID, &t.StripeSubscriptionID, &t.SubscriptionStatus,
			&t.CreatedAt, &t.UpdatedAt, &t.DeletedAt, &total); err != nil {
			return nil, 0, fmt.Errorf("list tenants: %w", err)
		}
		out = append(out, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list tenants: %w", translate(err))
	}
	return out, total, nil
}

// likePattern turns a search text into an ILIKE pattern that matches it
// anywhere, with its own % and _ taken literally.
func likePattern(q string) string {
	if q == "" {
		return ""
	}
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

// SetTenantStatus suspends or activates a tenant.
func (s *TenantService) SetTenantStatus(ctx context.Context, ref string, status tenancy.Status) (*tenancy.Tenant, error) {
	if status != tenancy.StatusActive && status != tenancy.StatusSuspended {
		return nil, tenancy.Errorf(tenancy.EINVALID, "status %s cannot be set directly", tenancy.Quote(string(status)))
	}
	var out *tenancy.Tenant
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		t, err := findTenant(ctx, tx, ref, true)
		if err != nil {
			return err
		}
		if err := tenancy.CanTransition(t.Status, status); err != nil {
			return err
		}
		if out, err = scanTenant(tx.QueryRow(ctx, `
			UPDATE tenants.tenants SET status = $2 WHERE id = $1
			RETURNING `+tenantColumns, t.ID, status)); err != nil {
			return err
		}
		if t.Status != status {
			action := "tenant.suspend"
			if status == tenancy.StatusActive {
				action = "tenant.activate"
			}
			if err := setTenant(ctx, tx, t.ID, ""); err != nil {
				return err
			}
			if err := recordAudit(ctx, tx, t.ID, action, t.Slug, tenancy.Changed("status", string(t.Status), string(status))); err != nil {
				return err
			}
		}
		if err := announceSuspended(ctx, tx, t.ID, t.Status, status); err != nil {
			return err
		}
		return notifyChange(ctx, tx, t.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("set status of tenant %s: %w", ref, translate(err))
	}
	return out, nil
}

// DeleteTenant soft-deletes a tenant: it drops the tenant's schema, removes
// its rows from every tenant table (users, memberships, domains, settings,
// keys, usage, data) and marks the registry row deleted, in one
// transaction. Its objects are not touched here (no call to the store is
// made inside a transaction): the transaction records that they must go,
// and StorageRemover removes them after the commit, or later.
func (s *TenantService) DeleteTenant(ctx context.Context, ref string) (*tenancy.Tenant, error) {
	var out *tenancy.Tenant
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		// The tenant's changes under way end first, and new ones wait; the
		// row is locked after, as a change's insert takes its key lock.
		t, err := findTenant(ctx, tx, ref, false)
		if err != nil {
			return err
		}
		if err := lockTenantAlone(ctx, tx, t.ID); err != nil {
			return err
		}
		if t, err = findTenant(ctx, tx, t.ID, true); err != nil {
			return err
		}
		if err := tenancy.CanDelete(t); err != nil {
			return err
		}
		if err := removeTenantData(ctx, tx, t, true); err != nil {
			return err
		}
		if err := recordStorageRemoval(ctx, tx, t.ID); err != nil {
			return err
		}
		if out, err = scanTenant(tx.QueryRow(ctx, `
			UPDATE tenants.tenants
			SET status = 'deleted', deleted_at = now(), owner_user_id = NULL
			WHERE id = $1
			RETURNING `+tenantColumns, t.ID)); err != nil {
			return err
		}
		// The tenant's log outlives its data: it is the record of what
		// happened, this deletion included.
		if err := recordAudit(ctx, tx, t.ID, "tenant.delete", t.Slug, tenancy.Changed("status", string(t.Status), string(tenancy.StatusDeleted))); err != nil {
			return err
		}
		return notifyChange(ctx, tx, t.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("delete tenant %s: %w", ref, translate(err))
	}
	return out, nil
}

// PurgeTenant removes a tenant for good: its data and its registry row.
// It is for tenants that exist only for a moment, such as the scratch
// tenants of the isolation test; DeleteTenant is the path for real tenants.
func (s *TenantService) PurgeTenant(ctx context.Context, id string) error {
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		t, err := findTenant(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if err := removeTenantData(ctx, tx, t, false); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tenants.tenants WHERE id = $1`, t.ID); err != nil {
			return err
		}
		// The tenant's own log went with it; the platform's keeps the fact.
		if err := recordAudit(ctx, tx, "", "tenant.purge", t.Slug, "tenant "+t.ID+" and its log removed"); err != nil {
			return err
		}
		return notifyChange(ctx, tx, t.ID)
	})
	if err != nil {
		return fmt.Errorf("purge tenant %s: %w", id, translate(err))
	}
	return nil
}

// removeTenantData drops the tenant's schema and deletes its rows from the
// shared tables, leaving the registry row and, with keepAudit, the
// tenant's audit log. tx ends up in the tenant's context.
func removeTenantData(ctx context.Context, tx pgx.Tx, t *tenancy.Tenant, keepAudit bool) error {
	if err := setTenant(ctx, tx, t.ID, ""); err != nil {
		return err
	}
	if t.SchemaName != "" {
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{t.SchemaName}.Sanitize()+` CASCADE`); err != nil {
			return err
		}
	}
	if err := deleteTenantRows(ctx, tx, t.ID, keepAudit); err != nil {
		return err
	}
	if err := announceCredentials(ctx, tx, "tenant", t.ID, ""); err != nil {
		return err
	}
	// Its domains are free for other tenants again.
	_, err := tx.Exec(ctx, `DELETE FROM tenants.domain_claims WHERE claimed_by = $1`, t.ID)
	return err
}

// deleteTenantRows removes a tenant's rows from every table with a
// tenant_id column, found in the catalog so that tables added later (or
// adopted) are covered too. Tables are emptied children first: a delete
// that a foreign key refuses is retried after the others, inside a
// savepoint. With keepAudit, the audit log is left alone. tx is in the
// tenant's context.
func deleteTenantRows(ctx context.Context, tx pgx.Tx, tenantID string, keepAudit bool) error {
	rows, err := tx.Query(ctx, `
		SELECT c.oid::regclass::text
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND NOT EXISTS (SELECT 1 FROM tenants.tenants t WHERE t.schema_name = n.nspname)
		  AND NOT ($1 AND c.oid = 'audit.events'::regclass)
		ORDER BY 1`, keepAudit)
	if err != nil {
		return err
	}
	pending, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for len(pending) > 0 {
		var blocked []string
		var lastErr error
		for _, table := range pending {
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				_, err := sp.Exec(ctx, `DELETE FROM `+table+` WHERE tenant_id = $1`, tenantID)
				return err
			})
			var pg *pgconn.PgError
			switch {
			case errors.As(err, &pg) && pg.Code == "23503":
				blocked = append(blocked, table)
				lastErr = err
			case err != nil:
				return fmt.Errorf("delete rows of %s: %w", table, err)
			}
		}
		if len(blocked) == len(pending) {
			return fmt.Errorf("delete rows: %w", lastErr)
		}
		pending = blocked
	}
	return nil
}

// CountMembers counts a tenant's members, in the tenant's context on the
// application role like any tenant data.
func (s *TenantService) CountMembers(ctx context.Context, tenantID string) (int, error) {
	var n int
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if rows.Next() {
			return rows.Scan(&n)
		}
		return nil
	}, `SELECT count(*) FROM tenants.tenant_members WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return 0, fmt.Errorf("count members: %w", err)
	}
	return n, nil
}

// OverMemberLimit returns the tenants on plan p with more members than p
// allows, with how many they have: after p's limit was lowered, they keep
// their members and can add none. Each tenant is counted in its own
// context, as row-level security has it.
func (s *TenantService) OverMemberLimit(ctx context.Context, p *tenancy.Plan) (map[string]int, error) {
	over := map[string]int{}
	if p.MaxUsers == tenancy.Unlimited {
		return over, nil
	}
	tenants, _, err := s.ListTenants(ctx, tenancy.TenantFilter{Plan: p.Name})
	if err != nil {
		return nil, err
	}
	for _, t := range tenants {
		n, err := s.CountMembers(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		if int64(n) > p.MaxUsers {
			over[t.Slug] = n
		}
	}
	return over, nil
}

// TenantStats counts all tenants by status and by plan.
func (s *TenantService) TenantStats(ctx context.Context) (*tenancy.Stats, error) {
	st := &tenancy.Stats{ByStatus: map[tenancy.Status]int{}, ByPlan: map[string]int{}}
	rows, err := s.db.Admin.Query(ctx, `
		SELECT t.status, t.plan, count(*)
		FROM tenants.tenants t
		JOIN public.billing_plans p ON p.name = t.plan
		GROUP BY t.status, t.plan, p.sort_order
		ORDER BY p.sort_order, t.plan`)
	if err != nil {
		return nil, fmt.Errorf("tenant stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status tenancy.Status
		var plan string
		var n int
		if err := rows.Scan(&status, &plan, &n); err != nil {
			return nil, fmt.Errorf("tenant stats: %w", err)
		}
		st.Total += n
		st.ByStatus[status] += n
		if st.ByPlan[plan] == 0 {
			st.PlanOrder = append(st.PlanOrder, plan)
		}
		st.ByPlan[plan] += n
	}
	return st, rows.Err()
}
