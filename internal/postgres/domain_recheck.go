package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// RecheckDue checks again the verified domains, of every tenant, that were
// last checked before olderThan, at most limit of them, oldest check first.
// A domain whose record has been missing for longer than the grace period
// fails and stops routing (VerifyDomain applies the rule). Finding the due
// domains reads across tenants, on the platform path; each check then runs
// in its tenant's context like any other verification. It returns how many
// domains it checked.
func (s *DomainService) RecheckDue(ctx context.Context, v tenancy.DomainVerifier, olderThan time.Time, limit int) (int, error) {
	rows, err := s.db.Admin.Query(ctx, `
		SELECT tenant_id, domain FROM tenants.tenant_domains
		WHERE verified AND (checked_at IS NULL OR checked_at < $1)
		ORDER BY checked_at NULLS FIRST, domain
		LIMIT $2`, olderThan, limit)
	if err != nil {
		return 0, fmt.Errorf("find domains to check: %w", err)
	}
	type due struct{ tenantID, name string }
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
		var d due
		err := r.Scan(&d.tenantID, &d.name)
		return d, err
	})
	if err != nil {
		return 0, fmt.Errorf("find domains to check: %w", err)
	}
	checked := 0
	for _, d := range list {
		if err := ctx.Err(); err != nil {
			return checked, err
		}
		// A domain removed meanwhile is no longer due: skip it.
		if _, _, err := s.VerifyDomain(ctx, d.tenantID, d.name, v); err != nil && tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
			return checked, fmt.Errorf("check domain %s: %w", d.name, err)
		}
		checked++
	}
	return checked, nil
}
