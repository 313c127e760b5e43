package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// DomainService implements tenancy.DomainService on the application role,
// in the tenant's context, and tenancy.DomainLookup on the platform path.
type DomainService struct {
	db    *DB
	rules tenancy.DomainRules
}

var (
	_ tenancy.DomainService = (*DomainService)(nil)
	_ tenancy.DomainLookup  = (*DomainService)(nil)
)

// NewDomainService returns a DomainService using db, checking new names
// against rules.
func NewDomainService(db *DB, rules tenancy.DomainRules) *DomainService {
	return &DomainService{db: db, rules: rules}
}

const domainColumns = `
	tenant_id, domain, is_primary, state, verification_token,
	verified_at, first_verified_at, checked_at, last_seen_valid_at, coalesce(failure, ''), created_at`

func scanDomain(row pgx.Row) (*tenancy.Domain, error) {
	var d tenancy.Domain
	err := row.Scan(&d.TenantID, &d.Name, &d.Primary, &d.State, &d.Token,
		&d.VerifiedAt, &d.FirstVerifiedAt, &d.CheckedAt, &d.LastSeenValidAt, &d.Failure, &d.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func domainNotFound(name string) error {
	return tenancy.FieldErrorf(tenancy.ENOTFOUND, "domain", "domain %s not found", tenancy.Quote(name))
}

// AddDomain claims a domain for the tenant. The domain column is unique
// across all tenants, and the tenant cannot see the others' rows: a unique
// violation is how a claim by another tenant shows.
//
// Plans set no limit on domains yet; when they do, the check belongs here.
func (s *DomainService) AddDomain(ctx context.Context, tenantID, raw string) (*tenancy.Domain, error) {
	if s.rules.Disabled {
		return nil, tenancy.ErrCustomDomainsOff
	}
	name, err := s.rules.Normalize(raw)
	if err != nil {
		return nil, err
	}
	var d *tenancy.Domain
	err = changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		// The claim first: its key keeps the name unique across tenants.
		if _, err := tx.Exec(ctx, `
			INSERT INTO tenants.domain_claims (domain, claimed_by) VALUES ($2, $1)`, tenantID, name); err != nil {
			return err
		}
		var err error
		if d, err = scanDomain(tx.QueryRow(ctx, `
			INSERT INTO tenants.tenant_domains (tenant_id, domain, verification_token)
			VALUES ($1, $2, $3)
			RETURNING `+domainColumns, tenantID, name, tenancy.NewVerificationToken())); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, tenantID, "domain.add", d.Name, "state: "+string(d.State)); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if duplicate(err, "domain_claims_pkey") {
		// A stale claim of another tenant gives way once; a second
		// conflict is a live claim.
		released, rerr := s.releaseStaleClaim(ctx, tenantID, name)
		if rerr != nil {
			return nil, fmt.Errorf("add domain %s: %w", name, rerr)
		}
		if released {
			return s.AddDomain(ctx, tenantID, name)
		}
		return nil, s.claimConflict(ctx, tenantID, name)
	}
	if err != nil {
		return nil, fmt.Errorf("add domain %s: %w", name, translate(err))
	}
	return d, nil
}

// releaseStaleClaim removes another tenant's claim on name when it may be
// taken over (tenancy.Domain.StaleClaim: never verified, and older than
// tenancy.StaleClaimAge), and reports whether it did. Finding the claim
// reads across tenants on the platform path; removing it happens in the
// claiming tenant's context, like any write to its rows, and that tenant's
// processes hear of it. The removal states the rule again, so a claim
// verified in the meantime stays.
func (s *DomainService) releaseStaleClaim(ctx context.Context, tenantID, name string) (bool, error) {
	released := false
	now := s.db.Now()
	err := inTx(ctx, s.db.Admin, func(tx pgx.Tx) error {
		// The claim names the holder, so the holder's row is read on its
		// own shard.
		var holder string
		err := tx.QueryRow(ctx, `
			SELECT claimed_by FROM tenants.domain_claims WHERE domain = $1 AND claimed_by <> $2`,
			name, tenantID).Scan(&holder)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		d, err := scanDomain(tx.QueryRow(ctx, `
			SELECT `+domainColumns+` FROM tenants.tenant_domains
			WHERE tenant_id = $1 AND domain = $2`, holder, name))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return err
		}
		if !d.StaleClaim(now) {
			return nil
		}
		if err := setTenant(ctx, tx, d.TenantID, ""); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			DELETE FROM tenants.tenant_domains
			WHERE tenant_id = $1 AND domain = $2 AND NOT verified AND first_verified_at IS NULL AND created_at < $3`,
			d.TenantID, name, now.Add(-tenancy.StaleClaimAge))
		if err != nil {
			return err
		}
		released = tag.RowsAffected() == 1
		if released {
			if _, err := tx.Exec(ctx, `
				DELETE FROM tenants.domain_claims WHERE domain = $1 AND claimed_by = $2`, name, d.TenantID); err != nil {
				return err
			}
			// The holder's log says where its claim went; which tenant took
			// the domain is not the holder's to know.
			sys := tenancy.WithAuditActor(ctx, tenancy.AuditActor{Kind: tenancy.ActorSystem, Name: "domain claims"})
			if err := recordAudit(sys, tx, d.TenantID, "domain.release", name,
				"claim never verified in 7 days; released to another tenant's claim"); err != nil {
				return err
			}
		}
		return notifyChange(ctx, tx, d.TenantID)
	})
	return released, err
}

// claimConflict says who holds a domain that could not be added: this
// tenant, or another one, which it does not name.
func (s *DomainService) claimConflict(ctx context.Context, tenantID, name string) error {
	_, err := s.FindDomain(ctx, tenantID, name)
	switch {
	case err == nil:
		return tenancy.FieldErrorf(tenancy.ECONFLICT, "domain", "domain %s is already added to this tenant", tenancy.Quote(name))
	case tenancy.ErrorCode(err) == tenancy.ENOTFOUND:
		return tenancy.FieldErrorf(tenancy.ECONFLICT, "domain", "domain %s is already claimed by another tenant", tenancy.Quote(name))
	}
	return fmt.Errorf("add domain %s: %w", name, err)
}

// FindDomain returns one of the tenant's domains by name.
func (s *DomainService) FindDomain(ctx context.Context, tenantID, name string) (*tenancy.Domain, error) {
	name = s.rules.Canonical(name)
	var d *tenancy.Domain
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		var err error
		d, err = scanDomain(rows)
		return err
	}, `SELECT `+domainColumns+` FROM tenants.tenant_domains WHERE tenant_id = $1 AND domain = $2`, tenantID, name)
	if err != nil {
		return nil, fmt.Errorf("find domain %s: %w", name, translate(err))
	}
	if d == nil {
		return nil, domainNotFound(name)
	}
	return d, nil
}

// findDomainForUpdate reads and locks one of the tenant's domains. tx is in
// the tenant's context.
func findDomainForUpdate(ctx context.Context, tx pgx.Tx, tenantID, name string) (*tenancy.Domain, error) {
	d, err := scanDomain(tx.QueryRow(ctx, `
		SELECT `+domainColumns+` FROM tenants.tenant_domains
		WHERE tenant_id = $1 AND domain = $2
		FOR UPDATE`, tenantID, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domainNotFound(name)
	}
	return d, err
}

// ListDomains lists the tenant's domains, oldest first.
func (s *DomainService) ListDomains(ctx context.Context, tenantID string, f tenancy.DomainFilter) ([]*tenancy.Domain, int, error) {
	if f.State != "" && !validDomainState(f.State) {
		return nil, 0, tenancy.FieldErrorf(tenancy.EINVALID, "state", "state %s is not a domain state", tenancy.Quote(string(f.State)))
	}
	limit := any(nil)
	if f.Limit > 0 {
		limit = f.Limit
	}
	var out []*tenancy.Domain
	total := 0
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			var d tenancy.Domain
			if err := rows.Scan(&d.TenantID, &d.Name, &d.Primary, &d.State, &d.Token,
				&d.VerifiedAt, &d.FirstVerifiedAt, &d.CheckedAt, &d.LastSeenValidAt, &d.Failure, &d.CreatedAt, &total); err != nil {
				return err
			}
			out = append(out, &d)
		}
		return nil
	}, `
		SELECT `+domainColumns+`, count(*) OVER ()
		FROM tenants.tenant_domains
		WHERE tenant_id = $1 AND ($2 = '' OR state = $2)
		ORDER BY created_at, domain
		LIMIT $3 OFFSET $4`, tenantID, string(f.State), limit, f.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list domains: %w", translate(err))
	}
	return out, total, nil
}

func validDomainState(s tenancy.DomainState) bool {
	for _, known := range tenancy.DomainStates {
		if s == known {
			return true
		}
	}
	return false
}

// VerifyDomain looks the domain's verification record up and records what
// was found. The lookup can take seconds, so it runs between two short
// transactions, never inside one: no row stays locked and no connection
// stays taken while DNS answers.
func (s *DomainService) VerifyDomain(ctx context.Context, tenantID, name string, v tenancy.DomainVerifier) (*tenancy.Domain, tenancy.VerifyResult, error) {
	return s.verify(ctx, tenantID, name, v, "domain.verify")
}

// verify checks a domain and records the check as action: every check
// someone asked for, and only the checks that changed the state when the
// periodic re-check runs them.
func (s *DomainService) verify(ctx context.Context, tenantID, name string, v tenancy.DomainVerifier, action string) (*tenancy.Domain, tenancy.VerifyResult, error) {
	d, err := s.FindDomain(ctx, tenantID, name)
	if err != nil {
		return nil, tenancy.VerifyResult{}, err
	}
	res := v.CheckDomain(ctx, d.Name, d.Token)
	now := s.db.Now()
	var out *tenancy.Domain
	err = inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		cur, err := findDomainForUpdate(ctx, tx, tenantID, d.Name)
		if err != nil {
			return err
		}
		if cur.Token != d.Token {
			return tenancy.FieldErrorf(tenancy.ECONFLICT, "domain", "domain %s was removed and added again during the check; check again", d.Name)
		}
		from := cur.State
		cur.RecordCheck(now, res)
		if out, err = scanDomain(tx.QueryRow(ctx, `
			UPDATE tenants.tenant_domains
			SET state = $3, verified_at = $4, checked_at = $5, last_seen_valid_at = $6, failure = nullif($7, ''),
			    first_verified_at = coalesce(first_verified_at, $8),
			    -- A domain that stops being verified stops being primary.
			    is_primary = is_primary AND $3 IN ('verified', 'certificate_issuing', 'active')
			WHERE tenant_id = $1 AND domain = $2
			RETURNING `+domainColumns,
			tenantID, cur.Name, cur.State, cur.VerifiedAt, cur.CheckedAt, cur.LastSeenValidAt, cur.Failure, cur.FirstVerifiedAt)); err != nil {
			return err
		}
		if action != "domain.recheck" || from != out.State {
			summary := tenancy.Changed("state", string(from), string(out.State))
			if from == out.State {
				summary = "state: " + string(out.State) + " (unchanged)"
			}
			if out.Failure != "" {
				summary += ", failure: " + out.Failure
			}
			if err := recordAudit(ctx, tx, tenantID, action, out.Name, summary); err != nil {
				return err
			}
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, res, fmt.Errorf("verify domain %s: %w", d.Name, translate(err))
	}
	return out, res, nil
}

// SetPrimaryDomain makes a verified domain the tenant's primary one.
func (s *DomainService) SetPrimaryDomain(ctx context.Context, tenantID, name string) (*tenancy.Domain, error) {
	name = s.rules.Canonical(name)
	var out *tenancy.Domain
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		// Lock the tenant's domains, in one order, so two switches at once
		// take turns instead of both clearing and both setting.
		if _, err := tx.Exec(ctx, `
			SELECT 1 FROM tenants.tenant_domains WHERE tenant_id = $1 ORDER BY domain FOR UPDATE`, tenantID); err != nil {
			return err
		}
		cur, err := findDomainForUpdate(ctx, tx, tenantID, name)
		if err != nil {
			return err
		}
		if err := cur.CanBePrimary(); err != nil {
			return err
		}
		if cur.Primary {
			out = cur
			return nil
		}
		var was string
		if err := tx.QueryRow(ctx, `
			SELECT coalesce((SELECT domain FROM tenants.tenant_domains WHERE tenant_id = $1 AND is_primary), '')`,
			tenantID).Scan(&was); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			UPDATE tenants.tenant_domains SET is_primary = false
			WHERE tenant_id = $1 AND is_primary`, tenantID); err != nil {
			return err
		}
		if out, err = scanDomain(tx.QueryRow(ctx, `
			UPDATE tenants.tenant_domains SET is_primary = true
			WHERE tenant_id = $1 AND domain = $2
			RETURNING `+domainColumns, tenantID, name)); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, tenantID, "domain.primary", out.Name, tenancy.Changed("primary domain", was, out.Name)); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("set primary domain %s: %w", name, translate(err))
	}
	return out, nil
}

// RemoveDomain gives up one of the tenant's domains.
func (s *DomainService) RemoveDomain(ctx context.Context, tenantID, name string) error {
	name = s.rules.Canonical(name)
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var state tenancy.DomainState
		var primary bool
		err := tx.QueryRow(ctx, `
			DELETE FROM tenants.tenant_domains WHERE tenant_id = $1 AND domain = $2
			RETURNING state, is_primary`, tenantID, name).Scan(&state, &primary)
		if errors.Is(err, pgx.ErrNoRows) {
			return domainNotFound(name)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM tenants.domain_claims WHERE domain = $2 AND claimed_by = $1`, tenantID, name); err != nil {
			return err
		}
		summary := "state: " + string(state)
		if primary {
			summary += ", was the primary domain"
		}
		if err := recordAudit(ctx, tx, tenantID, "domain.remove", name, summary); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return fmt.Errorf("remove domain %s: %w", name, translate(err))
	}
	return nil
}

// LookupVerifiedDomain finds the tenant a verified domain belongs to, on
// the platform path: the owner reads domains across tenants through the
// platform_read policy, which allows reading only.
func (s *DomainService) LookupVerifiedDomain(ctx context.Context, name string) (string, error) {
	return s.lookupDomain(ctx, name, true)
}

// LookupClaimedDomain returns the tenant that added name, verified or not,
// unless the domain failed. Platform path, like LookupVerifiedDomain.
func (s *DomainService) LookupClaimedDomain(ctx context.Context, name string) (string, error) {
	return s.lookupDomain(ctx, name, false)
}

// lookupDomain finds the tenant in two reads: the claim (one row of a
// global table, a reference table on Citus, read where the query runs),
// then the claiming tenant's domain row by tenant_id, which Citus routes
// to that tenant's shard alone. Looking the domain up in tenant_domains by
// name would read every shard.
func (s *DomainService) lookupDomain(ctx context.Context, name string, verifiedOnly bool) (string, error) {
	name = s.rules.Canonical(name)
	var tenantID string
	err := s.db.Admin.QueryRow(ctx, `SELECT claimed_by FROM tenants.domain_claims WHERE domain = $1`, name).Scan(&tenantID)
	if err == nil {
		err = s.db.Admin.QueryRow(ctx, `
			SELECT tenant_id FROM tenants.tenant_domains
			WHERE tenant_id = $1 AND domain = $2 AND (verified OR (NOT $3 AND state <> 'failed'))`,
			tenantID, name, verifiedOnly).Scan(&tenantID)
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", domainNotFound(name)
	case err != nil:
		return "", fmt.Errorf("look up domain %s: %w", name, err)
	}
	return tenantID, nil
}
