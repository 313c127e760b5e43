package web

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/internal/useragent"
	"github.com/nself/nself/views"
)

// accountRoutes are a signed-in person's own account: security and
// sessions.
func (s *Server) accountRoutes(r chi.Router) {
	r.Get("/account/security", s.h(s.handleSecurity))
	r.Post("/account/password", s.h(s.handlePasswordChange))
	r.Get("/account/sessions", s.h(s.handleSessionList))
	r.Post("/account/sessions/end-others", s.h(s.handleSessionsEndOthers))
	r.Post("/account/sessions/{id}/end", s.h(s.handleSessionEnd))
}

// memberSessionRoutes let owners and admins end a member's sessions.
func (s *Server) memberSessionRoutes(r chi.Router) {
	r.Post("/members/{userID}/sessions/end", s.h(s.handleMemberSessionsEnd))
}

// handleSecurity serves GET /account/security.
func (s *Server) handleSecurity(w http.ResponseWriter, r *http.Request) error {
	return s.renderSecurity(w, r, http.StatusOK, views.Security{})
}

// renderSecurity shows the security page with forms, the forms of v (one
// of them answered with errors, or none).
func (s *Server) renderSecurity(w http.ResponseWriter, r *http.Request, status int, forms views.Security) error {
	ctx := r.Context()
	t, id := TenantFrom(ctx), IdentityFrom(ctx)
	v := views.Security{IsOwner: id.Role == tenancy.RoleOwner, Password: forms.Password, Disable: forms.Disable, Renew: forms.Renew}
	if s.TwoFactor != nil {
		st, err := s.TwoFactor.Status(ctx, t.ID, id)
		if err != nil {
			return err
		}
		v.TwoFactorOn, v.Enrolled, v.EnrolledAt, v.RecoveryLeft = true, st.Enrolled, st.EnrolledAt, st.RecoveryLeft
		v.Required, v.PolicyEnabled = st.Required, st.PolicyEnabled
	}
	p := s.page(r, "Security")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.SecurityPage(p, v))
	return nil
}

// handlePasswordChange serves POST /account/password: the new password
// ends every other session of the person.
func (s *Server) handlePasswordChange(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in passwordChangeForm
	f := parseForm(r, &in)
	id := IdentityFrom(ctx)
	key := "password|" + TenantFrom(ctx).ID + "|" + id.User.ID
	if blocked, wait := s.limiter.blocked(key, maxPairFailure); blocked {
		f.Error = tooManyAttempts(wait)
		return s.renderSecurity(w, r, http.StatusTooManyRequests, views.Security{Password: f})
	}
	n, err := s.Sessions.ChangePassword(ctx, TenantFrom(ctx).ID, id, in.Current, in.Password)
	if tenancy.ErrorCode(err) == tenancy.EINVALID {
		fieldError(&f, err)
		if f.Err("current") != "" {
			s.limiter.fail(key)
		}
		return s.renderSecurity(w, r, http.StatusUnprocessableEntity, views.Security{Password: f})
	} else if err != nil {
		return err
	}
	s.limiter.reset(key)
	s.setFlash(w, r, tenantCookie, fmt.Sprintf("Your password is changed. %s ended.", sessionsEnded(n)))
	http.Redirect(w, r, "/account/security", http.StatusSeeOther)
	return nil
}

func sessionsEnded(n int) string {
	if n == 1 {
		return "1 other session"
	}
	return fmt.Sprintf("%d other sessions", n)
}

// handleSessionList serves GET /account/sessions.
func (s *Server) handleSessionList(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	list, err := s.Sessions.ListSessions(ctx, TenantFrom(ctx).ID, IdentityFrom(ctx))
	if err != nil {
		return err
	}
	rows := make([]views.SessionRow, 0, len(list))
	for _, si := range list {
		addr := si.ClientIP
		if addr == "" {
			addr = "unknown"
		}
		rows = append(rows, views.SessionRow{ID: si.ID, Browser: useragent.Describe(si.UserAgent), Address: addr,
			SignedIn: si.CreatedAt, LastSeen: si.LastSeen, Current: si.Current})
	}
	p := s.page(r, "Sessions")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, http.StatusOK, views.SessionsPage(p, rows))
	return nil
}

// handleSessionEnd serves POST /account/sessions/{id}/end. Ending the
// current session signs out.
func (s *Server) handleSessionEnd(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, sid := IdentityFrom(ctx), chi.URLParam(r, "id")
	if err := s.Sessions.EndSession(ctx, TenantFrom(ctx).ID, id, sid); err != nil {
		return err
	}
	if sid == id.SessionID {
		s.endSession(w, r, tenantCookie)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	s.setFlash(w, r, tenantCookie, "That session is signed out.")
	http.Redirect(w, r, "/account/sessions", http.StatusSeeOther)
	return nil
}

// handleSessionsEndOthers serves POST /account/sessions/end-others.
func (s *Server) handleSessionsEndOthers(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	n, err := s.Sessions.EndOtherSessions(ctx, TenantFrom(ctx).ID, IdentityFrom(ctx))
	if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, fmt.Sprintf("Signed out everywhere else: %s ended.", sessionsEnded(n)))
	http.Redirect(w, r, "/account/sessions", http.StatusSeeOther)
	return nil
}

// handleMemberSessionsEnd serves POST /members/{userID}/sessions/end.
func (s *Server) handleMemberSessionsEnd(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	n, err := s.Sessions.EndMemberSessions(ctx, TenantFrom(ctx).ID, IdentityFrom(ctx), chi.URLParam(r, "userID"))
	if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, fmt.Sprintf("Signed out everywhere: %d session(s) ended.", n))
	http.Redirect(w, r, "/members", http.StatusSeeOther)
	return nil
}

// passwordChangeForm changes one's own password; neither field is shown
// again.
type passwordChangeForm struct {
	Current  string `form:"current,secret"`
	Password string `form:"password,secret"`
}
