package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// adminPageSize is the number of tenants on one page of the console's list.
const adminPageSize = 20

// adminRoutes are the platform console's pages, on the admin host.
func (s *Server) adminRoutes(r chi.Router) {
	r.Use(s.loadAdminSession, s.checkCSRF, s.auditActor)
	r.NotFound(s.notFound)
	r.Get("/", s.h(s.handleAdminLanding))
	r.Post("/signin", s.h(s.handleAdminSignIn))
	r.Post("/signout", s.h(s.handleAdminSignOut))
	r.Group(func(r chi.Router) {
		r.Use(s.requireAdmin)
		r.Get("/tenants", s.h(s.handleTenantList))
		r.Get("/tenants/new", s.h(s.handleTenantNew))
		r.Post("/tenants", s.h(s.handleTenantCreate))
		r.Get("/tenants/{ref}", s.h(s.handleTenantShow))
		r.Post("/tenants/{ref}/suspend", s.h(s.handleTenantSuspend))
		r.Post("/tenants/{ref}/activate", s.h(s.handleTenantActivate))
		r.Get("/tenants/{ref}/delete", s.h(s.handleTenantDeleteForm))
		r.Post("/tenants/{ref}/delete", s.h(s.handleTenantDelete))
		r.Get("/stats", s.h(s.handleStats))
		s.orgRoutes(r)
		r.Get("/audit", s.h(s.handleAdminAuditLog))
		s.planRoutes(r)
		s.billingRoutes(r)
		s.mailRoutes(r)
	})
}

// loadAdminSession identifies the signed-in platform administrator from
// the admin cookie. A session that has ended counts as none. Tenant
// sessions live in another cookie and another table, so they never count
// here.
func (s *Server) loadAdminSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := s.session(r, adminCookie)
		ctx := r.Context()
		if token, _ := sess.Values[keyToken].(string); token != "" {
			a, err := s.Admins.IdentifyAdmin(ctx, token)
			switch {
			case err == nil:
				ctx = withSession(ctx, nil, a, s.csrfToken(token))
			case tenancy.ErrorCode(err) == tenancy.ENOTFOUND:
				s.endSession(w, r, adminCookie)
			default:
				s.Error(w, r, err)
				return
			}
		} else if seed := anonSeed(r, adminCookie); seed != "" {
			ctx = withCSRF(ctx, s.csrfToken(seed))
		}
		next.ServeHTTP(w, withContext(r, ctx))
	})
}

// requireAdmin lets through only signed-in administrators; others are sent
// to sign in, or refused.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case AdminFrom(r.Context()) != nil:
			next.ServeHTTP(w, r)
		case isSafeMethod(r.Method) && r.Header.Get("HX-Request") == "":
			http.Redirect(w, r, "/", http.StatusSeeOther)
		default:
			s.respondError(w, r, http.StatusForbidden, "Not allowed", "Please sign in.")
		}
	})
}

// handleAdminLanding serves GET /: the sign-in page, or the tenant list for
// an administrator already signed in.
func (s *Server) handleAdminLanding(w http.ResponseWriter, r *http.Request) error {
	if AdminFrom(r.Context()) != nil {
		http.Redirect(w, r, "/tenants", http.StatusSeeOther)
		return nil
	}
	r = s.withAnonCSRF(w, r, adminCookie)
	p := s.page(r, "Sign in")
	p.Flash = s.takeFlash(w, r, adminCookie)
	render(w, r, http.StatusOK, views.AdminSignIn(p, views.Form{}))
	return nil
}

// adminSignInForm is the console's sign-in form.
type adminSignInForm struct {
	Email    string `form:"email"`
	Password string `form:"password,secret"`
}

// handleAdminSignIn serves POST /signin.
func (s *Server) handleAdminSignIn(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in adminSignInForm
	f := parseForm(r, &in)
	p := s.page(r, "Sign in")

	keys := newSignInKeys("admin", in.Email, clientIP(r))
	if blocked, wait := s.limiter.signInBlocked(keys); blocked {
		f.Error = tooManyAttempts(wait)
		render(w, r, http.StatusTooManyRequests, views.AdminSignIn(p, f))
		return nil
	}

	token, _, err := s.Admins.AdminSignIn(ctx, in.Email, in.Password)
	switch code := tenancy.ErrorCode(err); code {
	case "":
	case tenancy.EINVALID:
		s.limiter.signInFailed(keys)
		f.Error = tenancy.ErrorMessage(err)
		render(w, r, statusOf(code), views.AdminSignIn(p, f))
		return nil
	default:
		return err
	}
	s.limiter.signInSucceeded(keys)

	// A new session on every sign-in; the one before, if any, ends.
	if old, _ := s.session(r, adminCookie).Values[keyToken].(string); old != "" {
		if err := s.Admins.AdminSignOut(ctx, old); err != nil {
			return err
		}
	}
	sess := s.freshSession(r, adminCookie)
	sess.Values[keyToken] = token
	if err := sess.Save(r, w); err != nil {
		return err
	}
	http.Redirect(w, r, "/tenants", http.StatusSeeOther)
	return nil
}

// handleAdminSignOut serves POST /signout.
func (s *Server) handleAdminSignOut(w http.ResponseWriter, r *http.Request) error {
	if token, _ := s.session(r, adminCookie).Values[keyToken].(string); token != "" {
		if err := s.Admins.AdminSignOut(r.Context(), token); err != nil {
			return err
		}
	}
	s.endSession(w, r, adminCookie)
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// statusFilters are the choices of the tenant list's status filter, in the
// order shown; the first, the default, leaves deleted tenants out.
var statusFilters = []struct {
	value, label string
	filter       tenancy.TenantFilter
}{
	{"", "Active and suspended", tenancy.TenantFilter{}},
	{"active", "Active", tenancy.TenantFilter{Status: tenancy.StatusActive}},
	{"suspended", "Suspended", tenancy.TenantFilter{Status: tenancy.StatusSuspended}},
	{"deleted", "Deleted", tenancy.TenantFilter{Status: tenancy.StatusDeleted}},
	{"all", "All, deleted included", tenancy.TenantFilter{IncludeDeleted: true}},
}

// tenantFilter reads the list's search, status filter and page number.
func tenantFilter(r *http.Request) (tenancy.TenantFilter, views.TenantList, error) {
	q := r.URL.Query()
	l := views.TenantList{Query: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), Pager: views.Pager{Page: 1}}
	var f tenancy.TenantFilter
	known := false
	for _, sf := range statusFilters {
		l.StatusOptions = append(l.StatusOptions, views.Option{Value: sf.value, Label: sf.label})
		if sf.value == l.Status {
			f, known = sf.filter, true
		}
	}
	if !known {
		return f, l, tenancy.FieldErrorf(tenancy.EINVALID, "status",
			"status %s is not one of active, suspended, deleted, all", tenancy.Quote(l.Status))
	}
	p, err := pageOf(r, adminPageSize)
	if err != nil {
		return f, l, err
	}
	l.Page = p.Number()
	f.Query = l.Query
	f.Limit, f.Offset = p.Limit, p.Offset
	return f, l, nil
}

// handleTenantList serves GET /tenants. The search box asks with htmx and
// gets only the table back.
func (s *Server) handleTenantList(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	f, l, err := tenantFilter(r)
	if err != nil {
		return err
	}
	pg := listPage{Limit: f.Limit, Offset: f.Offset}
	tenants, total, err := fetchPage(pg, func(limit, offset int) ([]*tenancy.Tenant, int, error) {
		f.Limit, f.Offset = limit, offset
		return s.Tenants.ListTenants(ctx, f)
	})
	if err != nil {
		return err
	}
	for _, t := range tenants {
		l.Rows = append(l.Rows, views.TenantRow{
			Slug: t.Slug, Name: t.Name, Status: string(t.Status), Plan: t.Plan,
			Created: formatTime(t.CreatedAt), Href: tenantPath(t),
		})
	}
	l.Total = views.Count(total, "tenant", "tenants")
	l.Pager = pager("/tenants", map[string]string{"q": l.Query, "status": l.Status}, pg, total)

	if partialSwap(w, r) {
		render(w, r, http.StatusOK, views.TenantTable(l))
		return nil
	}
	p := s.page(r, "Tenants")
	p.Flash = s.takeFlash(w, r, adminCookie)
	render(w, r, http.StatusOK, views.TenantListPage(p, l))
	return nil
}

// renderTenantForm shows the form to create a tenant, with the plans that
// take new tenants.
func (s *Server) renderTenantForm(w http.ResponseWriter, r *http.Request, status int, f views.Form) error {
	plans, err := s.Plans.ListPlans(r.Context())
	if err != nil {
		return err
	}
	tf := views.TenantForm{Form: f, BaseDomain: s.Config.BaseDomain, Strategies: []views.Option{
		{Value: "", Label: "Platform default"},
		{Value: string(tenancy.StrategyRLS), Label: "Shared tables with row-level security (rls)"},
		{Value: string(tenancy.StrategySchema), Label: "A schema of its own (schema)"},
	}}
	for _, p := range plans {
		if !p.Archived {
			tf.Plans = append(tf.Plans, views.Option{Value: p.Name, Label: planLabel(p)})
		}
	}
	render(w, r, status, views.NewTenantPage(s.page(r, "New tenant"), tf))
	return nil
}

// handleTenantNew serves GET /tenants/new.
func (s *Server) handleTenantNew(w http.ResponseWriter, r *http.Request) error {
	f := views.Form{Values: map[string]string{"plan": tenancy.DefaultPlan}}
	return s.renderTenantForm(w, r, http.StatusOK, f)
}

// tenantForm is the console's form that creates a tenant.
type tenantForm struct {
	Name     string `form:"name"`
	Slug     string `form:"slug"`
	Plan     string `form:"plan"`
	Strategy string `form:"strategy"`
	Owner    string `form:"owner"`
}

// handleTenantCreate serves POST /tenants. A new owner is mailed, from
// the outbox: the welcome and, without a password, the one-time link that
// sets one, which the console never shows.
func (s *Server) handleTenantCreate(w http.ResponseWriter, r *http.Request) error {
	var form tenantForm
	f := parseForm(r, &form)
	in := tenancy.NewTenant{
		Name:  strings.TrimSpace(form.Name),
		Slug:  strings.TrimSpace(form.Slug),
		Plan:  form.Plan,
		Owner: strings.TrimSpace(form.Owner),
	}
	var err error
	if v := form.Strategy; v != "" {
		in.Strategy, err = tenancy.ParseStrategy(v)
	}
	var c *tenancy.Created
	if err == nil {
		c, err = s.Tenants.CreateTenant(r.Context(), in)
	}
	// Every refusal here (bad input, a taken slug, an unknown plan) is
	// fixed by changing the form, so each is shown on it.
	switch tenancy.ErrorCode(err) {
	case "":
	case tenancy.EINVALID, tenancy.ECONFLICT, tenancy.ENOTFOUND:
		fieldError(&f, err)
		return s.renderTenantForm(w, r, http.StatusUnprocessableEntity, f)
	default:
		return err
	}
	s.audit(r, "create", c.Tenant)
	msg := "Tenant “" + c.Tenant.Name + "” created."
	switch {
	case c.Owner != nil && c.PasswordToken != "":
		msg += " Its owner " + c.Owner.Email + " is mailed a welcome and a link to choose a password."
	case c.Owner != nil:
		msg += " Its owner " + c.Owner.Email + " is mailed a welcome."
	}
	s.setFlash(w, r, adminCookie, msg)
	http.Redirect(w, r, tenantPath(c.Tenant), http.StatusSeeOther)
	return nil
}

// handleTenantShow serves GET /tenants/{ref}, where ref is a slug or an id.
func (s *Server) handleTenantShow(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, err := s.Tenants.FindTenant(ctx, chi.URLParam(r, "ref"))
	if err != nil {
		return err
	}
	return s.renderTenantPage(w, r, http.StatusOK, t, views.Form{Values: map[string]string{"plan": t.Plan}})
}

// renderTenantPage shows a tenant, with the plan change form f when plans
// can be changed here.
func (s *Server) renderTenantPage(w http.ResponseWriter, r *http.Request, status int, t *tenancy.Tenant, f views.Form) error {
	ctx := r.Context()
	members, err := s.Tenants.CountMembers(ctx, t.ID)
	if err != nil {
		return err
	}
	d := s.tenantDetail(t)
	d.Members = strconv.Itoa(members)
	if err := s.tenantSections(r, t, &d); err != nil {
		return err
	}
	if s.on.usage && t.Status != tenancy.StatusDeleted {
		plans, err := s.Plans.ListPlans(ctx)
		if err != nil {
			return err
		}
		d.PlanForm = &views.TenantPlanForm{Form: f}
		for _, p := range plans {
			// An archived plan is shown only as the tenant's own, and
			// cannot be picked again.
			if !p.Archived || p.Name == t.Plan {
				d.PlanForm.Plans = append(d.PlanForm.Plans, views.PlanOption{
					Option:   views.Option{Value: p.Name, Label: planLabel(p)},
					Archived: p.Archived,
				})
			}
		}
	}
	p := s.page(r, t.Name)
	if status == http.StatusOK {
		p.Flash = s.takeFlash(w, r, adminCookie)
	}
	render(w, r, status, views.TenantPage(p, d))
	return nil
}

// tenantPageRows bounds each list on a tenant's page; the full lists are a
// link away.
const tenantPageRows = 10

// tenantSections fills the tenant page's members, usage, domains, billing
// and audit sections. A deleted tenant's rows are gone; only its audit
// entries remain.
func (s *Server) tenantSections(r *http.Request, t *tenancy.Tenant, d *views.TenantDetail) error {
	ctx := r.Context()
	entries, total, err := s.Audit.ListAllAudit(ctx, tenancy.AuditFilter{TenantID: t.ID, Limit: tenantPageRows})
	if err != nil {
		return err
	}
	for _, e := range entries {
		d.Audit = append(d.Audit, views.AuditRow{
			At: e.At.UTC().Format("2006-01-02 15:04"), Actor: e.Actor.String(),
			Action: e.Action, Target: e.Target, Summary: e.Summary,
		})
	}
	d.AuditTotal = views.Count(total, "entry", "entries")
	d.AuditHref = "/audit?" + url.Values{"tenant": {t.Slug}}.Encode()
	if s.Orgs != nil {
		orgs, err := s.Orgs.TenantOrgs(ctx, t.ID)
		if err != nil {
			return err
		}
		for _, o := range orgs {
			d.Orgs = append(d.Orgs, views.OrgTenant{Slug: o.Slug, Name: o.Name, Href: orgPath(o)})
		}
	}
	if t.Status == tenancy.StatusDeleted {
		d.DomainsOff = s.DomainAdmin == nil
		return nil
	}
	members, err := s.Members.ListMembers(ctx, t.ID)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.UserID == t.OwnerID {
			d.OwnerEmail = m.Email
		}
		d.MemberRows = append(d.MemberRows, views.TenantMemberRow{
			Email: m.Email, Name: m.Name, Role: string(m.Role), Joined: formatTime(m.JoinedAt),
			Owner: m.UserID == t.OwnerID,
		})
	}
	if s.DomainAdmin == nil {
		d.DomainsOff = true
	} else {
		domains, _, err := s.DomainAdmin.ListDomains(ctx, t.ID, tenancy.DomainFilter{Limit: tenantPageRows})
		if err != nil {
			return err
		}
		for _, dm := range domains {
			row := views.TenantDomainRow{Name: dm.Name, State: strings.ReplaceAll(string(dm.State), "_", " "), Primary: dm.Primary, Verified: "not yet"}
			if dm.VerifiedAt != nil {
				row.Verified = formatTime(*dm.VerifiedAt)
			}
			d.Domains = append(d.Domains, row)
		}
	}
	if s.BillingStore == nil {
		return nil
	}
	u, err := s.BillingStore.TenantUsage(ctx, t.ID, time.Now())
	if err != nil {
		return err
	}
	d.Usage = &views.BillingPage{Usage: u, Members: int64(len(members))}
	payments, err := s.BillingStore.ListPayments(ctx, t.ID, tenantPageRows)
	if err != nil {
		return err
	}
	b := &views.TenantBilling{
		Price:    tenancy.FormatPrice(u.Plan.PriceMonthlyCent),
		Status:   subscriptionWords(t.SubscriptionStatus),
		Customer: t.StripeCustomerID, Subscription: t.StripeSubscriptionID,
	}
	for _, p := range payments {
		b.Payments = append(b.Payments, views.TenantPaymentRow{
			At: formatTime(p.OccurredAt), Amount: tenancy.FormatAmount(p.AmountCents, p.Currency),
			Status: p.Status, InvoiceURL: p.InvoiceURL,
		})
	}
	d.Billing = b
	return nil
}

// subscriptionWords says a Stripe subscription state in plain words.
func subscriptionWords(status string) string {
	switch status {
	case "":
		return "none: the plan was set on the platform"
	case tenancy.SubscriptionPastDue:
		return "past due: Stripe is retrying a failed payment"
	case tenancy.SubscriptionCanceled:
		return "canceled"
	}
	return status
}

// planLabel is a plan as a choice: its name and monthly price.
func planLabel(p *tenancy.Plan) string {
	return views.PlanTitle(p.Name) + " · " + tenancy.FormatPrice(p.PriceMonthlyCent) + "/month"
}

func (s *Server) tenantDetail(t *tenancy.Tenant) views.TenantDetail {
	d := views.TenantDetail{
		ID: t.ID, Slug: t.Slug, Name: t.Name, Status: string(t.Status), Plan: t.Plan,
		OwnerID: t.OwnerID, Strategy: string(t.Strategy), SchemaName: t.SchemaName,
		Created: formatTime(t.CreatedAt), PortalURL: s.tenantURL(t.Slug), Href: tenantPath(t),
		CanSuspend:  t.Status == tenancy.StatusActive,
		CanActivate: t.Status == tenancy.StatusSuspended,
		CanDelete:   tenancy.CanDelete(t) == nil,
	}
	if t.DeletedAt != nil {
		d.Deleted = formatTime(*t.DeletedAt)
	}
	return d
}

// handleTenantSuspend serves POST /tenants/{ref}/suspend.
func (s *Server) handleTenantSuspend(w http.ResponseWriter, r *http.Request) error {
	return s.setTenantStatus(w, r, tenancy.StatusSuspended, "suspended: its portal and API refuse every request")
}

// handleTenantActivate serves POST /tenants/{ref}/activate.
func (s *Server) handleTenantActivate(w http.ResponseWriter, r *http.Request) error {
	return s.setTenantStatus(w, r, tenancy.StatusActive, "activated")
}

func (s *Server) setTenantStatus(w http.ResponseWriter, r *http.Request, status tenancy.Status, done string) error {
	t, err := s.Tenants.SetTenantStatus(r.Context(), chi.URLParam(r, "ref"), status)
	if err != nil {
		return err
	}
	s.audit(r, "set status "+string(status), t)
	s.setFlash(w, r, adminCookie, "Tenant “"+t.Name+"” "+done+".")
	http.Redirect(w, r, tenantPath(t), http.StatusSeeOther)
	return nil
}

// deletable finds the tenant a delete page is about; one that may not be
// deleted (already deleted, or the default tenant) is a conflict.
func (s *Server) deletable(r *http.Request) (*tenancy.Tenant, error) {
	t, err := s.Tenants.FindTenant(r.Context(), chi.URLParam(r, "ref"))
	if err != nil {
		return nil, err
	}
	if err := tenancy.CanDelete(t); err != nil {
		return nil, err
	}
	return t, nil
}

// handleTenantDeleteForm serves GET /tenants/{ref}/delete: the confirmation.
func (s *Server) handleTenantDeleteForm(w http.ResponseWriter, r *http.Request) error {
	t, err := s.deletable(r)
	if err != nil {
		return err
	}
	render(w, r, http.StatusOK, views.DeleteTenantPage(s.page(r, "Delete "+t.Name), s.tenantDetail(t), views.Form{}))
	return nil
}

// confirmForm asks for a name to be typed out before a deletion.
type confirmForm struct {
	Confirm string `form:"confirm"`
}

// handleTenantDelete serves POST /tenants/{ref}/delete. The slug must be
// typed out, so that a tenant is never deleted by a stray click.
func (s *Server) handleTenantDelete(w http.ResponseWriter, r *http.Request) error {
	t, err := s.deletable(r)
	if err != nil {
		return err
	}
	var in confirmForm
	f := parseForm(r, &in)
	if strings.TrimSpace(in.Confirm) != t.Slug {
		setFieldError(&f, "confirm", "Type the slug "+t.Slug+" exactly to confirm.")
		render(w, r, http.StatusUnprocessableEntity, views.DeleteTenantPage(s.page(r, "Delete "+t.Name), s.tenantDetail(t), f))
		return nil
	}
	if _, err := s.Tenants.DeleteTenant(r.Context(), t.ID); err != nil {
		return err
	}
	s.audit(r, "delete", t)
	msg := "Tenant “" + t.Name + "” (" + t.Slug + ") deleted."
	// The delete has committed; its files go after it, and a removal that
	// fails now is tried again by the server until it succeeds.
	if s.Storage != nil {
		if _, err := s.Storage.RemoveTenantStorage(r.Context(), t.ID); err != nil {
			s.Log.Warn("deleted tenant's files not removed yet", "tenant", t.Slug, "err", err)
			msg += " Its files could not be removed yet; the server tries again until they are."
		} else {
			msg += " Its files were removed."
		}
	}
	s.setFlash(w, r, adminCookie, msg)
	http.Redirect(w, r, "/tenants", http.StatusSeeOther)
	return nil
}

// handleStats serves GET /stats.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	st, err := s.Tenants.TenantStats(ctx)
	if err != nil {
		return err
	}
	plans, err := s.Plans.ListPlans(ctx)
	if err != nil {
		return err
	}
	v := views.Stats{Total: st.Total}
	for _, sf := range statusFilters {
		if status := sf.filter.Status; status != "" {
			v.Statuses = append(v.Statuses, views.Bar{Key: string(status), Label: sf.label, Value: st.ByStatus[status], Max: max(st.Total, 1)})
		}
	}
	// Every plan that takes tenants is shown, with none too; an archived
	// plan only while tenants still have it.
	for _, p := range plans {
		if n := st.ByPlan[p.Name]; n > 0 || !p.Archived {
			v.Plans = append(v.Plans, views.Bar{Key: p.Name, Label: views.PlanTitle(p.Name), Value: n, Max: max(st.Total, 1)})
		}
	}
	render(w, r, http.StatusOK, views.StatsPage(s.page(r, "Statistics"), v))
	return nil
}

// audit records what an administrator did to a tenant: the request log
// line tells which path was posted, not who posted it.
func (s *Server) audit(r *http.Request, action string, t *tenancy.Tenant) {
	ctx := r.Context()
	noteTenant(ctx, t.Slug)
	s.Log.Info("platform admin action", "action", action, "tenant", t.Slug, "tenant_id", t.ID,
		"admin", AdminFrom(ctx).Email, "request_id", middleware.GetReqID(ctx))
}

// tenantPath is a tenant's page in the console.
func tenantPath(t *tenancy.Tenant) string { return "/tenants/" + url.PathEscape(t.Slug) }

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
