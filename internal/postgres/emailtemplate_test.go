package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func TestEmailTemplates(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	b := mustCreateTenant(t, db, "beta", tenancy.StrategyRLS)
	svc := postgres.NewEmailTemplateService(db)

	def, err := svc.Get(ctx, a.ID, "welcome")
	if err != nil || def.Customized || def.Subject != "Welcome to {{TENANT_NAME}}!" || def.Text == "" {
		t.Fatalf("default = %+v, %v", def, err)
	}

	// Without a text part, one is derived from the HTML.
	got, err := svc.Customize(ctx, a.ID, "welcome", " Welcome aboard, {{USER_NAME}} ", `<p>Hi <<USER_NAME>></p><p><a href="{{ACTION_URL}}">Start</a></p>`, "", tenancy.PlatformActor())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Customized || got.Subject != "Welcome aboard, {{USER_NAME}}" || got.Text != "Hi <<USER_NAME>>\n\nStart: {{ACTION_URL}}\n" || got.UpdatedAt.IsZero() {
		t.Errorf("customized = %+v", got)
	}
	again, err := svc.Get(ctx, a.ID, "welcome")
	if err != nil || !again.Customized || again.HTML != got.HTML || again.Text != got.Text {
		t.Errorf("get = %+v, %v", again, err)
	}
	// Saving again replaces it, with the text given.
	if _, err := svc.Customize(ctx, a.ID, "welcome", "Hello", "<p>x</p>", "Plain {{TENANT_NAME}}", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	if again, _ = svc.Get(ctx, a.ID, "welcome"); again.Subject != "Hello" || again.Text != "Plain {{TENANT_NAME}}" {
		t.Errorf("after second save = %+v", again)
	}

	// The other tenant still has the default, and sees nothing of acme's.
	if other, err := svc.Get(ctx, b.ID, "welcome"); err != nil || other.Customized || other.Subject != def.Subject {
		t.Errorf("beta's welcome = %+v, %v", other, err)
	}
	if done, err := svc.Reset(ctx, b.ID, "welcome", tenancy.PlatformActor()); err != nil || done {
		t.Errorf("beta's reset = %v, %v", done, err)
	}
	asTenant(t, db, b.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_email_templates`); n != 0 {
			t.Errorf("beta sees %d of acme's templates", n)
		}
		mustRefuse(t, tx, `INSERT INTO tenants.tenant_email_templates (tenant_id, name, subject, html, text) VALUES ($1, 'welcome', 's', 'h', 't')`, a.ID)
	})
	asTenant(t, db, "", func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_email_templates`); n != 0 {
			t.Errorf("no tenant set, yet %d templates seen", n)
		}
	})

	list, err := svc.List(ctx, a.ID)
	if err != nil || len(list) != len(tenancy.EmailTemplateNames) {
		t.Fatalf("list = %v, %v", list, err)
	}
	for i, e := range list {
		if e.Name != tenancy.EmailTemplateNames[i] || e.Customized != (e.Name == "welcome") {
			t.Errorf("list[%d] = %s customized %v", i, e.Name, e.Customized)
		}
	}

	if done, err := svc.Reset(ctx, a.ID, "welcome", tenancy.PlatformActor()); err != nil || !done {
		t.Errorf("reset = %v, %v", done, err)
	}
	if back, _ := svc.Get(ctx, a.ID, "welcome"); back.Customized || back.Subject != def.Subject {
		t.Errorf("after reset = %+v", back)
	}
}

func TestEmailTemplateCustomizeRefuses(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := context.Background()
	a := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	svc := postgres.NewEmailTemplateService(db)
	for _, tc := range []struct {
		name, tpl, subject, html, code, want string
	}{
		{"unknown template", "newsletter", "s", "<p>h</p>", tenancy.ENOTFOUND, "no email template"},
		{"unknown variable", "welcome", "s", "<p>\n{{FIRST_NAME}}</p>", tenancy.EINVALID, "unknown variable FIRST_NAME on line 2"},
		{"unclosed", "welcome", "Hi {{TENANT_NAME", "<p>h</p>", tenancy.EINVALID, "unclosed variable"},
		{"long subject", "welcome", strings.Repeat("s", 201), "<p>h</p>", tenancy.EINVALID, "200 characters"},
		{"large html", "welcome", "s", strings.Repeat("h", 256*1024+1), tenancy.EINVALID, "256 KB"},
	} {
		_, err := svc.Customize(ctx, a.ID, tc.tpl, tc.subject, tc.html, "", tenancy.PlatformActor())
		if tenancy.ErrorCode(err) != tc.code || !strings.Contains(tenancy.ErrorMessage(err), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// An admin may not change an email whose link is a secret.
	if _, err := svc.Customize(ctx, a.ID, "password_reset", "s", `<a href="{{ACTION_URL}}">x</a>`, "", tenancy.MemberActor(tenancy.RoleAdmin)); tenancy.ErrorCode(err) != tenancy.EFORBIDDEN {
		t.Errorf("admin customizes password_reset: %v", err)
	}
	if _, err := svc.Reset(ctx, a.ID, "invitation", tenancy.MemberActor(tenancy.RoleAdmin)); tenancy.ErrorCode(err) != tenancy.EFORBIDDEN {
		t.Errorf("admin resets invitation: %v", err)
	}
	if _, err := svc.Get(ctx, a.ID, "nope"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("get unknown: %v", err)
	}
	if list, _ := svc.List(ctx, a.ID); list[0].Customized {
		t.Error("a refused template was saved")
	}
}
