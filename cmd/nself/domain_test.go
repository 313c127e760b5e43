package main

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/pgtest"
)

func TestDomainCommands(t *testing.T) {
	t.Parallel()
	server := dnstest.NewServer(t)
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, "DNS_RESOLVER="+server.Addr)
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	c.ok("tenant", "create", "Beta", "--slug", "beta")

	out := c.ok("tenant", "domain", "add", "acme", "Acme.Example.com")
	mustMatch(t, out,
		`^✓ Domain added: acme\.example\.com$`,
		`^  Verification token: [0-9a-f]{32}$`,
		`^  Add this TXT record to your DNS:$`,
		`^    nself-verify=[0-9a-f]{32}$`,
		`^  Record: _nself-verify\.acme\.example\.com TXT "nself-verify=[0-9a-f]{32}"$`,
		`^  The same value in a TXT record on acme\.example\.com itself works too\.$`,
		`^  Then run: nself tenant domain verify acme acme\.example\.com$`)
	token := regexp.MustCompile(`Verification token: ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
	if !strings.Contains(out, `TXT "nself-verify=`+token+`"`) || !strings.Contains(out, "\n    nself-verify="+token+"\n") {
		t.Errorf("the record shown does not carry the token:\n%s", out)
	}
	rec := "_nself-verify.acme.example.com"

	// Each failure is one line saying what DNS held, with exit code 1.
	failing := func(want string, extra ...string) {
		t.Helper()
		r := c.run("", append([]string{"tenant", "domain", "verify", "acme", "acme.example.com"}, extra...)...)
		lines := strings.Split(strings.TrimRight(r.err, "\n"), "\n")
		if r.code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "error: domain acme.example.com is not verified: ") ||
			!strings.Contains(lines[0], want) || r.out != "" {
			t.Errorf("verify: exit %d, stdout %q, stderr %q; want one line with %q", r.code, r.out, r.err, want)
		}
	}
	failing(rec + ": no such name in DNS (NXDOMAIN); acme.example.com: no such name in DNS (NXDOMAIN)")
	server.SetTXT(rec, "nself-verify=00000000000000000000000000000000", "hello")
	failing(rec + `: other values: "nself-verify=00000000000000000000000000000000", "hello"; acme.example.com: no TXT record`)
	server.SetTXT(rec)
	failing(rec + ": no TXT record; acme.example.com: no TXT record")
	server.Fail(rec, dns.RcodeServerFailure)
	failing(rec + ": DNS error (SERVFAIL from " + server.Addr + ")")

	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	slow := newCLI(t, urls, "DNS_RESOLVER="+silent.LocalAddr().String())
	start := time.Now()
	r := slow.run("", "tenant", "domain", "verify", "acme", "acme.example.com", "--timeout", "300ms")
	if r.code != 1 || !strings.Contains(r.err, rec+": timeout (no answer from "+silent.LocalAddr().String()+" within 300ms)") {
		t.Errorf("verify with a silent resolver: exit %d, %q", r.code, r.err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("verify with a 300ms timeout took %s", time.Since(start))
	}

	mustMatch(t, c.ok("tenant", "domain", "list", "acme"),
		`^DOMAIN\s+PRIMARY\s+VERIFIED\s+VERIFIED_AT\s+CREATED_AT\s+STATE$`,
		`^─+$`,
		`^acme\.example\.com\s+false\s+false\s+never\s+\d{4}-\d\d-\d\d\s+pending$`)

	server.SetTXT(rec, "nself-verify="+token)
	mustMatch(t, c.ok("tenant", "domain", "verify", "acme", "acme.example.com."),
		`^✓ Domain verified: acme\.example\.com$`,
		`^  Record found at: _nself-verify\.acme\.example\.com$`,
		`^  State: verified$`,
		// TLS_ADDR is not set: nself obtains no certificate.
		`^  TLS is terminated elsewhere \(TLS_ADDR is not set\): the proxy in front of nself needs a certificate for acme\.example\.com$`)

	// The value on the domain itself does as well; Unicode names are
	// stored in their ASCII form.
	out = c.ok("tenant", "domain", "add", "acme", "bücher.example")
	mustMatch(t, out, `^✓ Domain added: xn--bcher-kva\.example \(bücher\.example\)$`,
		`^  Record: _nself-verify\.xn--bcher-kva\.example TXT "nself-verify=[0-9a-f]{32}"$`)
	idnToken := regexp.MustCompile(`Verification token: ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
	server.SetTXT("xn--bcher-kva.example", "v=spf1 -all", "nself-verify="+idnToken)
	mustMatch(t, c.ok("tenant", "domain", "verify", "acme", "BÜCHER.example"),
		`^✓ Domain verified: xn--bcher-kva\.example \(bücher\.example\)$`,
		`^  Record found at: xn--bcher-kva\.example$`)

	mustMatch(t, c.ok("tenant", "domain", "primary", "acme", "acme.example.com"), `^✓ Primary domain: acme\.example\.com$`)
	mustMatch(t, c.ok("tenant", "domain", "list", "acme"),
		`^acme\.example\.com\s+true\s+true\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d\s+verified$`,
		`^xn--bcher-kva\.example\s+false\s+true\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d\s+verified$`)
	mustMatch(t, c.ok("tenant", "domain", "primary", "acme", "bücher.example"), `^✓ Primary domain: xn--bcher-kva\.example`)

	var list []map[string]any
	if err := json.Unmarshal([]byte(c.ok("tenant", "domain", "list", "acme", "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("list --json: %v, %v", list, err)
	}
	if list[0]["domain"] != "acme.example.com" || list[0]["primary"] != false || list[0]["verified"] != true ||
		list[0]["state"] != "verified" || list[0]["verification_token"] != token || list[0]["verified_at"] == nil ||
		list[1]["primary"] != true {
		t.Errorf("list --json = %v", list)
	}

	// Another tenant cannot claim it, or see it; once removed, it can.
	r = c.run("", "tenant", "domain", "add", "beta", "acme.example.com")
	if r.code != 1 || strings.TrimSpace(r.err) != `error: domain "acme.example.com" is already claimed by another tenant` {
		t.Errorf("claim by beta: exit %d, %q", r.code, r.err)
	}
	if r := c.run("", "tenant", "domain", "remove", "beta", "acme.example.com"); r.code != 1 || !strings.Contains(r.err, `domain "acme.example.com" not found`) {
		t.Errorf("beta removes acme's domain: exit %d, %q", r.code, r.err)
	}
	if out := c.ok("tenant", "domain", "list", "beta"); strings.Contains(out, "acme.example.com") {
		t.Errorf("beta lists acme's domain:\n%s", out)
	}
	mustMatch(t, c.ok("tenant", "domain", "remove", "acme", "acme.example.com"), `^✓ Domain removed: acme\.example\.com$`)
	mustMatch(t, c.ok("tenant", "domain", "add", "beta", "acme.example.com"), `^✓ Domain added: acme\.example\.com$`)
	// Acme's old record does not verify beta's claim.
	r = c.run("", "tenant", "domain", "verify", "beta", "acme.example.com")
	if r.code != 1 || !strings.Contains(r.err, `other values: "nself-verify=`+token+`"`) {
		t.Errorf("beta verified with acme's record: exit %d, %q", r.code, r.err)
	}
}

// Bad input: one line on stderr, and the usual exit codes.
func TestDomainCommandErrors(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls)
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"tenant", "domain", "add", "acme", "https://shop.example.com"}, 1, "without http:// or another scheme"},
		{[]string{"tenant", "domain", "add", "acme", "*.example.com"}, 1, "is a wildcard"},
		{[]string{"tenant", "domain", "add", "acme", "192.0.2.1"}, 1, "is an IP address"},
		{[]string{"tenant", "domain", "add", "acme", "shop.example.com:8443"}, 1, "must not include a port"},
		{[]string{"tenant", "domain", "add", "acme", "acme.example.test"}, 1, "is under the platform's domain example.test"},
		{[]string{"tenant", "domain", "add", "acme", "example.test"}, 1, "is the platform's own domain"},
		{[]string{"tenant", "domain", "add", "acme", "shop"}, 1, "needs at least two labels"},
		{[]string{"tenant", "domain", "add", "nope", "shop.example.com"}, 1, `tenant "nope" not found`},
		{[]string{"tenant", "domain", "verify", "acme", "nothere.example.com"}, 1, `domain "nothere.example.com" not found`},
		{[]string{"tenant", "domain", "verify", "acme", "x.example.com", "--timeout", "0s"}, 2, "--timeout 0s must be positive"},
		{[]string{"tenant", "domain", "primary", "acme", "nothere.example.com"}, 1, "not found"},
		{[]string{"tenant", "domain", "remove", "acme", "nothere.example.com"}, 1, "not found"},
		{[]string{"tenant", "domain", "list", "acme", "--state", "bogus"}, 1, `state "bogus" is not a domain state`},
		{[]string{"tenant", "domain", "add", "acme"}, 2, "takes 2 argument(s), got 1"},
		{[]string{"tenant", "domain", "list"}, 2, "takes 1 argument(s), got 0"},
		{[]string{"tenant", "domain", "bogus"}, 2, `unknown command "bogus"`},
		{[]string{"tenant", "domain"}, 2, "needs a subcommand"},
	} {
		name := strings.Join(tt.args[2:], " ")
		t.Run(name, func(t *testing.T) {
			r := c.run("", tt.args...)
			lines := strings.Split(strings.TrimRight(r.err, "\n"), "\n")
			if r.code != tt.code || len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.msg) || r.out != "" {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q; want one line with %q", r.code, tt.code, r.out, r.err, tt.msg)
			}
		})
	}
	// A pending domain cannot be primary.
	c.ok("tenant", "domain", "add", "acme", "pending.example.com")
	if r := c.run("", "tenant", "domain", "primary", "acme", "pending.example.com"); r.code != 1 || !strings.Contains(r.err, "only a verified domain can be primary") {
		t.Errorf("pending domain as primary: exit %d, %q", r.code, r.err)
	}
}

// A domain verified once is not taken over through the CLI after its
// record lapsed and a re-check failed it, however old the claim; a claim
// never verified still gives way after a week.
func TestDomainAddKeepsAVerifiedDomainAfterItFailed(t *testing.T) {
	t.Parallel()
	server := dnstest.NewServer(t)
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, "DNS_RESOLVER="+server.Addr)
	c.ok("tenant", "create", "Acme", "--slug", "acme")
	c.ok("tenant", "create", "Beta", "--slug", "beta")
	out := c.ok("tenant", "domain", "add", "acme", "acme.example.com")
	token := regexp.MustCompile(`Verification token: ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
	server.SetTXT("_nself-verify.acme.example.com", "nself-verify="+token)
	c.ok("tenant", "domain", "verify", "acme", "acme.example.com")
	c.ok("tenant", "domain", "add", "acme", "squat.example.com")

	// What the re-check leaves after the record has been missing past the
	// grace period, a month after both claims were made.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context(id, NULL) FROM tenants.tenants WHERE slug = 'acme'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE tenants.tenant_domains SET created_at = now() - interval '30 days',
			state = CASE WHEN state = 'verified' THEN 'failed' ELSE state END,
			failure = CASE WHEN state = 'verified' THEN 'verification record missing' ELSE failure END`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r := c.run("", "tenant", "domain", "add", "beta", "acme.example.com")
	if r.code != 1 || strings.TrimSpace(r.err) != `error: domain "acme.example.com" is already claimed by another tenant` {
		t.Errorf("beta claims acme's lapsed domain: exit %d, %q %q", r.code, r.out, r.err)
	}
	mustMatch(t, c.ok("tenant", "domain", "list", "acme"), `^acme\.example\.com\s+false\s+false\s+.*\s+failed$`)
	mustMatch(t, c.ok("tenant", "domain", "add", "beta", "squat.example.com"), `^✓ Domain added: squat\.example\.com$`)
	mustMatch(t, c.ok("tenant", "audit", "acme", "--action", "domain.release"), `squat\.example\.com.*never verified`)
}

// The guide's own lines for `domain add` and `domain verify` are in their
// output, in the guide's order, beside what the commands say more; verify
// names the certificate authority nself will obtain the certificate from.
func TestDomainOutputHasTheGuidesLines(t *testing.T) {
	t.Parallel()
	server := dnstest.NewServer(t)
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, "DNS_RESOLVER="+server.Addr, "TLS_ADDR=:443")
	c.ok("tenant", "create", "Acme", "--slug", "acme")

	// The guide, multi-tenancy section "Custom domains".
	out := c.ok("tenant", "domain", "add", "acme", "acme.example.com")
	token := regexp.MustCompile(`Verification token: ([0-9a-f]{32})`).FindStringSubmatch(out)[1]
	hasLines(t, out,
		"✓ Domain added: acme.example.com",
		"Verification token: "+token,
		"Add this TXT record to your DNS:",
		"nself-verify="+token)

	server.SetTXT("_nself-verify.acme.example.com", "nself-verify="+token)
	hasLines(t, c.ok("tenant", "domain", "verify", "acme", "acme.example.com"),
		"✓ Domain verified: acme.example.com",
		"SSL certificate will be generated automatically via Let's Encrypt")

	// Another ACME server is named as what it is.
	other := newCLI(t, urls, "DNS_RESOLVER="+server.Addr, "TLS_ADDR=:443", "ACME_DIRECTORY=https://ca.internal.example/acme/dir")
	out = other.ok("tenant", "domain", "verify", "acme", "acme.example.com")
	hasLines(t, out,
		"✓ Domain verified: acme.example.com",
		"SSL certificate will be generated automatically via ACME (https://ca.internal.example/acme/dir)")
	if strings.Contains(out, "Let's Encrypt") {
		t.Errorf("verify with another ACME server names Let's Encrypt:\n%s", out)
	}
	// Let's Encrypt's directory named explicitly is still Let's Encrypt.
	le := newCLI(t, urls, "DNS_RESOLVER="+server.Addr, "TLS_ADDR=:443", "ACME_DIRECTORY=https://acme-v02.api.letsencrypt.org/directory")
	hasLines(t, le.ok("tenant", "domain", "verify", "acme", "acme.example.com"),
		"SSL certificate will be generated automatically via Let's Encrypt")
}

// hasLines checks that out holds each of lines, whole and in that order,
// ignoring the indentation the commands add.
func hasLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	got := strings.Split(out, "\n")
	i := 0
	for _, want := range lines {
		for i < len(got) && strings.TrimLeft(got[i], " ") != want {
			i++
		}
		if i == len(got) {
			t.Errorf("output lacks the line %q (in order):\n%s", want, out)
			return
		}
		i++
	}
}
