package web_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

// Mail takes the tenant's look: its primary color and company name, and
// on the primary color's button the text color the portal draws there
// (black on this light orange, where white would be hard to read).
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
			if strings.Contains(m.HTML, "background:"+color+";color:#000000;") && strings.Contains(m.HTML, "Acme &amp; Sons") && strings.Contains(m.Subject, "Acme & Sons") {
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

// {{LOGO_URL}} in mail is the logo made for email, else the main logo, as
// an absolute address.
func TestMailLogoIsTheEmailLogo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	if _, err := e.server.EmailTemplates.Customize(e.ctx, acme.ID, "password_reset", "Reset",
		`<p><img src="{{LOGO_URL}}" alt="logo"> <a href="{{ACTION_URL}}">reset</a></p>`, "", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	mailLogo := func() string {
		t.Helper()
		c := e.client("acme.nself.test")
		c.get("/password/forgot")
		c.post("/password/forgot", url.Values{"email": {"owner@acme.test"}})
		sent := e.mail.messages()
		m := sent[len(sent)-1]
		i := strings.Index(m.HTML, `src="`)
		return m.HTML[i+5 : i+5+strings.Index(m.HTML[i+5:], `"`)]
	}
	for _, kind := range []tenancy.LogoKind{tenancy.LogoMain, tenancy.LogoEmail} {
		if _, err := e.server.Logos.UploadLogo(e.ctx, acme.ID, kind, logoPNG(t, 40, 20)); err != nil {
			t.Fatal(err)
		}
		want := "http://acme.nself.test/logo/" + string(kind) + "?v="
		var got string
		for try := 0; try < 20; try++ {
			if got = mailLogo(); strings.HasPrefix(got, want) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("with a %s logo, mail's logo is %q, want %s…", kind, got, want)
		}
	}
}
