package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nself/nself/internal/tenancy"
)

// inTx runs fn in one transaction: committed when fn returns nil, rolled
// back otherwise.
func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// inTenant runs fn in one transaction on the App pool with the tenant (and
// optionally the user) set for that transaction only, so the pooled
// connection carries nothing into the next one.
func inTenant(ctx context.Context, pool *pgxpool.Pool, tenantID, userID string, fn func(pgx.Tx) error) error {
	return inTx(ctx, pool, func(tx pgx.Tx) error {
		if err := setTenant(ctx, tx, tenantID, userID); err != nil {
			return err
		}
		return fn(tx)
	})
}

// changeTenant runs fn as inTenant does, for a change to the tenant: a
// tenant that is deleted, or not there, takes none. The change holds the
// tenant's lock shared, which a delete takes alone (lockTenantAlone), so
// that it does not land after a delete that began once it had read the
// tenant live: it waits for the delete, then reads the tenant deleted.
func changeTenant(ctx context.Context, pool *pgxpool.Pool, tenantID, userID string, fn func(pgx.Tx) error) error {
	return inTenant(ctx, pool, tenantID, userID, func(tx pgx.Tx) error {
		if err := holdTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		if err := requireLiveTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		return fn(tx)
	})
}

// lockMembers holds the tenant (holdTenant) and takes its members' lock
// alone until tx ends: membership changes run one at a time per tenant,
// so that two cannot both take the plan's last free place or both remove
// one of the last two owners.
func lockMembers(ctx context.Context, tx pgx.Tx, tenantID string) error {
	if err := holdTenant(ctx, tx, tenantID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('nself.members:' || $1::text, 0))`, tenantID)
	return err
}

// holdTenant takes the tenant's lock shared until tx ends, for a change
// that reads the tenant's status itself (with its slug or plan) rather
// than through changeTenant. It comes before that read.
func holdTenant(ctx context.Context, tx pgx.Tx, tenantID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))`, tenantID)
	return err
}

// lockTenantAlone waits for the changes under way to the tenant to end, and
// keeps new ones waiting until tx ends (see changeTenant).
func lockTenantAlone(ctx context.Context, tx pgx.Tx, tenantID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, tenantID)
	return err
}

// setTenant sets the tenant context for the rest of tx, as a statement of
// its own: SET LOCAL "hasura.user", which a distributed PostgreSQL forwards
// to its workers and which ends with the transaction.
func setTenant(ctx context.Context, tx pgx.Tx, tenantID, userID string) error {
	stmt, err := setTenantSQL(tenantID, userID)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("set tenant context: %w", err)
	}
	return nil
}

// setTenantSQL is the SET LOCAL statement for a tenant and user. SET takes
// no parameters, so the ids are written into it; both are checked to be
// uuids first (hex digits and hyphens only), so nothing can escape the
// literal. tenants.set_context does the same from SQL.
func setTenantSQL(tenantID, userID string) (string, error) {
	if !tenancy.IsUUID(tenantID) {
		return "", tenancy.Errorf(tenancy.EINVALID, "tenant id %s is not a uuid", tenancy.Quote(tenantID))
	}
	user := "null"
	if userID != "" {
		if !tenancy.IsUUID(userID) {
			return "", tenancy.Errorf(tenancy.EINVALID, "user id %s is not a uuid", tenancy.Quote(userID))
		}
		user = `"` + strings.ToLower(userID) + `"`
	}
	return `SET LOCAL "hasura.user" = '{"x-hasura-tenant-id": "` + strings.ToLower(tenantID) + `", "x-hasura-user-id": ` + user + `}'`, nil
}

// readInTenant runs one read-only query in the tenant's context in a single
// round trip: BEGIN, SET LOCAL, the query and COMMIT travel together as a
// pipeline of separate statements. scan reads the query's rows. It is for
// hot read paths, where the round trips of a transaction would cost more
// than the query.
func readInTenant(ctx context.Context, pool *pgxpool.Pool, tenantID, userID string, scan func(pgx.Rows) error, sql string, args ...any) error {
	return pipelineInTenant(ctx, pool, `BEGIN READ ONLY`, tenantID, userID, scan, sql, args...)
}

// writeInTenant is readInTenant for one statement that writes: it commits
// when the statement succeeds, and rolls back otherwise.
func writeInTenant(ctx context.Context, pool *pgxpool.Pool, tenantID string, scan func(pgx.Rows) error, sql string, args ...any) error {
	return pipelineInTenant(ctx, pool, `BEGIN`, tenantID, "", scan, sql, args...)
}

// execInTenant runs one statement that writes and returns no rows, in the
// tenant's context, in one round trip.
func execInTenant(ctx context.Context, pool *pgxpool.Pool, tenantID, sql string, args ...any) error {
	return writeInTenant(ctx, pool, tenantID, func(pgx.Rows) error { return nil }, sql, args...)
}

func pipelineInTenant(ctx context.Context, pool *pgxpool.Pool, begin, tenantID, userID string, scan func(pgx.Rows) error, sql string, args ...any) error {
	set, err := setTenantSQL(tenantID, userID)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(begin)
	b.Queue(set)
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		defer rows.Close()
		if err := scan(rows); err != nil {
			return err
		}
		return rows.Err()
	})
	b.Queue(`COMMIT`)
	// A failure leaves the connection inside a failed transaction; the pool
	// discards such connections on release rather than reuse them.
	return pool.SendBatch(ctx, b).Close()
}

// constraintErrors turns a unique or check violation into a message a person
// can act on, by the constraint's name.
var constraintErrors = map[string]*tenancy.Error{
	"tenants_slug_key":           {Code: tenancy.ECONFLICT, Field: "slug", Message: "that slug is already taken"},
	"users_tenant_email":         {Code: tenancy.ECONFLICT, Field: "email", Message: "a user with that email already exists in this tenant"},
	"users_pkey":                 {Code: tenancy.ECONFLICT, Field: "owner", Message: "that user already has an account in this tenant"},
	"domain_claims_pkey":         {Code: tenancy.ECONFLICT, Field: "domain", Message: "that domain is already claimed"},
	"tenants_plan_fkey":          {Code: tenancy.ENOTFOUND, Field: "plan", Message: "no such plan"},
	"tenant_schemas_pkey":        {Code: tenancy.ECONFLICT, Message: "the tenant already has a schema"},
	"tenants_schema_name_key":    {Code: tenancy.ECONFLICT, Message: "that schema name is already in use"},
	"tenant_exports_one_running": {Code: tenancy.ECONFLICT, Message: "an export is already running for this workspace; wait for it to finish"},
}

// duplicate reports whether err is the refusal of the unique constraint
// named, and of no other.
func duplicate(err error, constraint string) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505" && constraintOf(pg) == constraint
}

// translate turns PostgreSQL errors into domain errors, once, for every
// service in the package. Other errors pass through.
func translate(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	constraint := constraintOf(pg)
	if e, ok := constraintErrors[constraint]; ok {
		return e
	}
	switch pg.Code {
	case "23505":
		return tenancy.Errorf(tenancy.ECONFLICT, "already exists (%s)", constraint)
	case "23514", "22001", "22P02", "23502":
		return tenancy.Errorf(tenancy.EINVALID, "invalid value: %s", oneLine(pg.Message))
	case "22021", "22P05":
		// Text with a NUL character or bytes that are not UTF-8, which
		// PostgreSQL does not store: the input's fault, not the server's.
		return tenancy.Errorf(tenancy.EINVALID, "invalid text: a value contains a NUL character or is not valid UTF-8")
	case "42501":
		// Insufficient privilege, and "new row violates row-level security
		// policy": an attempt to write outside the current tenant.
		return tenancy.Errorf(tenancy.EFORBIDDEN, "not allowed: %s", oneLine(pg.Message))
	}
	return err
}

// shardConstraint finds the constraint in a violation's message as a Citus
// worker words it: the shard's constraint, its name ending in the shard id.
var shardConstraint = regexp.MustCompile(`constraint "(.+?)(_[0-9]+)?"`)

// constraintOf names the constraint an error violated. Citus passes a
// worker's error on with its message alone, and the name there is the
// shard's (tenant_exports_one_running_102040), so the table's own name is
// taken back from the message.
func constraintOf(pg *pgconn.PgError) string {
	if pg.ConstraintName != "" {
		return pg.ConstraintName
	}
	m := shardConstraint.FindStringSubmatch(pg.Message)
	if m == nil {
		return ""
	}
	if _, ok := constraintErrors[m[1]+m[2]]; ok {
		return m[1] + m[2]
	}
	return m[1]
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
