package tenancy_test

import (
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

func TestSecondFactorStep(t *testing.T) {
	for _, tc := range []struct {
		enrolled, required bool
		role               tenancy.Role
		want               string
	}{
		{true, false, tenancy.RoleGuest, tenancy.SecondFactorCode},
		{true, true, tenancy.RoleOwner, tenancy.SecondFactorCode},
		{false, true, tenancy.RoleOwner, tenancy.SecondFactorEnrol},
		{false, true, tenancy.RoleAdmin, tenancy.SecondFactorEnrol},
		{false, true, tenancy.RoleMember, ""},
		{false, true, tenancy.RoleGuest, ""},
		{false, false, tenancy.RoleOwner, ""},
	} {
		if got := tenancy.SecondFactorStep(tc.enrolled, tc.required, tc.role); got != tc.want {
			t.Errorf("SecondFactorStep(%v, %v, %s) = %q, want %q", tc.enrolled, tc.required, tc.role, got, tc.want)
		}
	}
}

func TestAcceptStep(t *testing.T) {
	for _, tc := range []struct {
		step, last int64
		want       bool
	}{{10, 9, true}, {10, 10, false}, {9, 10, false}, {1, 0, true}} {
		if got := tenancy.AcceptStep(tc.step, tc.last); got != tc.want {
			t.Errorf("AcceptStep(%d, %d) = %v", tc.step, tc.last, got)
		}
	}
}

func TestRecoveryCodeShape(t *testing.T) {
	for input, want := range map[string]bool{
		"abcde-fghjk": true, "ABCDEFGHJK": true, " abcde fghjk ": true,
		"123456": false, "abcde-fghj": false, "": false,
	} {
		if got := tenancy.LooksLikeRecoveryCode(input); got != want {
			t.Errorf("LooksLikeRecoveryCode(%q) = %v", input, got)
		}
	}
}

func TestCanEndSessionsOf(t *testing.T) {
	for _, tc := range []struct {
		actor, target tenancy.Role
		want          bool
	}{
		{tenancy.RoleOwner, tenancy.RoleOwner, true},
		{tenancy.RoleOwner, tenancy.RoleGuest, true},
		{tenancy.RoleAdmin, tenancy.RoleOwner, false},
		{tenancy.RoleAdmin, tenancy.RoleAdmin, true},
		{tenancy.RoleAdmin, tenancy.RoleMember, true},
		{tenancy.RoleMember, tenancy.RoleGuest, false},
		{tenancy.RoleGuest, tenancy.RoleGuest, false},
	} {
		if got := tenancy.CanEndSessionsOf(tc.actor, tc.target); got != tc.want {
			t.Errorf("CanEndSessionsOf(%s, %s) = %v", tc.actor, tc.target, got)
		}
	}
}

func TestAPIKeyPermits(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	for _, tc := range []struct {
		name            string
		scope           tenancy.APIKeyScope
		surface, method string
		want            error
	}{
		{"full, write, gateway", tenancy.FullAPIKeyScope, tenancy.SurfaceGateway, "POST", nil},
		{"full, read, api", tenancy.FullAPIKeyScope, tenancy.SurfaceAPI, "GET", nil},
		{"read-only reads", tenancy.APIKeyScope{ReadOnly: true, API: true}, tenancy.SurfaceAPI, "HEAD", nil},
		{"read-only writes", tenancy.APIKeyScope{ReadOnly: true, API: true}, tenancy.SurfaceAPI, "DELETE", tenancy.ErrKeyReadOnly},
		{"api only at gateway", tenancy.APIKeyScope{API: true}, tenancy.SurfaceGateway, "GET", tenancy.ErrKeyNoGateway},
		{"gateway only at api", tenancy.APIKeyScope{Gateway: true}, tenancy.SurfaceAPI, "GET", tenancy.ErrKeyNoAPI},
		{"expired", tenancy.APIKeyScope{API: true, Gateway: true, ExpiresAt: &past}, tenancy.SurfaceAPI, "GET", tenancy.ErrKeyExpired},
		{"expires at now", tenancy.APIKeyScope{API: true, ExpiresAt: &now}, tenancy.SurfaceAPI, "GET", tenancy.ErrKeyExpired},
		{"expires later", tenancy.APIKeyScope{API: true, ExpiresAt: &future}, tenancy.SurfaceAPI, "GET", nil},
		{"expired and out of scope: expiry first", tenancy.APIKeyScope{Gateway: true, ExpiresAt: &past}, tenancy.SurfaceAPI, "GET", tenancy.ErrKeyExpired},
	} {
		k := &tenancy.APIKey{APIKeyScope: tc.scope}
		if got := k.Permits(tc.surface, tc.method, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	k := &tenancy.APIKey{APIKeyScope: tenancy.FullAPIKeyScope}
	if n := testing.AllocsPerRun(100, func() { _ = k.Permits(tenancy.SurfaceGateway, "GET", now) }); n != 0 {
		t.Errorf("Permits allocates %v times", n)
	}
}

func TestValidateAPIKeyScope(t *testing.T) {
	now := time.Now()
	past := now.Add(-time.Hour)
	for _, tc := range []struct {
		scope tenancy.APIKeyScope
		field string
	}{
		{tenancy.FullAPIKeyScope, ""},
		{tenancy.APIKeyScope{ReadOnly: true}, "surfaces"},
		{tenancy.APIKeyScope{API: true, ExpiresAt: &past}, "expires"},
	} {
		err := tenancy.ValidateAPIKeyScope(tc.scope, now)
		var e *tenancy.Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v", tc.scope, err)
		case tc.field != "" && (!asError(err, &e) || e.Field != tc.field):
			t.Errorf("%+v: %v, want an error on %s", tc.scope, err, tc.field)
		}
	}
}
