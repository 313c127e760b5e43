package web_test

import (
	"net/http"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/web"
)

// TestSessionKeyRollover: a process started with a new SESSION_SECRET and
// the old one as SESSION_SECRET_PREVIOUS keeps the people signed in under
// the old one, and takes the forms of pages the old one served; without
// the previous key they are signed out.
func TestSessionKeyRollover(t *testing.T) {
	oldKey := []byte("the-old-session-secret-0123456789abcdef")
	newKey := []byte("the-new-session-secret-0123456789abcdef")
	before := newEnv(t, func(s *web.Server, _ *postgres.DB) { s.Config.SessionKey = oldKey })
	rolled := newEnvDB(t, before.db, func(s *web.Server, _ *postgres.DB) {
		s.Config.SessionKey, s.Config.PreviousSessionKey = newKey, oldKey
	})
	newOnly := newEnvDB(t, before.db, func(s *web.Server, _ *postgres.DB) { s.Config.SessionKey = newKey })
	acme := before.mustTenant("acme")
	before.mustMember(acme, "ann@acme.example", tenancy.RoleOwner)
	host := "acme." + baseDomain
	old := before.client(host)
	old.signIn("ann@acme.example", passwordOf("ann@acme.example"))
	old.get("/dashboard") // a page, and its form token, from the old key

	lost := newOnly.client(host)
	lost.http.Jar = old.http.Jar
	if resp, _ := lost.get("/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the old cookie, without the previous key: %d", resp.StatusCode)
	}
	c := rolled.client(host)
	c.http.Jar = old.http.Jar
	c.csrf = old.csrf
	if resp, _ := c.post("/signout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a form of the old key's page, after the rollover: %d", resp.StatusCode)
	}
	c.signIn("ann@acme.example", passwordOf("ann@acme.example"))
	if resp, _ := c.get("/dashboard"); resp.StatusCode != http.StatusOK {
		t.Errorf("signed in again after the rollover: %d", resp.StatusCode)
	}
	// The new cookie is the new key's: a process with only the new key
	// opens it.
	lost.http.Jar = c.http.Jar
	if resp, _ := lost.get("/dashboard"); resp.StatusCode != http.StatusOK {
		t.Errorf("the new cookie with the new key alone: %d", resp.StatusCode)
	}
}
