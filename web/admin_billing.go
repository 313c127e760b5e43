package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// eventListLimit is how many of the latest Stripe events the console
// lists.
const eventListLimit = 100

// billingRoutes are the console's billing pages, there only when billing
// records are kept.
func (s *Server) billingRoutes(r chi.Router) {
	if !s.on.usage {
		return
	}
	r.Route("/billing", func(r chi.Router) {
		r.Get("/", s.h(s.handleBillingOverview))
		r.Get("/events/{id}", s.h(s.handleEventShow))
		if s.on.billing {
			r.Post("/events/{id}/replay", s.h(s.handleEventReplay))
		}
	})
}

// eventFilters are the choices of the event list's status filter.
var eventFilters = []views.Option{
	{Value: "", Label: "All"},
	{Value: tenancy.EventStatusFailed, Label: "Failed"},
	{Value: tenancy.EventStatusProcessed, Label: "Processed"},
	{Value: tenancy.EventStatusIgnored, Label: "Ignored"},
}

// handleBillingOverview serves GET /billing: revenue by plan, tenants past
// due and the Stripe events received. The status filter asks with htmx
// and gets only the event table back.
func (s *Server) handleBillingOverview(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	l := views.EventList{Status: r.URL.Query().Get("status"), StatusOptions: eventFilters, Limit: eventListLimit}
	status := http.StatusOK
	known := false
	for _, o := range eventFilters {
		known = known || o.Value == l.Status
	}
	if !known {
		status = http.StatusUnprocessableEntity
		l.Error = "status " + tenancy.Quote(l.Status) + " is not one of failed, processed, ignored"
	} else {
		events, err := s.BillingStore.ListEvents(ctx, l.Status, eventListLimit)
		if err != nil {
			return err
		}
		for _, e := range events {
			l.Rows = append(l.Rows, eventRow(e))
		}
	}

	if partialSwap(w, r) {
		render(w, r, status, views.EventTable(l))
		return nil
	}

	o := views.BillingOverview{Events: l, BillingOn: s.on.billing}
	revenue, err := s.BillingStore.Revenue(ctx)
	if err != nil {
		return err
	}
	var tenants int
	var cents int64
	for _, pr := range revenue {
		o.Revenue = append(o.Revenue, views.RevenueRow{Plan: pr.Plan, Tenants: strconv.Itoa(pr.Tenants), Monthly: tenancy.FormatPrice(pr.MonthlyCts)})
		tenants += pr.Tenants
		cents += pr.MonthlyCts
	}
	o.TotalTenants, o.TotalMonthly = strconv.Itoa(tenants), tenancy.FormatPrice(cents)
	pastDue, err := s.BillingStore.PastDue(ctx)
	if err != nil {
		return err
	}
	for _, t := range pastDue {
		o.PastDue = append(o.PastDue, views.TenantRow{Slug: t.Slug, Name: t.Name, Status: string(t.Status), Plan: t.Plan,
			Created: formatTime(t.CreatedAt), Href: tenantPath(t)})
	}
	p := s.page(r, "Billing")
	p.Flash = s.takeFlash(w, r, adminCookie)
	render(w, r, status, views.BillingOverviewPage(p, o))
	return nil
}

func eventRow(e *tenancy.EventRecord) views.EventRow {
	row := views.EventRow{
		ID: e.ID, Type: e.Type, Created: formatTime(e.Created), Status: e.Status, Result: e.Result,
		Tenant: e.TenantSlug, Attempts: strconv.Itoa(e.Attempts), Received: formatTime(e.ReceivedAt),
		Href: eventPath(e.ID),
	}
	if e.TenantSlug != "" {
		row.TenantHref = "/tenants/" + url.PathEscape(e.TenantSlug)
	}
	if e.ProcessedAt != nil {
		row.Processed = formatTime(*e.ProcessedAt)
	}
	return row
}

// handleEventShow serves GET /billing/events/{id}: one event with its
// payload as Stripe sent it, indented.
func (s *Server) handleEventShow(w http.ResponseWriter, r *http.Request) error {
	e, err := s.BillingStore.FindEvent(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	d := views.EventDetail{EventRow: eventRow(e), BillingOn: s.on.billing}
	d.CanReplay = d.BillingOn && e.Status == tenancy.EventStatusFailed
	var b bytes.Buffer
	if json.Indent(&b, e.Payload, "", "  ") == nil {
		d.Payload = b.String()
	} else {
		d.Payload = string(e.Payload)
	}
	p := s.page(r, "Stripe event "+e.ID)
	p.Flash = s.takeFlash(w, r, adminCookie)
	render(w, r, http.StatusOK, views.EventPage(p, d))
	return nil
}

// handleEventReplay serves POST /billing/events/{id}/replay: a failed
// event is processed again from its stored payload, once what made it fail
// has been fixed (a plan given the event's Stripe price, say). The outcome
// is said on the event's page, which shows the event as it is now.
func (s *Server) handleEventReplay(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	e, err := s.BillingStore.FindEvent(ctx, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if e.Status != tenancy.EventStatusFailed {
		return tenancy.Errorf(tenancy.ECONFLICT, "event %s is %s: only failed events are replayed", e.ID, e.Status)
	}
	out, err := s.Billing.Replay(ctx, e.ID)
	msg := "Event " + e.ID + " replayed: "
	switch code := tenancy.ErrorCode(err); code {
	case "":
		msg += out.Status + ". " + out.Result
	case tenancy.EINTERNAL:
		noteError(ctx, err)
		s.Log.Error("replay Stripe event", "event", e.ID, "err", err)
		msg += "failed again on our side; the event's result says why."
	default:
		msg += "failed again. " + tenancy.ErrorMessage(err)
	}
	s.Log.Info("platform admin action", "action", "replay Stripe event", "event", e.ID,
		"admin", AdminFrom(ctx).Email, "request_id", middleware.GetReqID(ctx))
	s.setFlash(w, r, adminCookie, msg)
	http.Redirect(w, r, eventPath(e.ID), http.StatusSeeOther)
	return nil
}

// eventPath is a Stripe event's page in the console.
func eventPath(id string) string { return "/billing/events/" + url.PathEscape(id) }
