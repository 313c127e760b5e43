package web

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// invitationRoutes are where an invitation link leads; the invitee is not
// signed in yet.
func (s *Server) invitationRoutes(r chi.Router) {
	r.Get("/invitations/accept", s.h(s.handleInvitationForm))
	r.Post("/invitations/accept", s.h(s.handleInvitationAccept))
}

// invitationView is the accept page's view of inv for the visitor.
func invitationView(r *http.Request, token string, inv *tenancy.Invitation) views.Invitation {
	v := views.Invitation{Token: token, TenantName: inv.TenantName, Inviter: inv.Inviter(), Email: inv.Email,
		Role: string(inv.Role), NeedsPassword: inv.NeedsPassword}
	if id := IdentityFrom(r.Context()); id != nil {
		v.SignedInAs = id.User.Email
	}
	return v
}

// renderInvitation renders the accept page. The token is in the page's
// address, so the page sends no Referer anywhere.
func (s *Server) renderInvitation(w http.ResponseWriter, r *http.Request, status int, v views.Invitation, f views.Form) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	render(w, r, status, views.AcceptInvitation(s.page(r, "Invitation"), v, f))
}

// findInvitation looks the token up, turning an unusable invitation into
// the page that says why.
func (s *Server) findInvitation(w http.ResponseWriter, r *http.Request, token string) (*tenancy.Invitation, bool, error) {
	inv, err := s.Invitations.Find(r.Context(), TenantFrom(r.Context()).ID, token)
	if tenancy.ErrorCode(err) == tenancy.EINVALID {
		s.renderInvitation(w, r, http.StatusGone, views.Invitation{Problem: tenancy.ErrorMessage(err)}, views.Form{})
		return nil, false, nil
	}
	return inv, err == nil, err
}

// handleInvitationForm serves GET /invitations/accept: who invited, to
// what and with which role, and a form to confirm. Opening the link
// changes nothing.
func (s *Server) handleInvitationForm(w http.ResponseWriter, r *http.Request) error {
	r = s.withAnonCSRF(w, r, tenantCookie)
	token := r.URL.Query().Get("token")
	inv, ok, err := s.findInvitation(w, r, token)
	if !ok {
		return err
	}
	s.renderInvitation(w, r, http.StatusOK, invitationView(r, token, inv), views.Form{})
	return nil
}

// acceptForm accepts an invitation; the password is a new account's.
type acceptForm struct {
	Token    string `form:"token"`
	Password string `form:"password,secret"`
}

// handleInvitationAccept serves POST /invitations/accept: the invitee
// joins, and a new account is signed in at once; an existing one signs in
// with its own password.
func (s *Server) handleInvitationAccept(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	var in acceptForm
	parseForm(r, &in)
	token, pw := in.Token, in.Password
	inv, ok, err := s.findInvitation(w, r, token)
	if !ok {
		return err
	}
	view := invitationView(r, token, inv)
	if view.SignedInAs != "" {
		// Accepting would add a member while another account stays signed
		// in on this browser: the page says so and offers to sign out.
		s.renderInvitation(w, r, http.StatusConflict, view, views.Form{})
		return nil
	}
	inv, _, err = s.Invitations.Accept(ctx, t.ID, token, pw)
	if err != nil {
		code := tenancy.ErrorCode(err)
		if code == tenancy.EINTERNAL {
			return err
		}
		f := views.Form{Values: map[string]string{"password": ""}, Errors: map[string]string{}}
		fieldError(&f, err)
		s.renderInvitation(w, r, statusOf(code), view, f)
		return nil
	}
	if !view.NeedsPassword {
		s.setFlash(w, r, tenantCookie, "You joined "+inv.TenantName+" as "+string(inv.Role)+". Sign in with your password.")
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	token, _, err = s.Auth.SignIn(ctx, t.ID, inv.Email, pw, tenancy.SessionMeta{UserAgent: r.UserAgent(), ClientIP: clientIP(r)})
	if err != nil {
		return err
	}
	sess := s.freshSession(r, tenantCookie)
	sess.Values[keyToken] = token
	sess.Values[keyTenant] = t.ID
	sess.Values[keyFlash] = "Welcome to " + inv.TenantName + ". You joined as " + strings.ToLower(string(inv.Role)) + "."
	if err := sess.Save(r, w); err != nil {
		return err
	}
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
	return nil
}
