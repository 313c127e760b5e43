package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func ptr(s string) *string { return &s }

func TestBrandAndSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	svc := postgres.NewBrandingService(db)

	changes, err := svc.SetBrand(ctx, a.ID, tenancy.BrandUpdate{Primary: ptr("#FF6B35")})
	if err != nil || len(changes) != 1 || changes[0] != (tenancy.BrandChange{Field: "primary_color", From: "", To: "#ff6b35"}) {
		t.Fatalf("SetBrand = %+v, %v", changes, err)
	}
	// Setting the same again changes nothing; a bad color changes nothing
	// either, even alongside a good one.
	if changes, err := svc.SetBrand(ctx, a.ID, tenancy.BrandUpdate{Primary: ptr("#ff6b35")}); err != nil || len(changes) != 0 {
		t.Errorf("same again = %+v, %v", changes, err)
	}
	if _, err := svc.SetBrand(ctx, a.ID, tenancy.BrandUpdate{Secondary: ptr("#004E89"), Accent: ptr("green")}); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("bad accent: %v", err)
	}
	b, err := svc.Brand(ctx, a.ID)
	if err != nil || b != (tenancy.Brand{Primary: "#ff6b35"}) {
		t.Errorf("Brand = %+v, %v", b, err)
	}
	if changes, _ := svc.SetBrand(ctx, a.ID, tenancy.BrandUpdate{Primary: ptr("")}); len(changes) != 1 || changes[0].To != "" {
		t.Errorf("clear = %+v", changes)
	}

	if _, err := svc.SetSetting(ctx, a.ID, "contact.support_email", "support@ACME.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetSetting(ctx, a.ID, "contact.support_url", "http://acme.com"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("http url: %v", err)
	}
	if _, err := svc.SetSetting(ctx, a.ID, "nope", "x"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("unknown key: %v", err)
	}
	st, err := svc.Setting(ctx, a.ID, "contact.support_email")
	if err != nil || st.Value != "support@acme.com" {
		t.Errorf("Setting = %+v, %v", st, err)
	}
	list, err := svc.ListSettings(ctx, a.ID)
	if err != nil || len(list) != 2 || list[0].Key != "branding.company_name" || list[1].Key != "contact.support_email" {
		t.Errorf("ListSettings = %+v, %v", list, err)
	}
	if err := svc.DeleteSetting(ctx, a.ID, "contact.support_email"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Setting(ctx, a.ID, "contact.support_email"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("deleted setting: %v", err)
	}
	if err := svc.DeleteSetting(ctx, a.ID, "contact.support_email"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("delete again: %v", err)
	}
}

func TestThemes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	svc := postgres.NewBrandingService(db)

	light, err := svc.CreateTheme(ctx, a.ID, tenancy.NewTheme{Name: "Acme Light Theme", Primary: "#FF6B35", Secondary: "#004E89", Background: "#FFFFFF", Text: "#1A1A1A"})
	if err != nil || light.ID != "acme-light-theme" || light.Active || light.Text != "#1a1a1a" {
		t.Fatalf("CreateTheme = %+v, %v", light, err)
	}
	if _, err := svc.CreateTheme(ctx, a.ID, tenancy.NewTheme{Name: "acme light theme!", Primary: "#000", Secondary: "#000", Background: "#fff", Text: "#000"}); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("same id again: %v", err)
	}
	if _, err := svc.CreateTheme(ctx, a.ID, tenancy.NewTheme{Name: "Acme Dark", Primary: "#000", Secondary: "#000", Background: "#000", Text: "#fff"}); err != nil {
		t.Fatal(err)
	}
	if th, err := svc.ActivateTheme(ctx, a.ID, "acme-light"); err != nil || th.ID != "acme-light-theme" || !th.Active {
		t.Fatalf("activate by prefix = %+v, %v", th, err)
	}
	if _, err := svc.ActivateTheme(ctx, a.ID, "acme"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("ambiguous prefix: %v", err)
	}
	// Editing keeps the id, changes the name and colors, and is checked
	// like a new theme.
	ed, err := svc.UpdateTheme(ctx, a.ID, "acme-light-theme", tenancy.NewTheme{Name: "Acme Teal", Primary: "#0D9488", Secondary: "#134e4a", Background: "#f0fdfa", Text: "#042f2e"})
	if err != nil || ed.ID != "acme-light-theme" || ed.Name != "Acme Teal" || ed.Primary != "#0d9488" || !ed.Active {
		t.Fatalf("UpdateTheme = %+v, %v", ed, err)
	}
	if _, err := svc.UpdateTheme(ctx, a.ID, "acme-light-theme", tenancy.NewTheme{Name: "x", Primary: "teal", Secondary: "#000", Background: "#fff", Text: "#000"}); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("update with a bad color: %v", err)
	}
	if _, err := svc.UpdateTheme(ctx, a.ID, "acme-light", tenancy.NewTheme{Name: "x", Primary: "#000", Secondary: "#000", Background: "#fff", Text: "#000"}); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("update by a prefix: %v", err)
	}

	// With brand colors set, the active theme still decides its colors;
	// the brand accent, which themes lack, applies.
	if _, err := svc.SetBrand(ctx, a.ID, tenancy.BrandUpdate{Primary: ptr("#ffee88"), Accent: ptr("#00CC66")}); err != nil {
		t.Fatal(err)
	}
	l, err := svc.Look(ctx, a.ID)
	want := tenancy.Palette{Primary: "#0d9488", Secondary: "#134e4a", Accent: "#00cc66", Background: "#f0fdfa", Text: "#042f2e"}
	if err != nil || l.Palette != want || l.CompanyName != "Tenant acme" {
		t.Errorf("Look = %+v, %v", l, err)
	}

	// Deactivating names the active theme; the brand colors apply again.
	if _, err := svc.DeactivateTheme(ctx, a.ID, "acme-dark"); tenancy.ErrorCode(err) != tenancy.ECONFLICT {
		t.Errorf("deactivate a theme that is not active: %v", err)
	}
	if th, err := svc.DeactivateTheme(ctx, a.ID, "acme-light-theme"); err != nil || th.Active {
		t.Fatalf("DeactivateTheme = %+v, %v", th, err)
	}
	if l, _ := svc.Look(ctx, a.ID); l.Palette.Primary != "#ffee88" || l.Palette.Background != tenancy.DefaultPalette.Background {
		t.Errorf("look without a theme = %+v", l.Palette)
	}

	if _, err := svc.ActivateTheme(ctx, a.ID, "acme-dark"); err != nil {
		t.Fatal(err)
	}
	themes, err := svc.ListThemes(ctx, a.ID)
	if err != nil || len(themes) != 2 || !themes[0].Active || themes[1].Active {
		t.Fatalf("ListThemes = %+v, %v", themes, err)
	}
	if _, err := svc.DeleteTheme(ctx, a.ID, "acme-light-theme"); err != nil {
		t.Fatal(err)
	}
	// The active theme can be deleted too: the brand colors apply then.
	if th, err := svc.DeleteTheme(ctx, a.ID, "acme-dark"); err != nil || !th.Active {
		t.Fatalf("delete the active theme = %+v, %v", th, err)
	}
	if themes, _ := svc.ListThemes(ctx, a.ID); len(themes) != 0 {
		t.Errorf("themes left: %+v", themes)
	}
	if l, _ := svc.Look(ctx, a.ID); l.Palette.Primary != "#ffee88" || l.Palette.Accent != "#00cc66" {
		t.Errorf("look after deleting the active theme = %+v", l.Palette)
	}
	if _, err := svc.CreateTheme(ctx, a.ID, tenancy.NewTheme{Name: "Acme Dark", Primary: "#000", Secondary: "#000", Background: "#000", Text: "#fff"}); err != nil {
		t.Fatal(err)
	}

	// The database refuses a color that is not #rrggbb, whatever writes it.
	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		_, err := tx.Exec(ctx, `UPDATE tenants.tenant_themes SET text_color = 'red;}' WHERE tenant_id = $1`, a.ID)
		if tenancy.ErrorCode(postgres.PostgresTranslate(err)) != tenancy.EINVALID {
			t.Errorf("bad color stored: %v", err)
		}
	})
}

func TestBrandingTenantIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "beta", tenancy.StrategySchema)
	svc := postgres.NewBrandingService(db)
	if _, err := svc.SetSetting(ctx, b.ID, "custom.secret", "b only"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTheme(ctx, b.ID, tenancy.NewTheme{Name: "Beta", Primary: "#000", Secondary: "#000", Background: "#fff", Text: "#000"}); err != nil {
		t.Fatal(err)
	}
	asTenant(t, db, a.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_themes`); n != 0 {
			t.Errorf("tenant A sees %d of B's themes", n)
		}
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_settings WHERE key = 'custom.secret'`); n != 0 {
			t.Errorf("tenant A sees B's settings")
		}
		mustRefuse(t, tx, `INSERT INTO tenants.tenant_themes (tenant_id, id, name, primary_color, secondary_color, background_color, text_color)
			VALUES ($1, 'x', 'x', '#000000', '#000000', '#000000', '#000000')`, b.ID)
		mustRefuse(t, tx, `INSERT INTO tenants.tenant_settings (tenant_id, key, value) VALUES ($1, 'custom.x', 'x')`, b.ID)
		tag, err := tx.Exec(ctx, `UPDATE tenants.tenant_themes SET name = 'hacked' WHERE tenant_id = $1`, b.ID)
		if err != nil || tag.RowsAffected() != 0 {
			t.Errorf("update of B's themes from A: %v, %d rows", err, tag.RowsAffected())
		}
		tag, err = tx.Exec(ctx, `DELETE FROM tenants.tenant_settings WHERE tenant_id = $1`, b.ID)
		if err != nil || tag.RowsAffected() != 0 {
			t.Errorf("delete of B's settings from A: %v, %d rows", err, tag.RowsAffected())
		}
	})
	// Through the service, A's calls see only A.
	if themes, _ := svc.ListThemes(ctx, a.ID); len(themes) != 0 {
		t.Errorf("A lists %d themes", len(themes))
	}
	if _, err := svc.ActivateTheme(ctx, a.ID, "beta"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("A activates B's theme: %v", err)
	}
	if _, err := svc.DeleteTheme(ctx, a.ID, "beta"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("A deletes B's theme: %v", err)
	}
	if _, err := svc.UpdateTheme(ctx, a.ID, "beta", tenancy.NewTheme{Name: "Beta", Primary: "#111", Secondary: "#000", Background: "#fff", Text: "#000"}); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("A edits B's theme: %v", err)
	}
	if _, err := svc.DeactivateTheme(ctx, a.ID, "beta"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("A deactivates B's theme: %v", err)
	}
	if th, _ := svc.ListThemes(ctx, b.ID); len(th) != 1 || th[0].Primary != "#000000" {
		t.Errorf("B's theme after A's attempts: %+v", th)
	}
	if _, err := svc.Setting(ctx, a.ID, "custom.secret"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("A reads B's setting: %v", err)
	}
	if err := svc.DeleteSetting(ctx, a.ID, "custom.secret"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("A deletes B's setting: %v", err)
	}
	if st, err := svc.Setting(ctx, b.ID, "custom.secret"); err != nil || st.Value != "b only" {
		t.Errorf("B's setting after A's attempts: %+v, %v", st, err)
	}
}

// The cached look changes as soon as a change is announced.
func TestBrandCache(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	tc := postgres.NewTenantCache(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cache := postgres.NewBrandingService(db).Cached(tc)
	go tc.Listen(ctx)
	<-tc.Ready()
	before, err := cache.Look(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := cache.Look(ctx, a.ID); again != before {
		t.Error("second look not served from memory")
	}
	if _, err := cache.SetBrand(ctx, a.ID, tenancy.BrandUpdate{Primary: ptr("#123456")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := cache.Look(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l.Palette.Primary == "#123456" {
			if l.Version == before.Version {
				t.Error("version unchanged")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cached look never changed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SetSettings checks every value before writing any: one bad value leaves
// every setting as it was. An empty value removes its setting, and the
// look carries the contact settings.
func TestSetSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpenDB(t)
	a := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	svc := postgres.NewBrandingService(db)
	before, _ := svc.ListSettings(ctx, a.ID)
	err := svc.SetSettings(ctx, a.ID, map[string]string{"branding.tagline": "Books that balance", "contact.support_email": "not an address"})
	if tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Fatalf("bad email: %v", err)
	}
	if list, _ := svc.ListSettings(ctx, a.ID); len(list) != len(before) {
		t.Fatalf("a refused call stored %+v", list)
	}
	if err := svc.SetSettings(ctx, a.ID, map[string]string{"branding.tagline": "Books that balance", "contact.support_email": "Help@Acme.Test",
		"contact.support_url": "https://help.acme.test"}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetSettings(ctx, a.ID, map[string]string{"contact.support_url": "", "contact.phone": ""}); err != nil {
		t.Fatal(err)
	}
	l, err := svc.Look(ctx, a.ID)
	if err != nil || l.Contact != (tenancy.Contact{Tagline: "Books that balance", SupportEmail: "Help@acme.test"}) {
		t.Errorf("look contact = %+v, %v", l.Contact, err)
	}
}
