// Package ssotest reaches the OpenID Provider that scripts/services.sh
// starts for the single sign-on tests, and signs in at it as a person
// would through its login form.
package ssotest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// The provider's clients and users, as scripts/services.sh configures them.
const (
	ClientA, SecretA = "nself-a", "nself-a-secret"
	ClientB, SecretB = "nself-b", "nself-b-secret"
	Password         = "oidc-pass"
	// Domain is the email domain of the provider's users; Unverified's
	// address is not verified, Elsewhere's is verified in another domain.
	Domain     = "sso.example"
	Unverified = "una@sso.example"
	Elsewhere  = "olga@elsewhere.example"
)

// Issuer is the provider's issuer URL. A test that needs the provider
// fails without it: a missing service is a failure, not a skip.
func Issuer(t testing.TB) string {
	t.Helper()
	iss := os.Getenv("OIDC_TEST_ISSUER")
	if iss == "" {
		t.Fatal(`OIDC_TEST_ISSUER is not set: start the provider with scripts/services.sh start oidc and eval "$(scripts/services.sh env)"`)
	}
	return iss
}

// Login follows an authorization URL to the provider's login form, signs
// in there as username, and returns the redirect the provider then sends
// the browser to (the client's callback, with code and state or error),
// without following it.
func Login(t testing.TB, authURL, username, password string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasSuffix(req.URL.Path, "/sso/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	res, err := hc.Get(authURL)
	if err != nil {
		t.Fatalf("provider: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	id := res.Request.URL.Query().Get("authRequestID")
	if res.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("provider: no login form at %s (status %d)", res.Request.URL, res.StatusCode)
	}
	login := *res.Request.URL
	login.RawQuery = ""
	res, err = hc.PostForm(login.String(), url.Values{"id": {id}, "username": {username}, "password": {password}})
	if err != nil {
		t.Fatalf("provider login: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
		t.Fatalf("provider login as %s: status %d\n%s", username, res.StatusCode, body)
	}
	to, err := res.Location()
	if err != nil {
		t.Fatalf("provider login: %v", err)
	}
	return to
}
