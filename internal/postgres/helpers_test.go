package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func mustOpenDB(t *testing.T) *postgres.DB {
	t.Helper()
	return pgtest.New(t)
}

func mustCreateTenant(t *testing.T, db *postgres.DB, slug string, strategy tenancy.Strategy) *tenancy.Tenant {
	t.Helper()
	c, err := postgres.NewTenantService(db, tenancy.ModeHybrid).CreateTenant(context.Background(),
		tenancy.NewTenant{Name: "Tenant " + slug, Slug: slug, Strategy: strategy})
	if err != nil {
		t.Fatalf("create tenant %s: %v", slug, err)
	}
	return c.Tenant
}

func mustCreateUser(t *testing.T, db *postgres.DB, tenantID, email string) *tenancy.User {
	t.Helper()
	u, _, err := postgres.NewUserService(db).CreateUser(context.Background(), tenantID, tenancy.NewUser{Email: email, Name: "User " + email})
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

// asTenant runs fn as the application role in a transaction with tenantID
// set the way the services set it; tenantID "" sets no tenant. The
// transaction is always rolled back.
func asTenant(t *testing.T, db *postgres.DB, tenantID string, fn func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.App.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if tenantID != "" {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			t.Fatal(err)
		}
	}
	fn(tx)
}

func count(t *testing.T, tx pgx.Tx, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := tx.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// mustRefuse runs one statement in a savepoint and fails the test unless
// PostgreSQL refuses it for lack of privilege or by row-level security.
func mustRefuse(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), tx, func(sp pgx.Tx) error {
		_, err := sp.Exec(context.Background(), sql, args...)
		return err
	})
	// Citus refuses any change of the distribution key (tenant_id) before
	// row-level security is asked.
	var pg *pgconn.PgError
	if pgtest.IsCitus() && errors.As(err, &pg) && pg.Code == "0A000" && strings.Contains(pg.Message, "partition value") {
		return
	}
	if tenancy.ErrorCode(postgres.PostgresTranslate(err)) != tenancy.EFORBIDDEN {
		t.Fatalf("%s: want refusal by row-level security, got %v", sql, err)
	}
}
