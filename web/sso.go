package web

import (
	"crypto/subtle"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/sessions"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// ssoCookie holds one sign-in in flight at the provider: its state, nonce
// and PKCE verifier, bound to this browser. It is signed and encrypted
// with the session key, lives SSOFlowTTL at most and is used once.
const ssoCookie = "nself_sso"

// ssoRoutes registers single sign-on when its services are configured:
// starting and finishing a sign-in for anyone, the provider's settings
// for owners.
func (s *Server) ssoRoutes(r chi.Router) {
	if s.SSO == nil || s.SSOProvider == nil {
		return
	}
	r.Get("/sso/start", s.h(s.handleSSOStart))
	r.Get("/sso/callback", s.h(s.handleSSOCallback))
	r.Group(func(r chi.Router) {
		r.Use(s.requireRole(tenancy.RoleOwner))
		r.Get("/settings/sso", s.h(s.handleSSOSettings))
		r.Post("/settings/sso", s.h(s.handleSSOSave))
		r.Post("/settings/sso/test", s.h(s.handleSSOTest))
		r.Post("/settings/sso/remove", s.h(s.handleSSORemove))
	})
}

// ssoConfig is the tenant's provider, or nil when it has none or single
// sign-on is off.
func (s *Server) ssoConfig(r *http.Request) (*tenancy.SSOConfig, error) {
	if s.SSO == nil || s.SSOProvider == nil {
		return nil, nil
	}
	c, err := s.SSO.SSOConfig(r.Context(), TenantFrom(r.Context()).ID)
	if tenancy.ErrorCode(err) == tenancy.ENOTFOUND {
		return nil, nil
	}
	return c, err
}

// signInProvider is the tenant's provider as its sign-in page shows it,
// or nil when it has none or single sign-on is off. The service answers it
// from memory (postgres.SSOCache): the page anonymous visitors hit most
// makes no database round trip.
func (s *Server) signInProvider(r *http.Request) (*tenancy.SSOConfig, error) {
	if s.SSO == nil || s.SSOProvider == nil {
		return nil, nil
	}
	return s.SSO.SignInProvider(r.Context(), TenantFrom(r.Context()).ID)
}

// signInPage is the frame of the sign-in page, with the provider's button
// when the tenant has one. The page's form may then be answered with a
// redirect to the provider (an address it covers), which browsers hold to
// the page's form-action: the provider's origin is allowed there, on this
// page alone.
func (s *Server) signInPage(w http.ResponseWriter, r *http.Request, c *tenancy.SSOConfig, next string) views.Page {
	p := s.page(r, "Sign in")
	if c != nil {
		if u, err := url.Parse(c.Issuer); err == nil && u.Host != "" {
			w.Header().Set("Content-Security-Policy", strings.Replace(contentSecurityPolicy,
				"form-action 'self'", "form-action 'self' "+u.Scheme+"://"+u.Host, 1))
		}
		p.SignInWith = c.DisplayName
		p.SignInWithURL = "/sso/start"
		if next != "" {
			p.SignInWithURL += "?next=" + url.QueryEscape(next)
		}
		p.PasswordOwnersOnly = c.RequireSSO
	}
	return p
}

// ssoRedirectURL is this host's callback, which the owner registers at the
// provider.
func (s *Server) ssoRedirectURL(r *http.Request) string {
	return s.scheme + "://" + r.Host + "/sso/callback"
}

func (s *Server) ssoFlowCookie(r *http.Request) *sessions.Session {
	sess := s.freshSession(r, ssoCookie)
	sess.Options.MaxAge = int(tenancy.SSOFlowTTL.Seconds())
	sess.Options.Path = "/sso/"
	return sess
}

// handleSSOStart serves GET /sso/start: it sends the browser to the
// tenant's provider with a new state, nonce and PKCE challenge.
func (s *Server) handleSSOStart(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	c, err := s.ssoConfig(r)
	if err != nil {
		return err
	}
	next := localPath(r.URL.Query().Get("next"))
	if c == nil {
		return tenancy.Errorf(tenancy.ENOTFOUND, "This workspace has no single sign-on provider.")
	}
	if s.ssoBlocked(w, r, c) {
		return nil
	}
	if c.SecretUnreadable {
		return s.ssoRefused(w, r, c, true, "", tenancy.Errorf(tenancy.EUNAVAILABLE, "Single sign-on with %s is not working: an owner must enter its client secret again.", c.DisplayName))
	}
	state, _ := tenancy.NewSecret()
	nonce, _ := tenancy.NewSecret()
	verifier, _ := tenancy.NewSecret()
	flow := tenancy.SSOFlow{State: state, Nonce: nonce, Verifier: verifier}
	to, err := s.SSOProvider.AuthURL(ctx, c, s.ssoRedirectURL(r), flow)
	if err != nil {
		return s.ssoRefused(w, r, c, true, "", err)
	}
	sess := s.ssoFlowCookie(r)
	sess.Values["state"], sess.Values["nonce"], sess.Values["verifier"] = state, nonce, verifier
	sess.Values["tenant"], sess.Values["next"], sess.Values["at"] = t.ID, next, time.Now().Unix()
	if err := sess.Save(r, w); err != nil {
		return err
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// handleSSOCallback serves GET /sso/callback, where the provider sends the
// browser back: the state must be the one this browser's cookie holds, the
// code is exchanged with the PKCE verifier, and the verified ID token's
// email signs someone in.
func (s *Server) handleSSOCallback(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	c, err := s.ssoConfig(r)
	if err != nil {
		return err
	}
	if c == nil {
		return tenancy.Errorf(tenancy.ENOTFOUND, "This workspace has no single sign-on provider.")
	}
	if s.ssoBlocked(w, r, c) {
		return nil
	}
	// Used once, whatever happens next.
	var flow tenancy.SSOFlow
	var tenantID, next string
	var at int64
	if _, err := r.Cookie(ssoCookie); err == nil {
		if sess, err := s.cookies().New(r, ssoCookie); err == nil && !sess.IsNew {
			flow.State, _ = sess.Values["state"].(string)
			flow.Nonce, _ = sess.Values["nonce"].(string)
			flow.Verifier, _ = sess.Values["verifier"].(string)
			tenantID, _ = sess.Values["tenant"].(string)
			next, _ = sess.Values["next"].(string)
			at, _ = sess.Values["at"].(int64)
		}
		end := s.ssoFlowCookie(r)
		end.Options.MaxAge = -1
		end.Save(r, w)
	}
	q := r.URL.Query()
	// Whether this browser started a sign-in here that is still running:
	// a callback without one is what any page can make a browser send.
	started := flow.State != "" && tenantID == t.ID && time.Since(time.Unix(at, 0)) <= tenancy.SSOFlowTTL
	switch {
	case q.Get("error") != "":
		why := q.Get("error")
		if d := q.Get("error_description"); d != "" {
			why += ": " + d
		}
		return s.ssoRefused(w, r, c, started, "", tenancy.Errorf(tenancy.EFORBIDDEN, "%s did not sign you in (%s).", c.DisplayName, oneLineText(why, 200)))
	case !started:
		return s.ssoRefused(w, r, c, false, "", tenancy.Errorf(tenancy.EFORBIDDEN,
			"This sign-in expired or was started in another browser. Start again with “Sign in with %s”.", c.DisplayName))
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(flow.State)) != 1:
		return s.ssoRefused(w, r, c, true, "", tenancy.Errorf(tenancy.EFORBIDDEN,
			"The answer from %s does not belong to the sign-in this browser started (its state differs), so it was refused. Start again.", c.DisplayName))
	case q.Get("code") == "":
		return s.ssoRefused(w, r, c, true, "", tenancy.Errorf(tenancy.EFORBIDDEN, "%s sent no sign-in code. Start again.", c.DisplayName))
	}
	who, err := s.SSOProvider.Exchange(ctx, c, s.ssoRedirectURL(r), q.Get("code"), flow)
	if err != nil {
		return s.ssoRefused(w, r, c, true, "", err)
	}
	token, id, created, err := s.SSO.SSOSignIn(ctx, t.ID, *who, tenancy.SessionMeta{UserAgent: r.UserAgent(), ClientIP: clientIP(r)})
	if err != nil {
		return s.ssoRefused(w, r, c, true, who.Email, err)
	}
	flash := ""
	if created {
		flash = "Welcome to " + t.Name + ". You joined as " + string(id.Role) + " by signing in with " + c.DisplayName + "."
	}
	if err := s.startSession(w, r, token, flash); err != nil {
		return err
	}
	if next == "" {
		next = "/dashboard"
	}
	if id.SecondFactor != "" {
		// The session reaches nothing but its second factor yet.
		next = stepPath(id.SecondFactor)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// startSession replaces the browser's session with a new one holding
// token (and a message for the next page); the one before, if any, ends.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, token, flash string) error {
	t := TenantFrom(r.Context())
	if old, _ := s.session(r, tenantCookie).Values[keyToken].(string); old != "" {
		if err := s.Auth.SignOut(r.Context(), t.ID, old); err != nil {
			return err
		}
	}
	sess := s.freshSession(r, tenantCookie)
	sess.Values[keyToken] = token
	sess.Values[keyTenant] = t.ID
	if flash != "" {
		sess.Values[keyFlash] = flash
	}
	return sess.Save(r, w)
}

// ssoRefused records a refused single sign-on in the audit log and shows
// the sign-in page with the reason. Internal errors go to the one error
// translator. A refusal in a sign-in this browser started (started)
// counts against the address's limit on this tenant; one that is not
// (a callback any page can make a browser send, without the flow's
// cookie) does not, or a page could lock its visitors out, but only the
// first few of those in a window reach the audit log.
func (s *Server) ssoRefused(w http.ResponseWriter, r *http.Request, c *tenancy.SSOConfig, started bool, email string, err error) error {
	code := tenancy.ErrorCode(err)
	if code == tenancy.EINTERNAL {
		return err
	}
	msg := tenancy.ErrorMessage(err)
	logged := true
	if !started {
		key := "sso-unstarted|" + ssoAddress(r)
		if over, _ := s.limiter.blocked(key, maxUnstartedLogged); over {
			logged = false
		} else {
			s.limiter.fail(key)
		}
	} else if code != tenancy.EUNAVAILABLE {
		s.limiter.fail(ssoAddress(r))
	}
	if logged {
		if rerr := s.SSO.RecordSSOEvent(r.Context(), TenantFrom(r.Context()).ID, "sso.sign_in_refused", email, msg); rerr != nil {
			s.Log.Error("record refused single sign-on", "err", rerr)
		}
	}
	s.ssoSignInPage(w, r, c, email, statusOf(code), msg)
	return nil
}

// maxUnstartedLogged is how many refused callbacks without a sign-in
// started in the browser are written to the audit log per address, tenant
// and window.
const maxUnstartedLogged = 5

// ssoAddress is the limiter's key for the single sign-on refusals of the
// request's address on its tenant.
func ssoAddress(r *http.Request) string {
	return "sso|" + TenantFrom(r.Context()).ID + "|" + addressBlock(clientIP(r))
}

// ssoBlocked answers 429 to an address whose single sign-ons on this
// tenant were refused too often (maxAddressFailure in a window), and
// reports whether it did. Each refusal is a line in the tenant's audit log
// and a callback may cost a call to the provider; a person whose sign-ins
// succeed is never counted, nor one whose provider is down.
func (s *Server) ssoBlocked(w http.ResponseWriter, r *http.Request, c *tenancy.SSOConfig) bool {
	blocked, wait := s.limiter.blocked(ssoAddress(r), maxAddressFailure)
	if blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		s.ssoSignInPage(w, r, c, "", http.StatusTooManyRequests,
			tryAgainIn("Too many refused single sign-on attempts from your network.", wait))
	}
	return blocked
}

// ssoSignInPage shows the sign-in page with msg as the form's error.
func (s *Server) ssoSignInPage(w http.ResponseWriter, r *http.Request, c *tenancy.SSOConfig, email string, status int, msg string) {
	r = s.withAnonCSRF(w, r, tenantCookie)
	f := views.Form{Values: map[string]string{"email": email}, Error: msg}
	render(w, r, status, views.SignIn(s.signInPage(w, r, c, ""), f, "/signin"))
}

// ssoForPassword is the single sign-on hook of password sign-in: an
// address the provider covers, typed without a password, goes to the
// provider (its URL is returned).
func (s *Server) ssoForPassword(c *tenancy.SSOConfig, email, password, next string) string {
	if c == nil || password != "" || !c.Covers(strings.TrimSpace(email)) {
		return ""
	}
	to := "/sso/start"
	if next != "" {
		to += "?next=" + url.QueryEscape(next)
	}
	return to
}

// passwordAllowed is the other hook: with single sign-on required, a
// password session of anyone but an owner ends at once. It returns the
// owner's warning, or the refusal.
func (s *Server) passwordAllowed(r *http.Request, c *tenancy.SSOConfig, token string, id *tenancy.Identity) (string, error) {
	warning, err := tenancy.PasswordSignIn(c, id.Role)
	if err == nil {
		return warning, nil
	}
	ctx := r.Context()
	t := TenantFrom(ctx)
	if serr := s.Auth.SignOut(ctx, t.ID, token); serr != nil {
		return "", serr
	}
	if rerr := s.SSO.RecordSSOEvent(ctx, t.ID, "sso.password_refused", id.User.Email, "password sign-in refused: single sign-on is required"); rerr != nil {
		return "", rerr
	}
	return "", err
}

func oneLineText(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}

// ssoForm reads the provider form.
func ssoForm(r *http.Request) (views.Form, tenancy.SSOInput) {
	var sf ssoSettingsForm
	f := parseForm(r, &sf)
	in := tenancy.SSOInput{
		Issuer: sf.Issuer, ClientID: sf.ClientID, ClientSecret: sf.ClientSecret,
		DisplayName: sf.DisplayName, Domains: sf.Domains, DefaultRole: sf.DefaultRole,
		RequireSSO: sf.RequireSSO == "on",
	}
	return f, in
}

// ssoSettingsForm is the provider form; the client secret is never shown
// again.
type ssoSettingsForm struct {
	Issuer       string `form:"issuer"`
	ClientID     string `form:"client_id"`
	ClientSecret string `form:"client_secret,secret"`
	DisplayName  string `form:"display_name"`
	Domains      string `form:"domains"`
	DefaultRole  string `form:"default_role"`
	RequireSSO   string `form:"require_sso"`
}

// configForm fills the form from a stored provider.
func configForm(c *tenancy.SSOConfig) views.Form {
	f := views.Form{Values: map[string]string{"default_role": "member"}, Errors: map[string]string{}}
	if c != nil {
		f.Values = map[string]string{
			"issuer": c.Issuer, "client_id": c.ClientID, "display_name": c.DisplayName,
			"domains": strings.Join(c.Domains, ", "), "default_role": string(c.DefaultRole),
		}
		if c.RequireSSO {
			f.Values["require_sso"] = "on"
		}
	}
	return f
}

// handleSSOSettings serves GET /settings/sso.
func (s *Server) handleSSOSettings(w http.ResponseWriter, r *http.Request) error {
	c, err := s.ssoConfig(r)
	if err != nil {
		return err
	}
	p := s.page(r, "Single sign-on")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	m := views.SSOSettings{Form: configForm(c), Configured: c != nil, RedirectURI: s.ssoRedirectURL(r)}
	m.SecretUnreadable = c != nil && c.SecretUnreadable
	render(w, r, http.StatusOK, views.SSOSettingsPage(p, m))
	return nil
}

// handleSSOSave serves POST /settings/sso.
func (s *Server) handleSSOSave(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	before, err := s.ssoConfig(r)
	if err != nil {
		return err
	}
	f, in := ssoForm(r)
	m := views.SSOSettings{Configured: before != nil, RedirectURI: s.ssoRedirectURL(r)}
	m.SecretUnreadable = before != nil && before.SecretUnreadable
	c, errs := tenancy.ParseSSOConfig(in, before != nil && !before.SecretUnreadable)
	if errs == nil {
		_, err = s.SSO.SaveSSOConfig(ctx, TenantFrom(ctx).ID, c)
	}
	if errs != nil || err != nil {
		if err != nil {
			if code := tenancy.ErrorCode(err); code == tenancy.EINTERNAL || code == tenancy.EUNAVAILABLE {
				return err
			}
			fieldError(&f, err)
		}
		for k, v := range errs {
			f.Errors[k] = v
		}
		m.Form = f
		render(w, r, http.StatusUnprocessableEntity, views.SSOSettingsPage(s.page(r, "Single sign-on"), m))
		return nil
	}
	msg := "Single sign-on with " + c.DisplayName + " is saved. Try it from the sign-in page in a private window before you require it."
	if c.RequireSSO {
		msg = "Single sign-on with " + c.DisplayName + " is saved and required: everyone but owners signs in with it."
	}
	s.setFlash(w, r, tenantCookie, msg)
	http.Redirect(w, r, "/settings/sso", http.StatusSeeOther)
	return nil
}

// handleSSOTest serves POST /settings/sso/test (htmx): discovery on the
// issuer typed in the form, saved or not.
func (s *Server) handleSSOTest(w http.ResponseWriter, r *http.Request) error {
	issuer := strings.TrimSpace(r.PostFormValue("issuer"))
	var v views.SSOTestView
	if err := tenancy.ValidateIssuer(issuer); err != nil {
		v.Error = tenancy.ErrorMessage(err)
	} else if d, err := s.SSOProvider.Discover(r.Context(), issuer); err != nil {
		if tenancy.ErrorCode(err) == tenancy.EINTERNAL {
			return err
		}
		v.Error = tenancy.ErrorMessage(err)
	} else {
		v = views.SSOTestView{
			Issuer: d.Issuer, AuthorizationEndpoint: d.AuthorizationEndpoint, TokenEndpoint: d.TokenEndpoint,
			UserinfoEndpoint: d.UserinfoEndpoint, JWKSURI: d.JWKSURI, Keys: d.Keys,
			Scopes: strings.Join(d.Scopes, " "), Algs: strings.Join(d.SigningAlgs, ", "),
		}
		for _, m := range d.PKCEMethods {
			v.PKCE = v.PKCE || m == "S256"
		}
		for _, sc := range d.Scopes {
			v.EmailScope = v.EmailScope || sc == "email"
		}
	}
	render(w, r, http.StatusOK, views.SSOTestResult(v))
	return nil
}

// handleSSORemove serves POST /settings/sso/remove.
func (s *Server) handleSSORemove(w http.ResponseWriter, r *http.Request) error {
	err := s.SSO.DeleteSSOConfig(r.Context(), TenantFrom(r.Context()).ID)
	if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, "Single sign-on is removed: everyone signs in with a password.")
	http.Redirect(w, r, "/settings/sso", http.StatusSeeOther)
	return nil
}
