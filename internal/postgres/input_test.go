package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// Text PostgreSQL cannot store (a NUL character, bytes that are not
// UTF-8) is the caller's invalid input, not an internal error, wherever it
// reaches a query.
func TestTextPostgreSQLCannotStoreIsInvalidInput(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	acme := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	for name, call := range map[string]func(string) error{
		"audit filter": func(s string) error {
			_, _, err := postgres.NewAuditService(db).ListAudit(ctx, acme.ID, tenancy.AuditFilter{Actor: s})
			return err
		},
		"tenant search": func(s string) error {
			_, _, err := postgres.NewTenantService(db, tenancy.ModeHybrid).ListTenants(ctx, tenancy.TenantFilter{Query: s})
			return err
		},
		"user search": func(s string) error {
			_, _, err := postgres.NewUserService(db).ListUsers(ctx, acme.ID, tenancy.UserFilter{Query: s})
			return err
		},
	} {
		for _, s := range []string{"ann\x00", "ann\xff"} {
			err := call(s)
			// The audit filter's own checks may refuse it first.
			if tenancy.ErrorCode(err) != tenancy.EINVALID || name != "audit filter" && !strings.Contains(tenancy.ErrorMessage(err), "NUL character or is not valid UTF-8") {
				t.Errorf("%s %q: %v (code %s), want invalid input", name, s, err, tenancy.ErrorCode(err))
			}
		}
	}
}
