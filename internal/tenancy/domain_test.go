package tenancy_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/tenancy"
)

var rules = tenancy.DomainRules{BaseDomain: "nself.test", ToASCII: domainname.ToASCII}

func TestNormalizeDomain(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	// 4 labels of 63 and one of 57, with the dots: 253 characters.
	max253 := strings.Join([]string{long63, long63, long63, strings.Repeat("b", 57) + ".com"}, ".")
	if len(max253) != 253 {
		t.Fatalf("test name is %d long", len(max253))
	}
	good := map[string]string{
		"example.com":             "example.com",
		"  Example.COM.  ":        "example.com",
		"acme.example.co.uk":      "acme.example.co.uk",
		"a-b.example":             "a-b.example",
		"123.example.com":         "123.example.com",
		"bücher.example":          "xn--bcher-kva.example",
		"BÜCHER.Example.":         "xn--bcher-kva.example",
		"xn--bcher-kva.example":   "xn--bcher-kva.example",
		"例え.テスト":                  "xn--r8jz45g.xn--zckzah",
		"example。com":             "example.com",
		long63 + ".example":       long63 + ".example",
		max253:                    max253,
		"notnself.test":           "notnself.test",
		"nself.test.example.com":  "nself.test.example.com",
		"localhost.example":       "localhost.example",
		"x1.y2":                   "x1.y2",
		"xn--80ak6aa92e.com":      "xn--80ak6aa92e.com",
		"a.b.c.d.e.f.example.org": "a.b.c.d.e.f.example.org",
	}
	for in, want := range good {
		got, err := rules.Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}

	bad := []struct{ in, want string }{
		{"", "domain is required"},
		{"   ", "domain is required"},
		{"https://example.com", "without http:// or another scheme"},
		{"ftp://example.com", "without http:// or another scheme"},
		{"example.com/path", "without a path"},
		{"example.com?x=1", "without a path"},
		{"example.com#top", "without a path"},
		{`example.com\x`, "without a path"},
		{"user@example.com", "without a user name and @"},
		{"*.example.com", "is a wildcard"},
		{"a.*.example.com", "is a wildcard"},
		{"127.0.0.1", "is an IP address"},
		{"127.0.0.1.", "is an IP address"},
		{"10.0.0.1:8080", "is an IP address"},
		{"::1", "is an IP address"},
		{"2001:db8::1", "is an IP address"},
		{"[2001:db8::1]", "is an IP address"},
		{"[2001:db8::1]:443", "is an IP address"},
		{"fe80::1%eth0", "is an IP address"},
		{"１２７.０.０.１", "is an IP address"},
		{"example.com:8080", "must not include a port"},
		{"example.com:", "must not include a port"},
		{"example..com", "has an empty label"},
		{".example.com", "has an empty label"},
		{"example.com..", "has an empty label"},
		{strings.Repeat("a", 64) + ".com", "has a label longer than 63 characters"},
		{"a" + max253, "is too long: 254 characters in DNS form, at most 253"},
		{"exa_mple.com", "may contain only letters, digits, hyphens and dots"},
		{"exa mple.com", "may contain only letters, digits, hyphens and dots"},
		{"example.com;drop", "may contain only letters, digits, hyphens and dots"},
		{"exam\x00ple.com", "may contain only letters, digits, hyphens and dots"},
		{"-example.com", "starts or ends with a hyphen"},
		{"example-.com", "starts or ends with a hyphen"},
		{"example.-com", "starts or ends with a hyphen"},
		{"ab--cd.com", "hyphens in its 3rd and 4th places"},
		{"example", "needs at least two labels"},
		{"localhost", "needs at least two labels"},
		{"com.", "needs at least two labels"},
		{"1.2.3", "ends in a number"},
		{"example.123", "ends in a number"},
		{"xn--zz.com", "is not a valid internationalized domain name"},
		{"bü_cher.example", "is not a valid internationalized domain name"},
		{"nself.test", "is the platform's own domain"},
		{"NSELF.test.", "is the platform's own domain"},
		{"acme.nself.test", "is under the platform's domain nself.test; tenants have SLUG.nself.test already"},
		{"a.b.nself.test", "is under the platform's domain nself.test"},
	}
	for _, tt := range bad {
		_, err := rules.Normalize(tt.in)
		var e *tenancy.Error
		if err == nil || !errors.As(err, &e) || e.Code != tenancy.EINVALID || e.Field != "domain" {
			t.Errorf("Normalize(%q) = %v; want an invalid error on field domain", tt.in, err)
			continue
		}
		if !strings.Contains(e.Message, tt.want) {
			t.Errorf("Normalize(%q): %q, want it to contain %q", tt.in, e.Message, tt.want)
		}
		if strings.ContainsAny(e.Message, "\n\r") || len(e.Message) > 200 {
			t.Errorf("Normalize(%q): message is not one short line: %q", tt.in, e.Message)
		}
	}

	// Without a converter, Unicode names are refused with a hint, and ASCII
	// ones are unaffected.
	plain := tenancy.DomainRules{}
	if _, err := plain.Normalize("bücher.example"); err == nil || !strings.Contains(err.Error(), "enter its ASCII form (xn--…)") {
		t.Errorf("Unicode without a converter: %v", err)
	}
	if got, err := plain.Normalize("acme.nself.test"); err != nil || got != "acme.nself.test" {
		t.Errorf("no base domain: %q, %v", got, err)
	}
}

func TestDomainCanonical(t *testing.T) {
	for in, want := range map[string]string{
		" Example.COM. ":  "example.com",
		"BÜCHER.example":  "xn--bcher-kva.example",
		"not valid_.名前.x": "not valid_.名前.x",
	} {
		if got := rules.Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVerificationScheme(t *testing.T) {
	tok := tenancy.NewVerificationToken()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(tok) {
		t.Fatalf("token %q is not 32 lowercase hex digits", tok)
	}
	if tenancy.NewVerificationToken() == tok {
		t.Error("two tokens are the same")
	}
	d := &tenancy.Domain{Name: "acme.example.com", Token: tok}
	if d.RecordName() != "_nself-verify.acme.example.com" || d.RecordValue() != "nself-verify="+tok {
		t.Errorf("record %s = %s", d.RecordName(), d.RecordValue())
	}
	if got := tenancy.VerificationNames("x.example"); strings.Join(got, " ") != "_nself-verify.x.example x.example" {
		t.Errorf("VerificationNames = %v", got)
	}
	for value, want := range map[string]bool{
		"nself-verify=" + tok:                          true,
		"  nself-verify=" + tok + " ":                  true,
		`"nself-verify=` + tok + `"`:                   true,
		"NSELF-VERIFY=" + strings.ToUpper(tok):         true,
		"nself-verify=" + tok[:31]:                     false,
		"nself-verify=" + tok + "0":                    false,
		tok:                                            false,
		"v=spf1 -all":                                  false,
		"nself-verify=" + strings.Repeat("0", 32):      false,
		"nself-verify= " + tok:                         false,
		"google-site-verification=nself-verify=" + tok: false,
	} {
		if got := tenancy.MatchesVerification(value, tok); got != want {
			t.Errorf("MatchesVerification(%q) = %v, want %v", value, got, want)
		}
	}
}

func TestVerifyResultMessage(t *testing.T) {
	rec, apex := "_nself-verify.acme.example.com", "acme.example.com"
	tests := []struct {
		name       string
		lookups    []tenancy.TXTLookup
		outcome    tenancy.TXTOutcome
		conclusive bool
		msg        string
	}{
		{"found at the record name",
			[]tenancy.TXTLookup{{Name: rec, Outcome: tenancy.TXTFound}, {Name: apex, Outcome: tenancy.TXTNXDomain}},
			tenancy.TXTFound, true, "verification record found at " + rec},
		{"found on the domain itself",
			[]tenancy.TXTLookup{{Name: rec, Outcome: tenancy.TXTTimeout, Detail: "x"}, {Name: apex, Outcome: tenancy.TXTFound}},
			tenancy.TXTFound, false, "verification record found at " + apex},
		{"no such names",
			[]tenancy.TXTLookup{{Name: rec, Outcome: tenancy.TXTNXDomain}, {Name: apex, Outcome: tenancy.TXTNXDomain}},
			tenancy.TXTNXDomain, true,
			"verification record not found: " + rec + ": no such name in DNS (NXDOMAIN); " + apex + ": no such name in DNS (NXDOMAIN)"},
		{"no record",
			[]tenancy.TXTLookup{{Name: rec, Outcome: tenancy.TXTNXDomain}, {Name: apex, Outcome: tenancy.TXTNoRecord}},
			tenancy.TXTNoRecord, true,
			"verification record not found: " + rec + ": no such name in DNS (NXDOMAIN); " + apex + ": no TXT record"},
		{"other values, cut short",
			[]tenancy.TXTLookup{
				{Name: rec, Outcome: tenancy.TXTOtherValues, Values: []string{"nself-verify=0123"}},
				{Name: apex, Outcome: tenancy.TXTOtherValues, Values: []string{"v=spf1 -all", "a", "b", "c", strings.Repeat("x", 100)}, More: 2}},
			tenancy.TXTOtherValues, true,
			"verification record not found: " + rec + `: other values: "nself-verify=0123"; ` + apex + `: other values: "v=spf1 -all", "a", "b" (and 4 more)`},
		{"timeout",
			[]tenancy.TXTLookup{
				{Name: rec, Outcome: tenancy.TXTTimeout, Detail: "no answer from 127.0.0.1:53 within 2s"},
				{Name: apex, Outcome: tenancy.TXTNXDomain}},
			tenancy.TXTTimeout, false,
			"verification record not found: " + rec + ": timeout (no answer from 127.0.0.1:53 within 2s); " + apex + ": no such name in DNS (NXDOMAIN)"},
		{"server failure",
			[]tenancy.TXTLookup{
				{Name: rec, Outcome: tenancy.TXTError, Detail: "SERVFAIL from 127.0.0.1:53"},
				{Name: apex, Outcome: tenancy.TXTNoRecord}},
			tenancy.TXTError, false,
			"verification record not found: " + rec + ": DNS error (SERVFAIL from 127.0.0.1:53); " + apex + ": no TXT record"},
	}
	for _, tt := range tests {
		r := tenancy.VerifyResult{Domain: apex, Lookups: tt.lookups}
		if got := r.Outcome(); got != tt.outcome {
			t.Errorf("%s: outcome %s, want %s", tt.name, got, tt.outcome)
		}
		if got := r.Conclusive(); got != tt.conclusive {
			t.Errorf("%s: conclusive %v, want %v", tt.name, got, tt.conclusive)
		}
		if got := r.Verified(); got != (tt.outcome == tenancy.TXTFound) {
			t.Errorf("%s: verified %v", tt.name, got)
		}
		if got := r.Message(); got != tt.msg {
			t.Errorf("%s: message\n  %s\nwant\n  %s", tt.name, got, tt.msg)
		}
	}
}

func TestDomainStateMachine(t *testing.T) {
	allowed := map[[2]tenancy.DomainState]bool{
		{tenancy.DomainPending, tenancy.DomainVerified}:                      true,
		{tenancy.DomainVerified, tenancy.DomainCertificateIssuing}:           true,
		{tenancy.DomainVerified, tenancy.DomainFailed}:                       true,
		{tenancy.DomainCertificateIssuing, tenancy.DomainActive}:             true,
		{tenancy.DomainCertificateIssuing, tenancy.DomainFailed}:             true,
		{tenancy.DomainActive, tenancy.DomainFailed}:                         true,
		{tenancy.DomainFailed, tenancy.DomainVerified}:                       true,
		{tenancy.DomainPending, tenancy.DomainPending}:                       false,
		{tenancy.DomainPending, tenancy.DomainActive}:                        false,
		{tenancy.DomainPending, tenancy.DomainCertificateIssuing}:            false,
		{tenancy.DomainFailed, tenancy.DomainActive}:                         false,
		{tenancy.DomainActive, tenancy.DomainVerified}:                       false,
		{tenancy.DomainCertificateIssuing, tenancy.DomainPending}:            false,
		{tenancy.DomainVerified, tenancy.DomainPending}:                      false,
		{tenancy.DomainActive, tenancy.DomainCertificateIssuing}:             false,
		{tenancy.DomainCertificateIssuing, tenancy.DomainVerified}:           false,
		{tenancy.DomainFailed, tenancy.DomainPending}:                        false,
		{tenancy.DomainFailed, tenancy.DomainCertificateIssuing}:             false,
		{tenancy.DomainVerified, tenancy.DomainActive}:                       false,
		{tenancy.DomainPending, tenancy.DomainFailed}:                        false,
		{tenancy.DomainActive, tenancy.DomainActive}:                         false,
		{tenancy.DomainVerified, tenancy.DomainVerified}:                     false,
		{tenancy.DomainCertificateIssuing, tenancy.DomainCertificateIssuing}: false,
	}
	for _, from := range tenancy.DomainStates {
		for _, to := range tenancy.DomainStates {
			err := from.CanBecome(to)
			if want := allowed[[2]tenancy.DomainState{from, to}]; (err == nil) != want {
				t.Errorf("%s → %s: %v, want allowed=%v", from, to, err, want)
			}
			if err != nil && tenancy.ErrorCode(err) != tenancy.ECONFLICT {
				t.Errorf("%s → %s: code %s", from, to, tenancy.ErrorCode(err))
			}
		}
	}
	for _, s := range tenancy.DomainStates {
		want := s == tenancy.DomainVerified || s == tenancy.DomainCertificateIssuing || s == tenancy.DomainActive
		if s.Owned() != want {
			t.Errorf("%s.Owned() = %v", s, s.Owned())
		}
	}

	// The certificate steps.
	d := &tenancy.Domain{Name: "acme.example.com", State: tenancy.DomainPending}
	if err := d.StartCertificate(); err == nil || !strings.Contains(err.Error(), "a domain that is pending cannot become certificate_issuing") {
		t.Errorf("certificate for a pending domain: %v", err)
	}
	if err := d.CanBePrimary(); tenancy.ErrorCode(err) != tenancy.ECONFLICT || !strings.Contains(err.Error(), "only a verified domain can be primary") {
		t.Errorf("pending domain as primary: %v", err)
	}
	d.State = tenancy.DomainVerified
	if err := d.StartCertificate(); err != nil || d.State != tenancy.DomainCertificateIssuing {
		t.Fatalf("start certificate: %v, %s", err, d.State)
	}
	if err := d.CertificateIssued(); err != nil || d.State != tenancy.DomainActive || !d.Verified() {
		t.Fatalf("certificate issued: %v, %s", err, d.State)
	}
	if err := d.CanBePrimary(); err != nil {
		t.Errorf("active domain as primary: %v", err)
	}
	d.State = tenancy.DomainCertificateIssuing
	if err := d.CertificateFailed("rate limited"); err != nil || d.State != tenancy.DomainFailed || d.Failure != "certificate: rate limited" || d.Verified() {
		t.Fatalf("certificate failed: %v, %s, %q", err, d.State, d.Failure)
	}
}

func TestDomainRecordCheck(t *testing.T) {
	t0 := time.Date(2025, 1, 20, 15, 30, 0, 0, time.UTC)
	name := "acme.example.com"
	found := tenancy.VerifyResult{Domain: name, Lookups: []tenancy.TXTLookup{
		{Name: "_nself-verify." + name, Outcome: tenancy.TXTFound}, {Name: name, Outcome: tenancy.TXTNoRecord}}}
	missing := tenancy.VerifyResult{Domain: name, Lookups: []tenancy.TXTLookup{
		{Name: "_nself-verify." + name, Outcome: tenancy.TXTNXDomain}, {Name: name, Outcome: tenancy.TXTNoRecord}}}
	timedOut := tenancy.VerifyResult{Domain: name, Lookups: []tenancy.TXTLookup{
		{Name: "_nself-verify." + name, Outcome: tenancy.TXTTimeout, Detail: "no answer"}, {Name: name, Outcome: tenancy.TXTNoRecord}}}

	// Pending: a miss records the reason and keeps the state.
	d := &tenancy.Domain{Name: name, State: tenancy.DomainPending}
	d.RecordCheck(t0, missing)
	if d.State != tenancy.DomainPending || d.Failure != missing.Message() || !d.CheckedAt.Equal(t0) || d.VerifiedAt != nil {
		t.Fatalf("pending after a miss: %+v", d)
	}
	// A hit verifies it and clears the failure.
	t1 := t0.Add(time.Minute)
	d.RecordCheck(t1, found)
	if d.State != tenancy.DomainVerified || d.Failure != "" || !d.VerifiedAt.Equal(t1) || !d.LastSeenValidAt.Equal(t1) || !d.CheckedAt.Equal(t1) {
		t.Fatalf("after a hit: %+v", d)
	}
	// Verified: a miss within the grace period keeps it verified, with
	// the reason; a timeout past the grace period proves nothing.
	d.RecordCheck(t1.Add(tenancy.DomainGracePeriod), missing)
	if d.State != tenancy.DomainVerified || d.Failure != missing.Message() {
		t.Fatalf("verified, missing within the grace period: %+v", d)
	}
	d.RecordCheck(t1.Add(tenancy.DomainGracePeriod+time.Hour), timedOut)
	if d.State != tenancy.DomainVerified || d.Failure != timedOut.Message() {
		t.Fatalf("verified, timeout past the grace period: %+v", d)
	}
	// A definite miss past the grace period fails it.
	late := t1.Add(tenancy.DomainGracePeriod + 2*time.Hour)
	d.RecordCheck(late, missing)
	if d.State != tenancy.DomainFailed || d.Verified() ||
		d.Failure != "verification record missing since 2025-01-20 15:31 UTC: "+missing.Message() || !d.LastSeenValidAt.Equal(t1) {
		t.Fatalf("verified, missing past the grace period: %+v", d)
	}
	// Found again, it is verified again, with a new time.
	d.RecordCheck(late.Add(time.Hour), found)
	if d.State != tenancy.DomainVerified || d.Failure != "" || !d.VerifiedAt.Equal(late.Add(time.Hour)) {
		t.Fatalf("failed, then found: %+v", d)
	}
	// An active domain keeps its state on a hit.
	d.State = tenancy.DomainActive
	d.RecordCheck(late.Add(2*time.Hour), found)
	if d.State != tenancy.DomainActive || !d.VerifiedAt.Equal(late.Add(time.Hour)) || !d.LastSeenValidAt.Equal(late.Add(2*time.Hour)) {
		t.Fatalf("active, found: %+v", d)
	}
}

func TestCertificateRequestFailed(t *testing.T) {
	d := &tenancy.Domain{Name: "shop.example", State: tenancy.DomainVerified}
	if changed, err := d.CertificateRequestFailed("rate limited"); err != nil || !changed ||
		d.State != tenancy.DomainCertificateIssuing || d.Failure != "certificate: rate limited" {
		t.Fatalf("verified: %v %v %+v", changed, err, d)
	}
	if changed, _ := d.CertificateRequestFailed("rate limited"); changed {
		t.Error("the same failure again changed the domain")
	}
	if changed, _ := d.CertificateRequestFailed("connection refused"); !changed || d.Failure != "certificate: connection refused" {
		t.Errorf("a new reason: %+v", d)
	}
	if err := d.CertificateIssued(); err != nil || d.Failure != "" {
		t.Fatalf("issued: %v %+v", err, d)
	}
	if changed, err := d.CertificateRequestFailed("renewal"); changed || err != nil || d.State != tenancy.DomainActive {
		t.Errorf("active: %v %v %+v", changed, err, d)
	}
	pending := &tenancy.Domain{Name: "x.example", State: tenancy.DomainPending}
	if _, err := pending.CertificateRequestFailed("x"); tenancy.ErrorCode(err) != tenancy.EINVALID {
		t.Errorf("pending: %v", err)
	}
}

// Only a claim never verified, older than a week, gives way to another
// tenant; a domain verified once holds even when failed.
func TestStaleClaimRule(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-tenancy.StaleClaimAge - time.Hour)
	fresh := now.Add(-tenancy.StaleClaimAge + time.Hour)
	once := now.Add(-20 * 24 * time.Hour)
	for _, c := range []struct {
		name string
		d    tenancy.Domain
		want bool
	}{
		{"never verified, older than a week", tenancy.Domain{State: tenancy.DomainPending, CreatedAt: old}, true},
		{"never verified, fresh", tenancy.Domain{State: tenancy.DomainPending, CreatedAt: fresh}, false},
		{"verified", tenancy.Domain{State: tenancy.DomainVerified, CreatedAt: old, VerifiedAt: &once, FirstVerifiedAt: &once}, false},
		{"active", tenancy.Domain{State: tenancy.DomainActive, CreatedAt: old, VerifiedAt: &once, FirstVerifiedAt: &once}, false},
		{"failed after a verification", tenancy.Domain{State: tenancy.DomainFailed, Failure: "gone", CreatedAt: old, VerifiedAt: &once, FirstVerifiedAt: &once}, false},
	} {
		if got := c.d.StaleClaim(now); got != c.want {
			t.Errorf("%s: StaleClaim = %v, want %v", c.name, got, c.want)
		}
	}
}
