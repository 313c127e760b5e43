package web

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// planRoutes are the console's plan pages, there only when plans can be
// changed.
func (s *Server) planRoutes(r chi.Router) {
	if !s.on.plans {
		return
	}
	r.Route("/plans", func(r chi.Router) {
		r.Get("/", s.h(s.handlePlanList))
		r.Get("/new", s.h(s.handlePlanNew))
		r.Post("/", s.h(s.handlePlanCreate))
		r.Get("/{name}/edit", s.h(s.handlePlanEdit))
		r.Post("/{name}", s.h(s.handlePlanUpdate))
		r.Get("/{name}/archive", s.h(s.handlePlanArchiveForm))
		r.Post("/{name}/archive", s.h(s.handlePlanArchive))
	})
	if s.on.usage {
		r.Post("/tenants/{ref}/plan", s.h(s.handleTenantSetPlan))
	}
}

// planForm is a plan's form; its inputs are named as PlanInput.Validate
// names the fields, so that its errors land next to the right one.
type planForm struct {
	Name            string `form:"name"`
	MaxUsers        string `form:"max_users"`
	MaxStorageGB    string `form:"max_storage_gb"`
	MaxAPIRequests  string `form:"max_api_requests"`
	MaxComputeHours string `form:"max_compute_hours"`
	Price           string `form:"price"`
	StripePrice     string `form:"stripe_price"`
}

// handlePlanList serves GET /plans: every plan, archived ones too, with
// the number of tenants on each.
func (s *Server) handlePlanList(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	plans, err := s.Plans.ListPlans(ctx)
	if err != nil {
		return err
	}
	rows := make([]views.PlanRow, 0, len(plans))
	for _, p := range plans {
		// A count per plan: plans are few, and the tenant list's filter
		// already leaves deleted tenants out.
		_, n, err := s.Tenants.ListTenants(ctx, tenancy.TenantFilter{Plan: p.Name, Limit: 1})
		if err != nil {
			return err
		}
		row := planRow(p)
		row.Tenants = strconv.Itoa(n)
		row.CanArchive = !p.Archived && p.Name != tenancy.DefaultPlan
		rows = append(rows, row)
	}
	s.checkStripePrices(ctx, plans, rows)
	pg := s.page(r, "Plans")
	pg.Flash = s.takeFlash(w, r, adminCookie)
	render(w, r, http.StatusOK, views.PlanListPage(pg, rows))
	return nil
}

// stripeCheckTimeout bounds the Stripe look-ups of the plan list, all
// together, so that a Stripe that does not answer slows the page only
// this long.
const stripeCheckTimeout = 5 * time.Second

// checkStripePrices marks each plan whose Stripe price asks another
// amount than the plan says (a price changed in Stripe's dashboard, or
// before the console kept them in step). Stripe is asked outside any
// transaction; a price that cannot be read is said so, not hidden.
func (s *Server) checkStripePrices(ctx context.Context, plans []*tenancy.Plan, rows []views.PlanRow) {
	if s.Billing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, stripeCheckTimeout)
	defer cancel()
	for i, p := range plans {
		if p.StripePriceID == "" {
			continue
		}
		sp, err := s.Billing.Price(ctx, p.StripePriceID)
		switch {
		case err != nil:
			rows[i].StripeNote = "not checked: " + tenancy.ErrorMessage(err)
			rows[i].StripeMismatch = true
		case sp.AmountCents != p.PriceMonthlyCent || !sp.Monthly:
			rows[i].StripeNote = "Stripe asks " + sp.Asks() + ": edit the plan to fix it"
			rows[i].StripeMismatch = true
		}
	}
}

func planRow(p *tenancy.Plan) views.PlanRow {
	return views.PlanRow{
		Name:         p.Name,
		Users:        tenancy.FormatUsers(p.MaxUsers),
		Storage:      tenancy.FormatStorage(p.MaxStorageGB),
		APIRequests:  tenancy.FormatAPIRequests(p.MaxAPIRequests),
		ComputeHours: tenancy.FormatUsers(p.MaxComputeHours),
		Price:        tenancy.FormatPrice(p.PriceMonthlyCent),
		StripePrice:  p.StripePriceID,
		Archived:     p.Archived,
		Href:         planPath(p.Name),
	}
}

// handlePlanNew serves GET /plans/new.
func (s *Server) handlePlanNew(w http.ResponseWriter, r *http.Request) error {
	render(w, r, http.StatusOK, views.PlanFormPage(s.page(r, "New plan"), views.PlanForm{Form: views.Form{}, StripeChecked: s.Billing != nil}))
	return nil
}

// handlePlanCreate serves POST /plans. Limits left empty take the
// defaults of a new plan.
func (s *Server) handlePlanCreate(w http.ResponseWriter, r *http.Request) error {
	var form planForm
	f := parseForm(r, &form)
	in := planInput(&f, strings.TrimSpace(form.Name), false)
	var p *tenancy.Plan
	var err error
	if len(f.Errors) == 0 {
		s.stripePrice(r.Context(), &f, nil, &in)
	}
	if len(f.Errors) == 0 {
		p, err = s.PlanAdmin.CreatePlan(r.Context(), in)
	}
	if done, err := planFormDone(&f, err); !done {
		if err != nil {
			return err
		}
		render(w, r, http.StatusUnprocessableEntity, views.PlanFormPage(s.page(r, "New plan"), views.PlanForm{Form: f, StripeChecked: s.Billing != nil}))
		return nil
	}
	s.planAudit(r, "create plan", p.Name)
	s.setFlash(w, r, adminCookie, "Plan “"+p.Name+"” created.")
	http.Redirect(w, r, "/plans", http.StatusSeeOther)
	return nil
}

// handlePlanEdit serves GET /plans/{name}/edit, the form filled with the
// plan's terms.
func (s *Server) handlePlanEdit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.PlanAdmin.FindPlan(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		return err
	}
	f := views.Form{Values: map[string]string{
		"name":              p.Name,
		"max_users":         strconv.FormatInt(p.MaxUsers, 10),
		"max_storage_gb":    strconv.FormatInt(p.MaxStorageGB, 10),
		"max_api_requests":  strconv.FormatInt(p.MaxAPIRequests, 10),
		"max_compute_hours": strconv.FormatInt(p.MaxComputeHours, 10),
		"price":             strings.TrimPrefix(tenancy.FormatPrice(p.PriceMonthlyCent), "$"),
		"stripe_price":      p.StripePriceID,
	}}
	render(w, r, http.StatusOK, views.PlanFormPage(s.page(r, "Edit plan "+p.Name), views.PlanForm{Form: f, Plan: planRow(p), StripeChecked: s.Billing != nil}))
	return nil
}

// handlePlanUpdate serves POST /plans/{name}. Every term is sent; an empty
// Stripe price removes it.
func (s *Server) handlePlanUpdate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	// The plan as stored: the cache may not have heard of a save just
	// made, and the Stripe price would then look newly typed.
	old, err := s.PlanAdmin.FindPlan(ctx, chi.URLParam(r, "name"))
	if err != nil {
		return err
	}
	var form planForm
	parseForm(r, &form)
	form.Name = old.Name
	f := formView(&form)
	in := planInput(&f, old.Name, true)
	var p *tenancy.Plan
	var note string
	if len(f.Errors) == 0 {
		note = s.stripePrice(ctx, &f, old, &in)
	}
	if len(f.Errors) == 0 {
		p, err = s.PlanAdmin.UpdatePlan(ctx, in)
	}
	if done, err := planFormDone(&f, err); !done {
		if err != nil {
			return err
		}
		render(w, r, http.StatusUnprocessableEntity, views.PlanFormPage(s.page(r, "Edit plan "+old.Name), views.PlanForm{Form: f, Plan: planRow(old), StripeChecked: s.Billing != nil}))
		return nil
	}
	s.planAudit(r, "update plan", p.Name)
	if p.MaxUsers != old.MaxUsers {
		over, err := s.Tenants.OverMemberLimit(ctx, p)
		if err != nil {
			return err
		}
		if len(over) > 0 {
			note += fmt.Sprintf(" %s more members than it now allows (%s): they keep them, and can add none until they have fewer.",
				views.Count(len(over), "tenant has", "tenants have"), strings.Join(slices.Sorted(maps.Keys(over)), ", "))
		}
	}
	s.setFlash(w, r, adminCookie, "Plan “"+views.PlanTitle(p.Name)+"” saved. Tenants on it have its new limits now."+note)
	http.Redirect(w, r, "/plans", http.StatusSeeOther)
	return nil
}

// stripePrice keeps the plan's price and its Stripe price in agreement
// (tenancy.AgreeStripePrice), putting what Stripe refuses or cannot
// confirm on the form; it returns what to tell the administrator.
func (s *Server) stripePrice(ctx context.Context, f *views.Form, old *tenancy.Plan, in *tenancy.PlanInput) string {
	note, err := tenancy.AgreeStripePrice(ctx, s.Billing, old, in)
	if tenancy.ErrorCode(err) == tenancy.EUNAVAILABLE {
		s.Log.Warn("stripe price not checked", "plan", in.Name, "err", err)
	}
	if err != nil {
		fieldError(f, err)
		return ""
	}
	if note != "" {
		return " " + note
	}
	return ""
}

// planInput reads the plan form into an input, putting each value that
// cannot be read next to its field. With all set, every limit and the
// price must be given (an edit); otherwise those left empty are left out
// (a new plan's defaults).
func planInput(f *views.Form, name string, all bool) tenancy.PlanInput {
	// The domain names the fields it reads, as the form's inputs are
	// named; the values are those the form was parsed into.
	in, errs := tenancy.ReadPlanInput(name, func(field string) (string, bool) {
		v := strings.TrimSpace(f.Values[field])
		// The Stripe price is always sent: empty removes it.
		return v, v != "" || all || field == "stripe_price"
	})
	for _, err := range errs {
		fieldError(f, err)
	}
	if len(f.Errors) > 0 {
		// Say what else is wrong too, where a field has no message yet.
		var e *tenancy.Error
		if err := in.Validate(); asDomain(err, &e) && f.Errors[e.Field] == "" {
			fieldError(f, err)
		}
	}
	return in
}

// planFormDone sorts a plan service's answer: done when it succeeded;
// otherwise the refusals a person fixes on the form are put on it, and any
// other error is returned.
func planFormDone(f *views.Form, err error) (bool, error) {
	switch tenancy.ErrorCode(err) {
	case "":
		return len(f.Errors) == 0, nil
	case tenancy.EINVALID, tenancy.ECONFLICT:
		fieldError(f, err)
		return false, nil
	default:
		return false, err
	}
}

// archivable finds the plan an archive page is about; a plan archived
// already is a conflict.
func (s *Server) archivable(r *http.Request) (*tenancy.Plan, error) {
	p, err := s.PlanAdmin.FindPlan(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		return nil, err
	}
	if p.Archived {
		return nil, tenancy.Errorf(tenancy.ECONFLICT, "plan %s is already archived", tenancy.Quote(p.Name))
	}
	return p, nil
}

// renderArchive shows the archive confirmation, with the tenants that
// keep the plan.
func (s *Server) renderArchive(w http.ResponseWriter, r *http.Request, status int, p *tenancy.Plan, f views.Form) error {
	_, n, err := s.Tenants.ListTenants(r.Context(), tenancy.TenantFilter{Plan: p.Name, Limit: 1})
	if err != nil {
		return err
	}
	row := planRow(p)
	row.Tenants = views.Count(n, "tenant", "tenants")
	render(w, r, status, views.ArchivePlanPage(s.page(r, "Archive plan "+p.Name), row, f))
	return nil
}

// handlePlanArchiveForm serves GET /plans/{name}/archive: the confirmation.
func (s *Server) handlePlanArchiveForm(w http.ResponseWriter, r *http.Request) error {
	p, err := s.archivable(r)
	if err != nil {
		return err
	}
	return s.renderArchive(w, r, http.StatusOK, p, views.Form{})
}

// handlePlanArchive serves POST /plans/{name}/archive.
func (s *Server) handlePlanArchive(w http.ResponseWriter, r *http.Request) error {
	p, err := s.archivable(r)
	if err != nil {
		return err
	}
	if _, err := s.PlanAdmin.ArchivePlan(r.Context(), p.Name); tenancy.ErrorCode(err) == tenancy.EINVALID {
		return s.renderArchive(w, r, http.StatusUnprocessableEntity, p, views.Form{Error: tenancy.ErrorMessage(err)})
	} else if err != nil {
		return err
	}
	s.planAudit(r, "archive plan", p.Name)
	s.setFlash(w, r, adminCookie, "Plan “"+p.Name+"” archived: new tenants cannot pick it; tenants on it keep it.")
	http.Redirect(w, r, "/plans", http.StatusSeeOther)
	return nil
}

// tenantPlanForm moves a tenant to another plan.
type tenantPlanForm struct {
	Plan string `form:"plan"`
}

// handleTenantSetPlan serves POST /tenants/{ref}/plan. A plan the tenant
// cannot take (archived, too small for its members) is said next to the
// choice.
func (s *Server) handleTenantSetPlan(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, err := s.Tenants.FindTenant(ctx, chi.URLParam(r, "ref"))
	if err != nil {
		return err
	}
	var in tenantPlanForm
	f := parseForm(r, &in)
	updated, err := s.BillingStore.SetTenantPlan(ctx, t.ID, in.Plan)
	switch tenancy.ErrorCode(err) {
	case "":
	case tenancy.EINVALID, tenancy.ENOTFOUND, tenancy.EQUOTA, tenancy.ECONFLICT:
		setFieldError(&f, "plan", tenancy.ErrorMessage(err))
		return s.renderTenantPage(w, r, http.StatusUnprocessableEntity, t, f)
	default:
		return err
	}
	if updated.Plan == t.Plan {
		s.setFlash(w, r, adminCookie, "Tenant “"+updated.Name+"” was on plan "+updated.Plan+" already: nothing changed.")
		http.Redirect(w, r, tenantPath(updated), http.StatusSeeOther)
		return nil
	}
	s.audit(r, "set plan "+updated.Plan, updated)
	s.setFlash(w, r, adminCookie, "Tenant “"+updated.Name+"” is on plan "+updated.Plan+" now.")
	http.Redirect(w, r, tenantPath(updated), http.StatusSeeOther)
	return nil
}

// planAudit logs what an administrator did to a plan; the audit log has
// the change itself.
func (s *Server) planAudit(r *http.Request, action, plan string) {
	ctx := r.Context()
	s.Log.Info("platform admin action", "action", action, "plan", plan,
		"admin", AdminFrom(ctx).Email, "request_id", middleware.GetReqID(ctx))
}

// planPath is a plan's address in the console.
func planPath(name string) string { return "/plans/" + url.PathEscape(name) }
