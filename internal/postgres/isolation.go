package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// IsolationCheck is the outcome of one isolation test.
type IsolationCheck struct {
	Name   string
	Passed bool
	Detail string // why it failed
}

// CheckIsolation runs the isolation tests of the product guide, and more,
// against the live database as the application role, with tenant A's
// context: A must not see B's users but must see its own; a query written to
// escape the filter must still see only A; with no tenant set nothing is
// visible; A must not write rows for B nor move its rows to B. Every write
// attempt is rolled back. A must have at least one user; B should.
func (db *DB) CheckIsolation(ctx context.Context, tenantA, tenantB string) ([]IsolationCheck, error) {
	var out []IsolationCheck
	add := func(name string, passed bool, detail string, args ...any) {
		c := IsolationCheck{Name: name, Passed: passed}
		if !passed {
			c.Detail = fmt.Sprintf(detail, args...)
		}
		out = append(out, c)
	}

	var seenB, ownA, escaped int
	err := inTenant(ctx, db.App, tenantA, "", func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM auth.users WHERE tenant_id = $1`, tenantB).Scan(&seenB); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM auth.users WHERE tenant_id = $1`, tenantA).Scan(&ownA); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			SELECT count(*) FROM (
			  SELECT * FROM auth.users WHERE 1=1 OR tenant_id != tenants.current_tenant_id()
			) u WHERE tenant_id <> $1`, tenantA).Scan(&escaped)
	})
	if err != nil {
		return nil, fmt.Errorf("isolation check: %w", err)
	}
	add("Tenant A cannot see Tenant B users", seenB == 0, "tenant A sees %d of tenant B's users", seenB)
	add("Tenant A can see own users", ownA > 0, "tenant A sees none of its own users (does it have any?)")
	add("A query written to escape the filter sees only Tenant A", escaped == 0,
		"`WHERE 1=1 OR tenant_id != current_tenant_id()` returned %d rows of other tenants", escaped)

	var visible int
	err = inTx(ctx, db.App, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM auth.users`).Scan(&visible)
	})
	if err != nil {
		return nil, fmt.Errorf("isolation check: %w", err)
	}
	add("Without a tenant, no users are visible", visible == 0, "%d users are visible with no tenant set", visible)

	refused, err := db.refusedInTenant(ctx, tenantA, `
		INSERT INTO auth.users (tenant_id, email) VALUES ($1, 'isolation-check@example.invalid')`, tenantB)
	if err != nil {
		return nil, fmt.Errorf("isolation check: %w", err)
	}
	add("Tenant A cannot insert a user for Tenant B", refused, "the insert was accepted")

	refused, err = db.refusedInTenant(ctx, tenantA, `
		UPDATE auth.users SET tenant_id = $1 WHERE tenant_id = tenants.current_tenant_id()`, tenantB)
	if err != nil {
		return nil, fmt.Errorf("isolation check: %w", err)
	}
	add("Tenant A cannot move its users to Tenant B", refused || ownA == 0, "the update was accepted")
	return out, nil
}

// refusedInTenant runs one write in the tenant's context, always rolls it
// back, and reports whether row-level security refused it.
func (db *DB) refusedInTenant(ctx context.Context, tenantID, sql string, args ...any) (bool, error) {
	tx, err := db.App.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	if err := setTenant(ctx, tx, tenantID, ""); err != nil {
		return false, err
	}
	_, err = tx.Exec(ctx, sql, args...)
	var pg *pgconn.PgError
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &pg) && pg.Code == "42501":
		return true, nil
	case errors.As(err, &pg) && pg.Code == "0A000" && strings.Contains(pg.Message, "partition value"):
		// Citus refuses to change a distribution key (tenant_id) at all.
		return true, nil
	default:
		return false, err
	}
}
