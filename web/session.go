package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/gorilla/sessions"

	"github.com/nself/nself/internal/tenancy"
)

// Cookie names. Cookies are host-only (no Domain attribute), so a browser
// never sends tenant A's cookie to tenant B's host; the session also
// records its tenant and is only honoured on that tenant's host.
const (
	tenantCookie = "nself_session"
	adminCookie  = "nself_admin"
)

// Session cookie values.
const (
	keyToken  = "token"  // the server-side session's secret
	keyTenant = "tenant" // the tenant the session belongs to
	keyFlash  = "flash"
)

// cookies returns the session cookie store, keyed from SessionKey: one
// derived key signs the cookie, another encrypts it.
func (s *Server) cookies() *sessions.CookieStore {
	if s.store != nil {
		return s.store
	}
	hashKey := derive(s.Config.SessionKey, "cookie-hash")
	blockKey := derive(s.Config.SessionKey, "cookie-block")
	pairs := [][]byte{hashKey, blockKey}
	if prev := s.Config.PreviousSessionKey; len(prev) > 0 {
		// During a rollover, cookies made with the previous key still
		// decode; every cookie written is made with the new one.
		pairs = append(pairs, derive(prev, "cookie-hash"), derive(prev, "cookie-block"))
	}
	st := sessions.NewCookieStore(pairs...)
	st.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(tenancy.AbsoluteTimeout.Seconds()),
		HttpOnly: true,
		Secure:   s.Config.Secure,
		SameSite: http.SameSiteLaxMode,
	}
	st.MaxAge(st.Options.MaxAge)
	s.store = st
	return st
}

func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// csrfToken is the token forms must send back, bound to a session (or an
// anonymous visitor's seed) and to the server's key.
func (s *Server) csrfToken(seed string) string {
	if seed == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(derive(s.Config.SessionKey, "csrf|"+seed))
}

// session returns the request's session cookie; a cookie that fails to
// verify gives a new, empty session.
func (s *Server) session(r *http.Request, name string) *sessions.Session {
	if _, err := r.Cookie(name); err != nil {
		// No cookie, nothing to decode: most anonymous requests.
		return s.freshSession(r, name)
	}
	sess, err := s.cookies().Get(r, name)
	if err != nil {
		sess, _ = s.cookies().New(r, name)
	}
	return sess
}

// freshSession replaces the session with a new one: on sign-in nothing of
// what came before is carried over.
func (s *Server) freshSession(r *http.Request, name string) *sessions.Session {
	sess := sessions.NewSession(s.cookies(), name)
	opts := *s.cookies().Options
	sess.Options = &opts
	sess.IsNew = true
	return sess
}

// endSession deletes the session cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, name string) {
	sess := s.freshSession(r, name)
	sess.Options.MaxAge = -1
	sess.Save(r, w)
}

// setFlash keeps a message to show on the next page.
func (s *Server) setFlash(w http.ResponseWriter, r *http.Request, name, msg string) {
	sess := s.session(r, name)
	sess.Values[keyFlash] = msg
	sess.Save(r, w)
}

// takeFlash returns the message kept for this page, and forgets it.
func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request, name string) string {
	if _, err := r.Cookie(name); err != nil {
		return ""
	}
	sess := s.session(r, name)
	msg, _ := sess.Values[keyFlash].(string)
	if msg != "" {
		delete(sess.Values, keyFlash)
		sess.Save(r, w)
	}
	return msg
}

// checkCSRF refuses a state-changing request that a browser sent from
// another origin, or that lacks the session's token.
func (s *Server) checkCSRF(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isSafeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		if err := cop.Check(r); err != nil {
			s.respondError(w, r, http.StatusForbidden, "Not allowed", "This request came from another site and was refused.")
			return
		}
		want := CSRFFrom(r.Context())
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			got = r.PostFormValue("csrf_token")
		}
		if want == "" || !hmac.Equal([]byte(got), []byte(want)) && !s.previousCSRF(r, want, got) {
			s.respondError(w, r, http.StatusForbidden, "Not allowed", "This form has expired. Reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// previousCSRF reports whether got is the token the previous session key
// (a rollover in progress) made from the seed that want is made from: a
// form on a page served before the switch still posts.
func (s *Server) previousCSRF(r *http.Request, want, got string) bool {
	prev := s.Config.PreviousSessionKey
	if len(prev) == 0 || got == "" {
		return false
	}
	for _, name := range []string{tenantCookie, adminCookie} {
		seeds := []string{anonSeed(r, name)}
		if _, err := r.Cookie(name); err == nil {
			tok, _ := s.session(r, name).Values[keyToken].(string)
			seeds = append(seeds, tok)
		}
		for _, seed := range seeds {
			if seed == "" || !hmac.Equal([]byte(s.csrfToken(seed)), []byte(want)) {
				continue
			}
			old := base64.RawURLEncoding.EncodeToString(derive(prev, "csrf|"+seed))
			return hmac.Equal([]byte(got), []byte(old))
		}
	}
	return false
}
