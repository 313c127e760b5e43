package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/pgtest"
)

// roles are connections to a test database as the schema owner and as the
// application role, for tests that check what each role may do.
type roles struct {
	t          *testing.T
	ctx        context.Context
	admin, app *pgx.Conn
}

func openRoles(t *testing.T, urls pgtest.URLs) *roles {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	app, err := pgx.Connect(ctx, urls.App)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(ctx) })
	return &roles{t: t, ctx: ctx, admin: admin, app: app}
}

// exec runs statements as the schema owner.
func (r *roles) exec(sqls ...string) {
	r.t.Helper()
	for _, sql := range sqls {
		if _, err := r.admin.Exec(r.ctx, sql); err != nil {
			r.t.Fatalf("%s: %v", sql, err)
		}
	}
}

// asTenant runs fn as the application role in the context of the tenant
// with slug (in none for ""), and commits when fn succeeds.
func (r *roles) asTenant(slug string, fn func(tx pgx.Tx) error) error {
	r.t.Helper()
	tx, err := r.app.Begin(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	defer tx.Rollback(r.ctx)
	if slug != "" {
		var id string
		if err := r.admin.QueryRow(r.ctx, `SELECT id FROM tenants.tenants WHERE slug = $1`, slug).Scan(&id); err != nil {
			r.t.Fatal(err)
		}
		if _, err := tx.Exec(r.ctx, `SELECT tenants.set_context($1, NULL)`, id); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(r.ctx)
}

// count returns count(*) of a table as seen in fn's transaction.
func (r *roles) count(tx pgx.Tx, table string) int {
	r.t.Helper()
	var n int
	if err := tx.QueryRow(r.ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}
