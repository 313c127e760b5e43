package web_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

// Mail takes the tenant's look: its primary color and company name.
func TestMailUsesTheTenantsBrand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	color := "#ff6b35"
	if _, err := e.server.Branding.SetBrand(e.ctx, acme.ID, tenancy.BrandUpdate{Primary: &color}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.server.Branding.SetSetting(e.ctx, acme.ID, "branding.company_name", "Acme & Sons"); err != nil {
		t.Fatal(err)
	}
	c := e.client("acme.nself.test")
	// The look reaches the cache of this process at once; a few tries
	// allow for the notification's round trip anyway.
	for try := 0; ; try++ {
		c.get("/password/forgot")
		c.post("/password/forgot", url.Values{"email": {"owner@acme.test"}})
		if len(e.mail.sent) > 0 {
			m := e.mail.sent[len(e.mail.sent)-1]
			if strings.Contains(m.HTML, color) && strings.Contains(m.HTML, "Acme &amp; Sons") && strings.Contains(m.Subject, "Acme & Sons") {
				return
			}
		}
		if try == 10 {
			m := e.mail.sent[len(e.mail.sent)-1]
			t.Fatalf("mail does not carry the brand: subject %q, color in HTML %v", m.Subject, strings.Contains(m.HTML, color))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
