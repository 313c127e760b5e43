package web

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

func (s *Server) authRoutes(r chi.Router) {
	r.Post("/signin", s.h(s.handleSignIn))
	// A refused sign-in is drawn at /signin: opened again (reloaded,
	// bookmarked), the address shows the sign-in page.
	r.Get("/signin", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusSeeOther) })
	r.Post("/signout", s.h(s.handleSignOut))
	r.Get("/password/forgot", s.h(s.handleForgotForm))
	r.Post("/password/forgot", s.h(s.handleForgot))
	r.Get("/password/set", s.h(s.handleSetPasswordForm))
	r.Get("/password/reset", s.h(s.handleSetPasswordForm))
	r.Post("/password/set", s.h(s.handleSetPassword))
}

// tooManyAttempts says when to try again.
func tooManyAttempts(wait time.Duration) string {
	return tryAgainIn("Too many sign-in attempts.", wait)
}

// tryAgainIn says why a request was refused and in how many minutes to
// try again.
func tryAgainIn(why string, wait time.Duration) string {
	return fmt.Sprintf("%s Try again in %d minutes.", why, int(math.Ceil(wait.Minutes())))
}

// signInForm is the portal's sign-in form; Next is where to go after.
type signInForm struct {
	Email    string `form:"email"`
	Password string `form:"password,secret"`
	Next     string `form:"next"`
}

// handleSignIn serves POST /signin.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	var in signInForm
	f := parseForm(r, &in)
	next := localPath(in.Next)
	f.Values["next"] = next
	c, err := s.ssoConfig(r)
	if err != nil {
		return err
	}
	p := s.signInPage(w, r, c, next)
	if to := s.ssoForPassword(c, in.Email, in.Password, next); to != "" {
		http.Redirect(w, r, to, http.StatusSeeOther)
		return nil
	}

	keys := newSignInKeys(t.ID, in.Email, clientIP(r))
	if blocked, wait := s.limiter.signInBlocked(keys); blocked {
		f.Error = tooManyAttempts(wait)
		render(w, r, http.StatusTooManyRequests, views.SignIn(p, f, "/signin"))
		return nil
	}

	token, id, err := s.Auth.SignIn(ctx, t.ID, in.Email, in.Password,
		tenancy.SessionMeta{UserAgent: r.UserAgent(), ClientIP: clientIP(r)})
	switch code := tenancy.ErrorCode(err); code {
	case "":
	case tenancy.EINVALID, tenancy.EFORBIDDEN:
		if code == tenancy.EINVALID {
			s.limiter.signInFailed(keys)
		}
		f.Error = tenancy.ErrorMessage(err)
		render(w, r, statusOf(code), views.SignIn(p, f, "/signin"))
		return nil
	default:
		return err
	}
	s.limiter.signInSucceeded(keys)
	warning, err := s.passwordAllowed(r, c, token, id)
	if code := tenancy.ErrorCode(err); code == tenancy.EINTERNAL || code == tenancy.EUNAVAILABLE {
		return err
	} else if err != nil {
		f.Error = tenancy.ErrorMessage(err)
		render(w, r, statusOf(tenancy.ErrorCode(err)), views.SignIn(p, f, "/signin"))
		return nil
	}

	// A new session on every sign-in; the one before, if any, ends.
	if err := s.startSession(w, r, token, warning); err != nil {
		return err
	}
	if next == "" {
		next = "/dashboard"
	}
	if id.SecondFactor != "" {
		next = stepPath(id.SecondFactor)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// localPath is raw when it is a path on this host (what a sign-in may go
// back to), else "": an address elsewhere ("//evil.example", a scheme, a
// backslash browsers read as a slash) would make the sign-in page a
// redirector for phishing.
func localPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(raw, "/") ||
		strings.HasPrefix(raw, "//") || strings.ContainsAny(raw, "\\\r\n\t") || len(raw) > 2000 {
		return ""
	}
	return raw
}

// handleSignOut serves POST /signout.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) error {
	t := TenantFrom(r.Context())
	if token, _ := s.session(r, tenantCookie).Values[keyToken].(string); token != "" {
		if err := s.Auth.SignOut(r.Context(), t.ID, token); err != nil {
			return err
		}
	}
	s.endSession(w, r, tenantCookie)
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// handleForgotForm serves GET /password/forgot.
func (s *Server) handleForgotForm(w http.ResponseWriter, r *http.Request) error {
	r = s.withAnonCSRF(w, r, tenantCookie)
	render(w, r, http.StatusOK, views.ForgotPassword(s.page(r, "Reset password"), views.Form{}, false))
	return nil
}

// forgotForm asks for a password link.
type forgotForm struct {
	Email string `form:"email"`
}

// handleForgot serves POST /password/forgot: it records a reset link and
// its mail in the outbox if the account exists, and answers the same, in
// the same time, either way. The page says a link is on its way once the
// mail is recorded: the outbox sends it, however long the mail server
// takes to answer or to come back.
func (s *Server) handleForgot(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	var in forgotForm
	f := parseForm(r, &in)
	p := s.page(r, "Reset password")
	address := "reset|" + addressBlock(clientIP(r))
	if blocked, wait := s.limiter.blocked(address, maxAddressFailure); blocked {
		f.Error = tryAgainIn("Too many requests.", wait)
		render(w, r, http.StatusTooManyRequests, views.ForgotPassword(p, f, false))
		return nil
	}
	s.limiter.fail(address)
	if _, err := tenancy.NormalizeEmail(in.Email); err != nil {
		fieldError(&f, err)
		render(w, r, http.StatusUnprocessableEntity, views.ForgotPassword(p, f, false))
		return nil
	}
	start := time.Now()
	if _, _, err := s.Auth.RequestPasswordReset(ctx, t.ID, in.Email); err != nil {
		return err
	}
	// Recording a link writes rows that a request for no account does not;
	// on Citus, or a loaded server, that took 1.7 ms more. The answer waits
	// for a floor well above either, so its time tells nothing.
	select {
	case <-time.After(time.Until(start.Add(forgotFloor))):
	case <-ctx.Done():
		return ctx.Err()
	}
	render(w, r, http.StatusOK, views.ForgotPassword(p, f, true))
	return nil
}

// forgotFloor is the least time a password-link request is answered in.
const forgotFloor = 25 * time.Millisecond

// handleSetPasswordForm serves GET /password/set and /password/reset, the
// targets of one-time links.
func (s *Server) handleSetPasswordForm(w http.ResponseWriter, r *http.Request) error {
	r = s.withAnonCSRF(w, r, tenantCookie)
	// The token must not leak to other sites through the Referer header.
	w.Header().Set("Referrer-Policy", "no-referrer")
	render(w, r, http.StatusOK, views.SetPassword(s.page(r, "Choose a password"), views.Form{}, r.URL.Query().Get("token")))
	return nil
}

// setPasswordForm sets a password with a one-time link's token.
type setPasswordForm struct {
	Token    string `form:"token"`
	Password string `form:"password,secret"`
}

// handleSetPassword serves POST /password/set.
func (s *Server) handleSetPassword(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	var in setPasswordForm
	f := parseForm(r, &in)
	token := in.Token
	// A bad token is the form's error, not a field's: it has no input
	// a person could fix.
	delete(f.Values, "token")
	if _, err := s.Auth.ResetPassword(ctx, t.ID, token, in.Password); err != nil {
		if tenancy.ErrorCode(err) != tenancy.EINVALID {
			return err
		}
		fieldError(&f, err)
		render(w, r, http.StatusUnprocessableEntity, views.SetPassword(s.page(r, "Choose a password"), f, token))
		return nil
	}
	s.setFlash(w, r, tenantCookie, "Your password is set. Sign in with it.")
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}
