package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// auditPageSize is how many entries one page of an audit log shows.
const auditPageSize = 50

// handleAuditLog serves GET /audit on a tenant's host: its own log, for
// owners and admins. The log is read in the tenant's context, so no filter
// can reach another tenant's entries.
func (s *Server) handleAuditLog(w http.ResponseWriter, r *http.Request) error {
	t := TenantFrom(r.Context())
	return s.renderAuditLog(w, r, false, func(f tenancy.AuditFilter) ([]*tenancy.AuditEntry, int, error) {
		return s.Audit.ListAudit(r.Context(), t.ID, f)
	})
}

// handleAdminAuditLog serves GET /audit on the admin host: every tenant's
// log and the platform's, with a tenant filter.
func (s *Server) handleAdminAuditLog(w http.ResponseWriter, r *http.Request) error {
	return s.renderAuditLog(w, r, true, func(f tenancy.AuditFilter) ([]*tenancy.AuditEntry, int, error) {
		return s.Audit.ListAllAudit(r.Context(), f)
	})
}

type auditLister func(tenancy.AuditFilter) ([]*tenancy.AuditEntry, int, error)

// renderAuditLog reads the filter, lists one page and renders the page, or
// only the table for the filter's htmx requests. A filter that is wrong is
// said so above an empty table, with 422.
func (s *Server) renderAuditLog(w http.ResponseWriter, r *http.Request, console bool, list auditLister) error {
	status := http.StatusOK
	l := views.AuditLog{Path: "/audit", ShowTenant: console, Actions: tenancy.AuditActions, Pager: views.Pager{Page: 1, Pages: 1}}
	f, err := s.auditFilter(r, &l)
	if err == nil {
		err = s.auditPage(&l, f, list)
	}
	switch code := tenancy.ErrorCode(err); code {
	case "":
	case tenancy.EINVALID, tenancy.ENOTFOUND:
		// A filter being typed (a tenant's slug half written) is a form
		// with an error, swapped in as the table: not a page not found.
		status = http.StatusUnprocessableEntity
		l.Error = sentence(tenancy.ErrorMessage(err))
		l.Rows = nil
	default:
		return err
	}
	if partialSwap(w, r) {
		render(w, r, status, views.AuditTable(l))
		return nil
	}
	render(w, r, status, views.AuditPage(s.page(r, "Audit log"), l))
	return nil
}

// auditFilter reads the filter from the query into l (as typed) and into
// the service's filter.
func (s *Server) auditFilter(r *http.Request, l *views.AuditLog) (tenancy.AuditFilter, error) {
	q := r.URL.Query()
	l.Action = strings.TrimSpace(q.Get("action"))
	l.Actor = strings.TrimSpace(q.Get("actor"))
	l.Since = strings.TrimSpace(q.Get("since"))
	l.Until = strings.TrimSpace(q.Get("until"))
	f := tenancy.AuditFilter{Action: strings.ToLower(l.Action), Actor: l.Actor, Limit: auditPageSize}
	p, err := pageOf(r, auditPageSize)
	if err != nil {
		return f, err
	}
	l.Page = p.Number()
	f.Limit, f.Offset = p.Limit, p.Offset
	if f.Since, err = parseDay("since", l.Since); err != nil {
		return f, err
	}
	if f.Until, err = parseDay("until", l.Until); err != nil {
		return f, err
	}
	if !f.Until.IsZero() {
		// The end day is included.
		f.Until = f.Until.Add(24 * time.Hour)
	}
	if l.ShowTenant {
		l.Tenant = strings.TrimSpace(q.Get("tenant"))
		if l.Tenant != "" {
			t, err := s.Tenants.FindTenant(r.Context(), l.Tenant)
			if err != nil {
				return f, err
			}
			f.TenantID = t.ID
		}
	}
	return f, f.Validate()
}

// parseDay reads a day as a date input sends it (2006-01-02), in UTC.
func parseDay(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, tenancy.FieldErrorf(tenancy.EINVALID, field, "%s is not a date such as 2025-01-31", tenancy.Quote(v))
	}
	return t, nil
}

// auditPage lists one page into l, with the pager's addresses.
func (s *Server) auditPage(l *views.AuditLog, f tenancy.AuditFilter, list auditLister) error {
	p := listPage{Limit: f.Limit, Offset: f.Offset}
	entries, total, err := fetchPage(p, func(limit, offset int) ([]*tenancy.AuditEntry, int, error) {
		f.Limit, f.Offset = limit, offset
		return list(f)
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		l.Rows = append(l.Rows, views.AuditRow{
			At: e.At.UTC().Format("2006-01-02 15:04:05"), Tenant: e.TenantSlug,
			Actor: e.Actor.String(), Kind: string(e.Actor.Kind), Addr: e.Actor.Addr,
			Action: e.Action, Target: e.Target, Summary: e.Summary,
		})
	}
	l.Total = views.Count(total, "entry", "entries")
	l.Pager = pager(l.Path,
		map[string]string{"tenant": l.Tenant, "action": l.Action, "actor": l.Actor, "since": l.Since, "until": l.Until},
		p, total)
	return nil
}
