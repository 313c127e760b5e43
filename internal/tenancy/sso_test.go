package tenancy_test

import (
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

func TestValidateIssuer(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		ok     bool
	}{
		{"https://login.example.com", true},
		{"https://login.example.com/realms/acme/", true},
		{"http://127.0.0.1:59080", true},
		{"http://localhost:8080", true},
		{"http://idp.localhost:8080", true},
		{"http://[::1]:8080", true},
		{"http://login.example.com", false},
		{"ftp://login.example.com", false},
		{"login.example.com", false},
		{"https://login.example.com/?realm=a", false},
		{"https://login.example.com/#x", false},
		{"https://user:pw@login.example.com", false},
		{"", false},
	} {
		err := tenancy.ValidateIssuer(tc.issuer)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateIssuer(%q) = %v, want ok %v", tc.issuer, err, tc.ok)
		}
	}
}

func TestParseEmailDomains(t *testing.T) {
	got, err := tenancy.ParseEmailDomains(" Example.com, @acme.example.;example.com\nsub.acme.example ")
	if err != nil || strings.Join(got, " ") != "example.com acme.example sub.acme.example" {
		t.Fatalf("ParseEmailDomains = %q, %v", got, err)
	}
	for _, bad := range []string{"localhost", "exa mple", "-a.com", "a..com", "ex_ample.com", "ünï.com"} {
		if _, err := tenancy.ParseEmailDomains(bad); err == nil {
			t.Errorf("ParseEmailDomains(%q) accepted", bad)
		}
	}
	if got, err := tenancy.ParseEmailDomains(""); err != nil || len(got) != 0 {
		t.Errorf("empty list = %q, %v", got, err)
	}
}

func TestParseSSOConfig(t *testing.T) {
	good := tenancy.SSOInput{Issuer: "https://login.example.com", ClientID: "nself", ClientSecret: "s3cret",
		DisplayName: "Okta", Domains: "example.com", DefaultRole: "member"}
	c, errs := tenancy.ParseSSOConfig(good, false)
	if errs != nil || c.DefaultRole != tenancy.RoleMember || c.Domains[0] != "example.com" {
		t.Fatalf("ParseSSOConfig(good) = %+v, %v", c, errs)
	}
	for name, tc := range map[string]struct {
		change func(*tenancy.SSOInput)
		kept   bool
		field  string
	}{
		"no issuer":           {func(in *tenancy.SSOInput) { in.Issuer = "" }, false, "issuer"},
		"http issuer":         {func(in *tenancy.SSOInput) { in.Issuer = "http://login.example.com" }, false, "issuer"},
		"no client id":        {func(in *tenancy.SSOInput) { in.ClientID = " " }, false, "client_id"},
		"no secret, none yet": {func(in *tenancy.SSOInput) { in.ClientSecret = "" }, false, "client_secret"},
		"no name":             {func(in *tenancy.SSOInput) { in.DisplayName = "" }, false, "display_name"},
		"long name":           {func(in *tenancy.SSOInput) { in.DisplayName = strings.Repeat("n", 61) }, false, "display_name"},
		"bad domain":          {func(in *tenancy.SSOInput) { in.Domains = "not a domain" }, false, "domains"},
		"owner by default":    {func(in *tenancy.SSOInput) { in.DefaultRole = "owner" }, false, "default_role"},
		"unknown role":        {func(in *tenancy.SSOInput) { in.DefaultRole = "boss" }, false, "default_role"},
	} {
		in := good
		tc.change(&in)
		if _, errs := tenancy.ParseSSOConfig(in, tc.kept); errs[tc.field] == "" {
			t.Errorf("%s: errors %v lack %s", name, errs, tc.field)
		}
	}
	in := good
	in.ClientSecret = ""
	if _, errs := tenancy.ParseSSOConfig(in, true); errs != nil {
		t.Errorf("a blank secret with one stored: %v", errs)
	}
}

func TestCheckSSOIdentity(t *testing.T) {
	c := &tenancy.SSOConfig{DisplayName: "Okta", Domains: []string{"example.com"}}
	anyDomain := &tenancy.SSOConfig{DisplayName: "Okta"}
	for _, tc := range []struct {
		name  string
		c     *tenancy.SSOConfig
		who   tenancy.SSOIdentity
		ok    bool
		words string
	}{
		{"verified, covered", c, tenancy.SSOIdentity{Email: "Ann@Example.com", EmailVerified: true}, true, ""},
		{"unverified", c, tenancy.SSOIdentity{Email: "ann@example.com"}, false, "not verified"},
		{"no email", c, tenancy.SSOIdentity{EmailVerified: true}, false, "did not send an email"},
		{"other domain", c, tenancy.SSOIdentity{Email: "ann@other.example", EmailVerified: true}, false, "not in a domain"},
		{"sub-domain is another domain", c, tenancy.SSOIdentity{Email: "ann@sub.example.com", EmailVerified: true}, false, "not in a domain"},
		{"no domains named: any verified", anyDomain, tenancy.SSOIdentity{Email: "ann@other.example", EmailVerified: true}, true, ""},
	} {
		_, err := tenancy.CheckSSOIdentity(tc.c, tc.who)
		if (err == nil) != tc.ok || err != nil && (tenancy.ErrorCode(err) != tenancy.EFORBIDDEN || !strings.Contains(err.Error(), tc.words)) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestPasswordSignIn(t *testing.T) {
	required := &tenancy.SSOConfig{DisplayName: "Okta", RequireSSO: true}
	optional := &tenancy.SSOConfig{DisplayName: "Okta"}
	for _, tc := range []struct {
		c       *tenancy.SSOConfig
		role    tenancy.Role
		ok      bool
		warning bool
	}{
		{nil, tenancy.RoleMember, true, false},
		{optional, tenancy.RoleAdmin, true, false},
		{required, tenancy.RoleOwner, true, true},
		{required, tenancy.RoleAdmin, false, false},
		{required, tenancy.RoleMember, false, false},
		{required, tenancy.RoleGuest, false, false},
	} {
		warning, err := tenancy.PasswordSignIn(tc.c, tc.role)
		if (err == nil) != tc.ok || (warning != "") != tc.warning {
			t.Errorf("PasswordSignIn(%v, %s) = %q, %v", tc.c != nil && tc.c.RequireSSO, tc.role, warning, err)
		}
	}
}

func TestCovers(t *testing.T) {
	c := &tenancy.SSOConfig{Domains: []string{"example.com"}}
	for email, want := range map[string]bool{"ann@example.com": true, "ANN@EXAMPLE.COM": true, "ann@example.org": false, "example.com": false, "@example.com": false} {
		if got := c.Covers(email); got != want {
			t.Errorf("Covers(%q) = %v", email, got)
		}
	}
	var none *tenancy.SSOConfig
	if none.Covers("ann@example.com") {
		t.Error("no provider covers an address")
	}
}
