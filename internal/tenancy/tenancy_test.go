package tenancy_test

import (
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

func TestValidateSlug(t *testing.T) {
	good := []string{"acme", "a1b", "tenant-b", "x-y-z", strings.Repeat("a", 63), "123", "hr", "it"}
	for _, s := range good {
		if err := tenancy.ValidateSlug(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := map[string]string{
		"":                                     "required",
		"a":                                    "too short",
		strings.Repeat("a", 64):                "too long",
		"Acme":                                 "lowercase",
		"ac_me":                                "only a-z",
		"acmé":                                 "only a-z",
		"ac me":                                "only a-z",
		"-acme":                                "start and end",
		"acme-":                                "start and end",
		"ac--me":                               "two hyphens",
		"xn--80ak6aa92e":                       "two hyphens",
		"admin":                                "reserved",
		"www":                                  "reserved",
		"billing":                              "reserved",
		"mx":                                   "reserved",
		"a'b":                                  "only a-z",
		"acme\n":                               "only a-z",
		"a;drop table tenants;-":               "only a-z",
		"0b5e1f2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b": "looks like a tenant id",
	}
	for s, want := range bad {
		err := tenancy.ValidateSlug(s)
		if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want invalid containing %q", s, err, want)
		}
		if strings.ContainsAny(err.Error(), "\n") {
			t.Errorf("%q: message spans lines: %q", s, err)
		}
	}
}

func TestSlugFromName(t *testing.T) {
	for name, want := range map[string]string{
		"Acme Corporation":        "acme-corporation",
		"  TechCo, Inc.  ":        "techco-inc",
		"Café Zürich":             "cafe-zurich",
		"O'Brien & Sons":          "o-brien-sons",
		"東京":                      "",
		"100% Real":               "100-real",
		strings.Repeat("ab ", 40): strings.TrimRight(strings.Repeat("ab-", 21), "-"),
	} {
		if got := tenancy.SlugFromName(name); got != want {
			t.Errorf("SlugFromName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestFormatLimits(t *testing.T) {
	for got, want := range map[string]string{
		tenancy.FormatUsers(50):                      "50",
		tenancy.FormatUsers(-1):                      "Unlimited",
		tenancy.FormatStorage(100):                   "100 GB",
		tenancy.FormatAPIRequests(100000):            "100,000/month",
		tenancy.FormatAPIRequests(1234567):           "1,234,567/month",
		tenancy.FormatAPIRequests(tenancy.Unlimited): "Unlimited",
		tenancy.FormatPrice(9900):                    "$99.00",
		tenancy.FormatPrice(2905):                    "$29.05",
		tenancy.FormatCount(999):                     "999",
		tenancy.FormatCount(1000):                    "1,000",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"ann@example.com":      "ann@example.com",
		" Ann@Example.COM ":    "Ann@example.com",
		"first.last@sub.x.org": "first.last@sub.x.org",
	} {
		if got, err := tenancy.NormalizeEmail(in); err != nil || got != want {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "nope", "Ann <ann@example.com>", "a@b", "a@@b.com", strings.Repeat("a", 250) + "@b.com"} {
		if _, err := tenancy.NormalizeEmail(in); tenancy.ErrorCode(err) != tenancy.EINVALID {
			t.Errorf("%q: %v, want invalid", in, err)
		}
	}
}

func TestStrategyModeResolve(t *testing.T) {
	tests := []struct {
		mode tenancy.StrategyMode
		req  tenancy.Strategy
		want tenancy.Strategy
		ok   bool
	}{
		{tenancy.ModeRLS, "", tenancy.StrategyRLS, true},
		{tenancy.ModeRLS, tenancy.StrategySchema, "", false},
		{tenancy.ModeSchema, "", tenancy.StrategySchema, true},
		{tenancy.ModeSchema, tenancy.StrategyRLS, "", false},
		{tenancy.ModeHybrid, "", tenancy.StrategyRLS, true},
		{tenancy.ModeHybrid, tenancy.StrategySchema, tenancy.StrategySchema, true},
	}
	for _, tt := range tests {
		got, err := tt.mode.Resolve(tt.req)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s.Resolve(%q) = %q, %v", tt.mode, tt.req, got, err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"Acme", `O'Brien "Co"`, "東京", strings.Repeat("é", 200)} {
		if err := tenancy.ValidateName("name", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "   ", "a\nb", "a\x00b", strings.Repeat("x", 201), "\xff"} {
		if err := tenancy.ValidateName("name", bad); tenancy.ErrorCode(err) != tenancy.EINVALID {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
}

func TestQuoteKeepsMessagesShort(t *testing.T) {
	q := tenancy.Quote(strings.Repeat("x", 10000) + "\n")
	if len(q) > 50 || strings.Contains(q, "\n") {
		t.Errorf("Quote = %q", q)
	}
}

func TestPlanLimits(t *testing.T) {
	u := int64(tenancy.Unlimited)
	tests := []struct {
		users, storage, requests int64
		want                     string
	}{
		{u, u, u, "Unlimited members, unlimited storage, unlimited API requests"},
		{50, 100, 100000, "50 members, 100 GB of storage, 100,000 API requests a month"},
		{1, 1, 1, "1 member, 1 GB of storage, 1 API request a month"},
		{0, 0, 0, "0 members, 0 GB of storage, 0 API requests a month"},
		{5, u, 1234567, "5 members, unlimited storage, 1,234,567 API requests a month"},
	}
	for _, tt := range tests {
		p := &tenancy.Plan{MaxUsers: tt.users, MaxStorageGB: tt.storage, MaxAPIRequests: tt.requests}
		if got := tenancy.PlanLimits(p); got != tt.want {
			t.Errorf("PlanLimits(%d, %d, %d) = %q, want %q", tt.users, tt.storage, tt.requests, got, tt.want)
		}
	}
}
