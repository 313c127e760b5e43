package web

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// secondFactorRoutes are the second step of signing in and the set-up of
// an authenticator. They are not behind requireRole: a session waiting
// for its second factor (or for enrolment) reaches these and nothing else.
// Without TOTP_ENCRYPTION_KEY there is no two-factor authentication.
func (s *Server) secondFactorRoutes(r chi.Router) {
	if s.TwoFactor == nil {
		return
	}
	r.Get("/signin/2fa", s.h(s.handleSecondFactorForm))
	r.Post("/signin/2fa", s.h(s.handleSecondFactor))
	r.Get("/account/2fa/setup", s.h(s.handleEnrolForm))
	r.Post("/account/2fa/confirm", s.h(s.handleEnrolConfirm))
	r.Post("/account/2fa/disable", s.h(s.handleTwoFactorDisable))
	r.Post("/account/2fa/recovery-codes", s.h(s.handleRecoveryCodesRenew))
	r.Post("/account/2fa/policy", s.h(s.handleTwoFactorPolicy))
}

// pendingIdentityFrom returns the identity of a session that still waits
// for its second factor, or nil.
func pendingIdentityFrom(r *http.Request) *tenancy.Identity {
	if st := stateOf(r.Context()); st != nil && st.identity != nil && st.identity.SecondFactor != "" {
		return copyIdentity(st.identity)
	}
	return nil
}

// stepPath is the page where a waiting session takes its next step.
func stepPath(step string) string {
	if step == tenancy.SecondFactorEnrol {
		return "/account/2fa/setup"
	}
	return "/signin/2fa"
}

// holdPendingSessions keeps a session that waits for its second factor on
// the page of that step: anything else is sent there (or refused, for a
// form), but signing out, the tenant's look and its logos.
func (s *Server) holdPendingSessions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := pendingIdentityFrom(r)
		if id == nil {
			next.ServeHTTP(w, r)
			return
		}
		p := r.URL.Path
		allowed := p == "/signout" || p == "/brand.css" || strings.HasPrefix(p, "/logo/")
		switch id.SecondFactor {
		case tenancy.SecondFactorCode:
			allowed = allowed || p == "/signin/2fa"
		case tenancy.SecondFactorEnrol:
			allowed = allowed || p == "/account/2fa/setup" || p == "/account/2fa/confirm"
		}
		switch {
		case allowed:
			next.ServeHTTP(w, r)
		case isSafeMethod(r.Method) && r.Header.Get("HX-Request") == "":
			http.Redirect(w, r, stepPath(id.SecondFactor), http.StatusSeeOther)
		default:
			s.respondError(w, r, http.StatusForbidden, "Not allowed", "Finish signing in first.")
		}
	})
}

// ownAccountPath reports whether a path looks after the visitor's own
// account, which a guest may change too.
func ownAccountPath(p string) bool {
	return strings.HasPrefix(p, "/account/") && p != "/account/2fa/policy"
}

// secondFactorKey limits wrong codes per account, wherever they come from.
func secondFactorKey(tenantID, userID string) string { return "2fa|" + tenantID + "|" + userID }

// codeLimited reports whether the account has had too many wrong codes
// (in this process), putting the message on the form when it has.
func (s *Server) codeLimited(tenantID, userID string, f *views.Form) bool {
	if blocked, wait := s.limiter.blocked(secondFactorKey(tenantID, userID), maxPairFailure); blocked {
		f.Error = "Too many wrong codes. " + strings.TrimPrefix(tooManyAttempts(wait), "Too many sign-in attempts. ")
		return true
	}
	return false
}

// handleSecondFactorForm serves GET /signin/2fa.
func (s *Server) handleSecondFactorForm(w http.ResponseWriter, r *http.Request) error {
	if pendingIdentityFrom(r) == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	render(w, r, http.StatusOK, views.SecondFactorPage(s.page(r, "Two-step sign-in"), views.Form{}))
	return nil
}

// handleSecondFactor serves POST /signin/2fa: a right code completes the
// session under a new token.
func (s *Server) handleSecondFactor(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, id := TenantFrom(ctx), pendingIdentityFrom(r)
	if id == nil || id.SecondFactor != tenancy.SecondFactorCode {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	var in codeForm
	f := parseForm(r, &in)
	p := s.page(r, "Two-step sign-in")
	if s.codeLimited(t.ID, id.User.ID, &f) {
		render(w, r, http.StatusTooManyRequests, views.SecondFactorPage(p, f))
		return nil
	}
	sess := s.session(r, tenantCookie)
	token, _ := sess.Values[keyToken].(string)
	newToken, err := s.TwoFactor.CompleteSignIn(ctx, t.ID, token, in.Code)
	if tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
		// The wait for the code ended (tenancy.PendingSignInTTL): start
		// again from the password.
		sess := s.freshSession(r, tenantCookie)
		sess.Values[keyFlash] = "Signing in took too long. Enter your password again."
		if err := sess.Save(r, w); err != nil {
			return err
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	if err == tenancy.ErrBadSecondFactor {
		s.limiter.fail(secondFactorKey(t.ID, id.User.ID))
		fieldError(&f, err)
		render(w, r, http.StatusUnprocessableEntity, views.SecondFactorPage(p, f))
		return nil
	} else if err != nil {
		return err
	}
	s.limiter.reset(secondFactorKey(t.ID, id.User.ID))
	return s.switchToken(w, r, newToken, "/dashboard")
}

// switchToken puts the completed session's new token in a new cookie,
// and goes on to next.
func (s *Server) switchToken(w http.ResponseWriter, r *http.Request, token, next string) error {
	sess := s.freshSession(r, tenantCookie)
	sess.Values[keyToken] = token
	sess.Values[keyTenant] = TenantFrom(r.Context()).ID
	if err := sess.Save(r, w); err != nil {
		return err
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// accountIdentity is whoever may set up an authenticator: a signed-in
// person, or a session held until it enrols.
func accountIdentity(r *http.Request) *tenancy.Identity {
	if id := IdentityFrom(r.Context()); id != nil {
		return id
	}
	if id := pendingIdentityFrom(r); id != nil && id.SecondFactor == tenancy.SecondFactorEnrol {
		return id
	}
	return nil
}

// handleEnrolForm serves GET /account/2fa/setup: a new secret (or the one
// being set up), its QR code and the form for the first code.
func (s *Server) handleEnrolForm(w http.ResponseWriter, r *http.Request) error {
	return s.renderEnrol(w, r, http.StatusOK, views.Form{})
}

func (s *Server) renderEnrol(w http.ResponseWriter, r *http.Request, status int, f views.Form) error {
	ctx := r.Context()
	t, id := TenantFrom(ctx), accountIdentity(r)
	if id == nil {
		http.Redirect(w, r, "/?next=/account/2fa/setup", http.StatusSeeOther)
		return nil
	}
	e, err := s.TwoFactor.BeginEnrolment(ctx, t.ID, id.User, t.Name)
	if tenancy.ErrorCode(err) == tenancy.ECONFLICT {
		s.setFlash(w, r, tenantCookie, tenancy.ErrorMessage(err))
		http.Redirect(w, r, "/account/security", http.StatusSeeOther)
		return nil
	} else if err != nil {
		return err
	}
	// The page carries the secret: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	render(w, r, status, views.EnrolPage(s.page(r, "Set up two-factor"), views.Enrol{
		QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRCode),
		Secret: e.Secret, Forced: id.SecondFactor == tenancy.SecondFactorEnrol, Form: f,
	}))
	return nil
}

// handleEnrolConfirm serves POST /account/2fa/confirm: the first code
// turns two factors on, and the recovery codes are shown once.
func (s *Server) handleEnrolConfirm(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, id := TenantFrom(ctx), accountIdentity(r)
	if id == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	var in codeForm
	f := parseForm(r, &in)
	if s.codeLimited(t.ID, id.User.ID, &f) {
		return s.renderEnrol(w, r, http.StatusTooManyRequests, f)
	}
	token, _ := s.session(r, tenantCookie).Values[keyToken].(string)
	codes, newToken, err := s.TwoFactor.ConfirmEnrolment(ctx, t.ID, id.User.ID, in.Code, token)
	if tenancy.ErrorCode(err) == tenancy.EINVALID {
		if err == tenancy.ErrBadEnrolmentCode {
			s.limiter.fail(secondFactorKey(t.ID, id.User.ID))
		}
		fieldError(&f, err)
		return s.renderEnrol(w, r, http.StatusUnprocessableEntity, f)
	} else if err != nil {
		return err
	}
	s.limiter.reset(secondFactorKey(t.ID, id.User.ID))
	next := "/account/security"
	if newToken != "" {
		sess := s.freshSession(r, tenantCookie)
		sess.Values[keyToken] = newToken
		sess.Values[keyTenant] = t.ID
		if err := sess.Save(r, w); err != nil {
			return err
		}
		// The page below was made for the session that waited: it now
		// shows as the full one.
		id2 := *id
		id2.SecondFactor = ""
		r = withContext(r, withCSRF(withIdentity(ctx, &id2), s.csrfToken(newToken)))
		next = "/dashboard"
	}
	w.Header().Set("Cache-Control", "no-store")
	render(w, r, http.StatusOK, views.RecoveryCodesPage(s.page(r, "Recovery codes"), codes, next, false))
	return nil
}

// handleTwoFactorDisable serves POST /account/2fa/disable.
func (s *Server) handleTwoFactorDisable(w http.ResponseWriter, r *http.Request) error {
	ok, err := s.withCurrentCode(w, r, func(f views.Form) views.Security { return views.Security{Disable: f} },
		func(ctx context.Context, tenantID string, id *tenancy.Identity, code string) error {
			return s.TwoFactor.Disable(ctx, tenantID, id, code)
		})
	if !ok {
		return err
	}
	s.setFlash(w, r, tenantCookie, "Two-factor authentication is off.")
	http.Redirect(w, r, "/account/security", http.StatusSeeOther)
	return nil
}

// handleRecoveryCodesRenew serves POST /account/2fa/recovery-codes: after
// a current code, new recovery codes replace the old ones and are shown
// once.
func (s *Server) handleRecoveryCodesRenew(w http.ResponseWriter, r *http.Request) error {
	var codes []string
	ok, err := s.withCurrentCode(w, r, func(f views.Form) views.Security { return views.Security{Renew: f} },
		func(ctx context.Context, tenantID string, id *tenancy.Identity, code string) (err error) {
			codes, err = s.TwoFactor.RenewRecoveryCodes(ctx, tenantID, id, code)
			return err
		})
	if !ok {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	render(w, r, http.StatusOK, views.RecoveryCodesPage(s.page(r, "Recovery codes"), codes, "/account/security", true))
	return nil
}

// withCurrentCode runs act with the code a form of the Security page was
// sent with (place puts that form on the page), as the signed-in person.
// Wrong codes count against the person's limit; a refusal shows the page
// again with the reason at the form, and a change made meanwhile (two
// factors turned off in another tab) takes the person back to the page.
// It reports whether act succeeded; if not, the request was answered
// (or err is for the one error handler).
func (s *Server) withCurrentCode(w http.ResponseWriter, r *http.Request, place func(views.Form) views.Security,
	act func(ctx context.Context, tenantID string, id *tenancy.Identity, code string) error) (bool, error) {
	ctx := r.Context()
	t, id := TenantFrom(ctx), IdentityFrom(ctx)
	if id == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return false, nil
	}
	var in codeForm
	f := parseForm(r, &in)
	if s.codeLimited(t.ID, id.User.ID, &f) {
		return false, s.renderSecurity(w, r, http.StatusTooManyRequests, place(f))
	}
	err := act(ctx, t.ID, id, in.Code)
	switch tenancy.ErrorCode(err) {
	case "":
		s.limiter.reset(secondFactorKey(t.ID, id.User.ID))
		return true, nil
	case tenancy.ECONFLICT:
		s.setFlash(w, r, tenantCookie, tenancy.ErrorMessage(err))
		http.Redirect(w, r, "/account/security", http.StatusSeeOther)
		return false, nil
	case tenancy.EINVALID, tenancy.EFORBIDDEN:
		if err == tenancy.ErrBadSecondFactor {
			s.limiter.fail(secondFactorKey(t.ID, id.User.ID))
		}
		fieldError(&f, err)
		return false, s.renderSecurity(w, r, statusOf(tenancy.ErrorCode(err)), place(f))
	}
	return false, err
}

// handleTwoFactorPolicy serves POST /account/2fa/policy (owners).
func (s *Server) handleTwoFactorPolicy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := IdentityFrom(ctx)
	if id == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	required := r.PostFormValue("required") != ""
	if err := s.TwoFactor.SetPolicy(ctx, TenantFrom(ctx).ID, id, required); err != nil {
		return err
	}
	msg := "Two-factor authentication is no longer required."
	if required {
		msg = "Owners and admins now need two-factor authentication; those without it set it up when they next sign in."
	}
	s.setFlash(w, r, tenantCookie, msg)
	http.Redirect(w, r, "/account/security", http.StatusSeeOther)
	return nil
}

// codeForm is the one field of the second-factor forms: an authenticator
// or recovery code, never shown again.
type codeForm struct {
	Code string `form:"code,secret"`
}
