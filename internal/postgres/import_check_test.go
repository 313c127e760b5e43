package postgres_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// addObject adds an object to an archive's entries, before the manifest,
// and lists it in the manifest (forge then fills in its size and hash).
func addObject(t *testing.T, entries []entry, key string, data []byte) []entry {
	t.Helper()
	last := len(entries) - 1
	out := append(append([]entry{}, entries[:last]...), entry{name: tenancy.ObjectFile(key), data: data}, entries[last])
	return withManifest(t, out, func(m *tenancy.Manifest) {
		m.Objects = append(m.Objects, tenancy.ExportObject{Key: key, File: tenancy.ObjectFile(key), ContentType: "image/png"})
		m.Files = append(m.Files, tenancy.ManifestEntry{Path: tenancy.ObjectFile(key)})
	})
}

// withTenantJSON rewrites tenant.json.
func withTenantJSON(t *testing.T, entries []entry, fn func(*tenancy.ExportedTenant)) []entry {
	t.Helper()
	out := append([]entry{}, entries...)
	for i := range out {
		if out[i].name == tenancy.TenantFile {
			var et tenancy.ExportedTenant
			if err := json.Unmarshal(out[i].data, &et); err != nil {
				t.Fatal(err)
			}
			fn(&et)
			out[i].data, _ = json.Marshal(et)
		}
	}
	return out
}

// Imported rows pass the checks rows made through the CLI and the portal
// pass: an archive whose author wrote what those paths refuse, and
// recomputed the manifest, is refused whole with one line naming the file
// and row, and nothing is written.
func TestImportChecksRowsAsTheSavePathsDo(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	entries := readEntries(t, e.export("acme"))
	svgKey := func(data []byte) string { return "logos/main/" + sum(data) + ".svg" }
	scriptSVG := []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(document.cookie)</script></svg>`)
	png := testPNG(t, 8, 8)
	domain := func(d string) []entry {
		first := true
		return editCSV(t, entries, "tenants.tenant_domains", func(row map[string]string) {
			if first {
				row["domain"], first = d, false
			}
		})
	}
	setting := func(key, value string) []entry {
		return appendRow(t, entries, "tenants.tenant_settings", map[string]string{
			"tenant_id": "00000000-0000-0000-0000-000000000000", "key": key, "value": value, "updated_at": "2025-01-01 00:00:00+00"})
	}
	theme := func(id, name, primary string) []entry {
		return appendRow(t, entries, "tenants.tenant_themes", map[string]string{
			"tenant_id": "00000000-0000-0000-0000-000000000000", "id": id, "name": name, "primary_color": primary,
			"secondary_color": "#445566", "background_color": "#ffffff", "text_color": "#000000", "active": "f",
			"created_at": "2025-01-01 00:00:00+00", "updated_at": "2025-01-01 00:00:00+00"})
	}
	template := func(name, subject, html string) []entry {
		return appendRow(t, entries, "tenants.tenant_email_templates", map[string]string{
			"tenant_id": "00000000-0000-0000-0000-000000000000", "name": name, "subject": subject, "html": html,
			"text": "text", "updated_at": "2025-01-01 00:00:00+00"})
	}
	logoRow := func(fn func(row map[string]string)) []entry {
		return editCSV(t, entries, "tenants.tenant_logos", func(row map[string]string) {
			if row["kind"] == "main" {
				fn(row)
			}
		})
	}
	const domains, settings, themes, templates, logos = "db/tenants.tenant_domains.csv row 1: ", "db/tenants.tenant_settings.csv row 3: ",
		"db/tenants.tenant_themes.csv row 3: ", "db/tenants.tenant_email_templates.csv row 2: ", "db/tenants.tenant_logos.csv row "
	cases := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"domain under BASE_DOMAIN", domain("shop.nself.test"), domains + `domain "shop.nself.test" is under the platform's domain nself.test`},
		{"BASE_DOMAIN itself", domain("nself.test"), domains + `domain "nself.test" is the platform's own domain`},
		{"domain with a path", domain("evil.example/x"), domains + `domain "evil.example/x" must be a name only, without a path`},
		{"IP address", domain("127.0.0.1"), domains + `domain "127.0.0.1" is an IP address`},
		{"domain not as stored", domain("Shop.Example.com"), domains + `domain "Shop.Example.com" is not in the form the product stores ("shop.example.com")`},
		{"unknown setting", setting("evil.flag", "1"), settings + `unknown setting "evil.flag"`},
		{"color setting breaking out of CSS", setting("branding.primary_color", "red;}body{display:none"), settings + `branding.primary_color "red;}body{display:none" is not a hex color`},
		{"setting not as stored", setting("branding.accent_color", "#FFF"), settings + `branding.accent_color "#FFF" is not in the form the product stores ("#ffffff")`},
		{"support URL not https", setting("contact.support_url", "javascript:alert(1)"), settings + `contact.support_url "javascript:alert(1)" is not an https:// URL`},
		{"theme color", theme("dusk", "Dusk", "#12345g"), themes + `primary "#12345g" is not a hex color`},
		{"theme id not an id", theme("Not An Id!", "Dusk", "#123456"), themes + `id "Not An Id!" is not in the form the product stores ("dusk")`},
		{"email template unknown", template("bogus", "Hi", "<p>x</p>"), templates + `no email template "bogus"`},
		{"email template variable", template("password_reset", "Reset", "<p>{{NOT_A_VARIABLE}}</p>"), templates + "unknown variable NOT_A_VARIABLE"},
		{"email template subject lines", template("invitation", "\"Hi\nBcc: all@example.com\"", "<p>x</p>"), templates + "the subject must be one line"},
		{"SVG logo with script", addObject(t, entries, svgKey(scriptSVG), scriptSVG), `is refused: the SVG has a <script> element`},
		{"object key into another bucket", addObject(t, entries, "tenant-00000000-0000-0000-0000-000000000000/logos/main/x.png", png), "is not a logo's key"},
		{"object key leaving the bucket", addObject(t, entries, "../tenant-00000000-0000-0000-0000-000000000000/x.png", png), "is not a clean path"},
		{"object key of another kind", addObject(t, entries, "logos/banner/"+sum(png)+".png", png), "is not a logo's key"},
		{"object key for other bytes", addObject(t, entries, "logos/main/"+strings.Repeat("0", 64)+".png", png), "is not where the product keeps these bytes"},
		{"object key with another type", addObject(t, entries, "logos/main/"+sum(png)+".svg", png), "is not where the product keeps these bytes"},
		{"object over the size limit", addObject(t, entries, "logos/main/big.png", make([]byte, 2<<20+1)), "a logo may be at most 2.0 MB"},
		{"logo row claims another type", logoRow(func(r map[string]string) { r["content_type"] = "image/svg+xml" }), logos + `1: logo "main" says content_type "image/svg+xml", but its object is "image/png"`},
		{"logo row points elsewhere", logoRow(func(r map[string]string) { r["object_key"] = "logos/main/" + strings.Repeat("a", 64) + ".png" }), "which the archive does not hold"},
		{"table after the objects", func() []entry {
			out := append([]entry{}, entries...)
			i := 0
			for j, en := range out {
				if en.name == "db/tenants.tenant_settings.csv" {
					i = j
				}
			}
			moved := out[i]
			out = append(out[:i], out[i+1:]...)
			last := len(out) - 1
			return append(append(out[:last:last], moved), out[last])
		}(), "follows the objects"},
	}
	before := e.counts()
	for _, c := range cases {
		_, err := e.svc.Import(e.ctx, bytes.NewReader(forge(t, c.entries)), tenancy.ImportOptions{Slug: "acme-copy"})
		if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line with %q", c.name, err, c.want)
		}
	}
	if after := e.counts(); after != before {
		t.Errorf("a refused import wrote something: %s, then %s", before, after)
	}
}

// The plan is never the archive's: the new tenant gets the default plan,
// or the one the operator names.
func TestImportTakesNoPlanFromTheArchive(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	forged := forge(t, withTenantJSON(t, readEntries(t, e.export("acme")), func(et *tenancy.ExportedTenant) { et.Plan = "enterprise" }))
	res, err := e.svc.Import(e.ctx, bytes.NewReader(forged), tenancy.ImportOptions{Slug: "acme-free"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tenant.Plan != tenancy.DefaultPlan || !strings.Contains(strings.Join(res.Notes, "\n"), "the archive's plan enterprise is not carried over: the tenant is on free") {
		t.Errorf("plan %s, notes %q", res.Tenant.Plan, res.Notes)
	}
	res, err = e.svc.Import(e.ctx, bytes.NewReader(forged), tenancy.ImportOptions{Slug: "acme-pro", Plan: "pro"})
	if err != nil || res.Tenant.Plan != "pro" {
		t.Fatalf("import with the plan named: %+v %v", res, err)
	}
	if _, err := e.svc.Import(e.ctx, bytes.NewReader(forged), tenancy.ImportOptions{Slug: "acme-x", Plan: "platinum"}); tenancy.ErrorCode(err) == "" || err == nil {
		t.Errorf("import onto a plan that does not exist: %v", err)
	}
}

// An object no logo refers to (one a crash left behind) is left out with a
// note; it is still checked like any other.
func TestImportLeavesOutObjectsNoLogoUses(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	png := testPNG(t, 6, 6)
	key := "logos/dark/" + sum(png) + ".png"
	res, err := e.svc.Import(e.ctx, bytes.NewReader(forge(t, addObject(t, readEntries(t, e.export("acme")), key, png))), tenancy.ImportOptions{Slug: "acme-copy"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 2 || !strings.Contains(strings.Join(res.Notes, "\n"), "object "+key+" left out: no logo refers to it") {
		t.Errorf("objects %d, notes %q", res.Objects, res.Notes)
	}
	n := 0
	e.store.ListObjects(e.ctx, tenancy.TenantBucket(res.Tenant.ID), "", func(o tenancy.ObjectInfo) error {
		n++
		if o.Key == key {
			t.Errorf("the unused object was stored")
		}
		return nil
	})
	if n != 2 {
		t.Errorf("%d objects stored, want 2", n)
	}
	e.asOwner(res.Tenant.ID, func(tx pgx.Tx) {
		if c := count(t, tx, `SELECT count(*) FROM tenants.tenant_logos WHERE tenant_id = $1`, res.Tenant.ID); c != 2 {
			t.Errorf("%d logos, want 2", c)
		}
	})
}
