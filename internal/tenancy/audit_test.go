package tenancy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

func TestAuditActorFromContext(t *testing.T) {
	if a := tenancy.AuditActorFrom(context.Background()); a.Kind != tenancy.ActorSystem || a.String() != "system" {
		t.Errorf("no actor: %+v %q", a, a.String())
	}
	ctx := tenancy.WithAuditActor(context.Background(), tenancy.AuditActor{Kind: tenancy.ActorCLI, Name: "alice"})
	if a := tenancy.AuditActorFrom(ctx); a.String() != "cli:alice" {
		t.Errorf("cli actor: %q", a.String())
	}
	ctx = tenancy.WithAuditActor(ctx, tenancy.AuditActor{Kind: tenancy.ActorAPIKey, ID: "nsk_abcd1234"})
	if a := tenancy.AuditActorFrom(ctx); a.String() != "nsk_abcd1234" {
		t.Errorf("key actor: %q", a.String())
	}
}

func TestAuditSummaries(t *testing.T) {
	cases := []struct{ got, want string }{
		{tenancy.Changed("role", "member", "admin"), "role: member → admin"},
		{tenancy.Changed("primary color", "", "#112233"), "primary color: (none) → #112233"},
		{tenancy.SettingChanged("branding.tagline", "Old", ""), "branding.tagline: Old → (none)"},
		{tenancy.SettingChanged("custom.smtp_password", "", "x"), "custom.smtp_password: (none) → (hidden)"},
		{tenancy.SettingChanged("custom.API_KEY", "a", "b"), "custom.API_KEY: changed (hidden)"},
		{tenancy.SettingChanged("custom.webhook_token", "a", ""), "custom.webhook_token: (hidden) → (none)"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
	if s := tenancy.SettingChanged("custom.long", "", strings.Repeat("x", 500)); len([]rune(s)) > 130 {
		t.Errorf("long value not cut: %d characters", len([]rune(s)))
	}
}

func TestAuditEntryClean(t *testing.T) {
	e := tenancy.AuditEntry{
		Actor:   tenancy.AuditActor{Name: "a\nb", Addr: "not-an-ip"},
		Target:  strings.Repeat("t", 400),
		Summary: "ok\x00\xff",
	}
	e.Clean()
	if e.Actor.Name != "a b" || e.Actor.Addr != "" || len([]rune(e.Target)) != 300 || e.Summary != "ok \uFFFD" {
		t.Errorf("cleaned: %+v", e)
	}
	e = tenancy.AuditEntry{Actor: tenancy.AuditActor{Addr: "2001:db8::1"}}
	if e.Clean(); e.Actor.Addr != "2001:db8::1" {
		t.Errorf("IPv6 address dropped")
	}
}

func TestAuditFilterValidate(t *testing.T) {
	for _, ok := range []string{"", "member", "member.update", "email_template.customize"} {
		if err := (tenancy.AuditFilter{Action: ok}).Validate(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"Member", "member.", ".x", "a..b", "member update", "x%", strings.Repeat("a", 65)} {
		if err := (tenancy.AuditFilter{Action: bad}).Validate(); tenancy.ErrorCode(err) != tenancy.EINVALID {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, a := range tenancy.AuditActions {
		if err := (tenancy.AuditFilter{Action: a}).Validate(); err != nil || !strings.Contains(a, ".") {
			t.Errorf("listed action %q: %v", a, err)
		}
	}
}
