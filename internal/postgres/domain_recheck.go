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
	// The checks are the platform's, whoever started the job.
	ctx = tenancy.WithAuditActor(ctx, tenancy.AuditActor{Kind: tenancy.ActorSystem, Name: "domain recheck"})
	checked := 0
	for _, d := range list {
		if err := ctx.Err(); err != nil {
			return checked, err
		}
		// A domain removed meanwhile is no longer due: skip it.
		if _, _, err := s.verify(ctx, d.tenantID, d.name, v, "domain.recheck"); err != nil && tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
			return checked, fmt.Errorf("check domain %s: %w", d.name, err)
		}
		checked++
	}
	return checked, nil
}

// CertificateIssued records that a certificate is in place for a verified
// domain: it becomes active. It is a no-op for a domain already active, and
// refused for one that is not verified.
func (s *DomainService) CertificateIssued(ctx context.Context, tenantID, name string) (*tenancy.Domain, error) {
	var out *tenancy.Domain
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		d, err := findDomainForUpdate(ctx, tx, tenantID, s.rules.Canonical(name))
		if err != nil {
			return err
		}
		if d.State == tenancy.DomainActive {
			out = d
			return nil
		}
		from := d.State
		if d.State == tenancy.DomainVerified {
			if err := d.StartCertificate(); err != nil {
				return err
			}
		}
		if err := d.CertificateIssued(); err != nil {
			return err
		}
		if out, err = scanDomain(tx.QueryRow(ctx, `
			UPDATE tenants.tenant_domains SET state = $3, failure = nullif($4, '')
			WHERE tenant_id = $1 AND domain = $2
			RETURNING `+domainColumns, tenantID, d.Name, d.State, d.Failure)); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, tenantID, "domain.certificate", out.Name, tenancy.Changed("state", string(from), string(out.State))); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("record certificate of %s: %w", name, translate(err))
	}
	return out, nil
}

// CertificateRequestFailed records that a certificate could not be
// obtained for a verified custom domain, and why: the domain shows the
// reason and keeps routing while requests go on.
func (s *DomainService) CertificateRequestFailed(ctx context.Context, tenantID, name, reason string) (*tenancy.Domain, error) {
	var out *tenancy.Domain
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		d, err := findDomainForUpdate(ctx, tx, tenantID, s.rules.Canonical(name))
		if err != nil {
			return err
		}
		from := d.State
		changed, err := d.CertificateRequestFailed(reason)
		if err != nil || !changed {
			out = d
			return err
		}
		if out, err = scanDomain(tx.QueryRow(ctx, `
			UPDATE tenants.tenant_domains SET state = $3, failure = $4
			WHERE tenant_id = $1 AND domain = $2
			RETURNING `+domainColumns, tenantID, d.Name, d.State, d.Failure)); err != nil {
			return err
		}
		summary := d.Failure
		if from != d.State {
			summary = tenancy.Changed("state", string(from), string(d.State)) + "; " + summary
		}
		if err := recordAudit(ctx, tx, tenantID, "domain.certificate", out.Name, summary); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("record certificate failure of %s: %w", name, translate(err))
	}
	return out, nil
}
