package dnsverify_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/dnsverify/dnstest"
	"github.com/nself/nself/internal/tenancy"
)

const (
	domain = "acme.example.com"
	record = "_nself-verify.acme.example.com"
	token  = "a3f5c9e7d2b4a6f8e9c7d5b3a1f4c6e8"
	value  = "nself-verify=" + token
)

func TestCheckDomain(t *testing.T) {
	t.Parallel()
	long := func(i int) string { return fmt.Sprintf("filler-%02d-%s", i, strings.Repeat("x", 200)) }
	var many []string
	for i := range 30 {
		many = append(many, long(i))
	}
	tests := []struct {
		name  string
		setup func(s *dnstest.Server)
		// want is the outcome for the record name and for the domain.
		want    [2]tenancy.TXTOutcome
		msg     string
		checkFn func(t *testing.T, r tenancy.VerifyResult, s *dnstest.Server)
	}{
		{
			name:  "value at the record name",
			setup: func(s *dnstest.Server) { s.SetTXT(record, value) },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTFound, tenancy.TXTNoRecord},
			msg:   "verification record found at " + record,
		},
		{
			name:  "value on the domain itself, among others",
			setup: func(s *dnstest.Server) { s.SetTXT(domain, "v=spf1 -all", value) },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTNXDomain, tenancy.TXTFound},
			msg:   "verification record found at " + domain,
		},
		{
			name:  "value in quotes, split in two strings, upper case",
			setup: func(s *dnstest.Server) { s.SetTXT(record, strings.ToUpper(`"`+value+`"`)) },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTFound, tenancy.TXTNoRecord},
		},
		{
			name:  "wrong token",
			setup: func(s *dnstest.Server) { s.SetTXT(record, "nself-verify=00000000000000000000000000000000") },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTOtherValues, tenancy.TXTNoRecord},
			msg: "verification record not found: " + record + `: other values: "nself-verify=00000000000000000000000000000000"; ` +
				domain + ": no TXT record",
		},
		{
			name:  "no such names",
			setup: func(s *dnstest.Server) {},
			want:  [2]tenancy.TXTOutcome{tenancy.TXTNXDomain, tenancy.TXTNXDomain},
			msg:   "verification record not found: " + record + ": no such name in DNS (NXDOMAIN); " + domain + ": no such name in DNS (NXDOMAIN)",
		},
		{
			name:  "names without TXT records",
			setup: func(s *dnstest.Server) { s.SetTXT(record); s.SetTXT(domain) },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTNoRecord, tenancy.TXTNoRecord},
			msg:   "verification record not found: " + record + ": no TXT record; " + domain + ": no TXT record",
		},
		{
			name:  "many long values: truncated over UDP, asked again over TCP",
			setup: func(s *dnstest.Server) { s.SetTXT(domain, append(many, value)...) },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTNXDomain, tenancy.TXTFound},
			checkFn: func(t *testing.T, _ tenancy.VerifyResult, s *dnstest.Server) {
				// One question for the record name; two for the domain.
				if n := s.Queries(); n != 3 {
					t.Errorf("%d questions, want 3 (UDP, then TCP for the truncated answer)", n)
				}
			},
		},
		{
			name:  "many other values: the first kept, the rest counted",
			setup: func(s *dnstest.Server) { s.SetTXT(domain, many...) },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTNXDomain, tenancy.TXTOtherValues},
			checkFn: func(t *testing.T, r tenancy.VerifyResult, _ *dnstest.Server) {
				l := r.Lookups[1]
				if len(l.Values) != 20 || l.More != 10 || l.Values[0] != many[0] {
					t.Errorf("values %d, more %d, first %q", len(l.Values), l.More, l.Values[0])
				}
				if !strings.Contains(r.Message(), `"filler-00-xxx`) || !strings.Contains(r.Message(), "(and 27 more)") {
					t.Errorf("message %q", r.Message())
				}
			},
		},
		{
			name:  "server failure",
			setup: func(s *dnstest.Server) { s.Fail(record, dns.RcodeServerFailure); s.SetTXT(domain, "v=spf1 -all") },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTError, tenancy.TXTOtherValues},
			checkFn: func(t *testing.T, r tenancy.VerifyResult, _ *dnstest.Server) {
				if d := r.Lookups[0].Detail; !strings.HasPrefix(d, "SERVFAIL from 127.0.0.1:") {
					t.Errorf("detail %q", d)
				}
			},
		},
		{
			name:  "refused",
			setup: func(s *dnstest.Server) { s.Fail(record, dns.RcodeRefused); s.Fail(domain, dns.RcodeRefused) },
			want:  [2]tenancy.TXTOutcome{tenancy.TXTError, tenancy.TXTError},
			checkFn: func(t *testing.T, r tenancy.VerifyResult, _ *dnstest.Server) {
				if !strings.Contains(r.Message(), record+": DNS error (REFUSED from 127.0.0.1:") {
					t.Errorf("message %q", r.Message())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := dnstest.NewServer(t)
			tt.setup(s)
			v := &dnsverify.Verifier{Resolver: s.Addr, Timeout: 2 * time.Second}
			r := v.CheckDomain(context.Background(), domain, token)
			if len(r.Lookups) != 2 || r.Lookups[0].Name != record || r.Lookups[1].Name != domain {
				t.Fatalf("lookups %+v", r.Lookups)
			}
			if got := [2]tenancy.TXTOutcome{r.Lookups[0].Outcome, r.Lookups[1].Outcome}; got != tt.want {
				t.Errorf("outcomes %v, want %v (%s)", got, tt.want, r.Message())
			}
			if tt.msg != "" && r.Message() != tt.msg {
				t.Errorf("message\n  %s\nwant\n  %s", r.Message(), tt.msg)
			}
			if tt.checkFn != nil {
				tt.checkFn(t, r, s)
			}
		})
	}
}

// A record that appears is found on the next check: nothing is cached.
func TestCheckDomainSeesChanges(t *testing.T) {
	t.Parallel()
	s := dnstest.NewServer(t)
	v := dnsverify.New(s.Addr)
	ctx := context.Background()
	if r := v.CheckDomain(ctx, domain, token); r.Verified() {
		t.Fatal("verified before the record exists")
	}
	s.SetTXT(record, value)
	if r := v.CheckDomain(ctx, domain, token); r.FoundAt() != record {
		t.Fatalf("after adding the record: %s", r.Message())
	}
	s.ClearTXT(record)
	if r := v.CheckDomain(ctx, domain, token); r.Outcome() != tenancy.TXTNXDomain {
		t.Fatalf("after removing the record: %s", r.Message())
	}
}

// A server that never answers: the check reports a timeout for both names
// within its time limit.
func TestCheckDomainTimeout(t *testing.T) {
	t.Parallel()
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	v := &dnsverify.Verifier{Resolver: silent.LocalAddr().String(), Timeout: 300 * time.Millisecond}
	start := time.Now()
	r := v.CheckDomain(context.Background(), domain, token)
	elapsed := time.Since(start)
	if elapsed > 2*time.Second {
		t.Errorf("the check took %s with a 300ms timeout", elapsed)
	}
	want := "timeout (no answer from " + silent.LocalAddr().String() + " within 300ms)"
	for _, l := range r.Lookups {
		if l.Outcome != tenancy.TXTTimeout || !strings.Contains(r.Message(), l.Name+": "+want) {
			t.Errorf("%s: %s; message %q", l.Name, l.Outcome, r.Message())
		}
	}
	if r.Conclusive() {
		t.Error("a timeout is conclusive")
	}
}

// A port where nothing listens: the error says so.
func TestCheckDomainUnreachable(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	r := (&dnsverify.Verifier{Resolver: addr, Timeout: time.Second}).CheckDomain(context.Background(), domain, token)
	if r.Outcome() != tenancy.TXTError || !strings.Contains(r.Message(), "DNS error (cannot ask "+addr+": connection refused)") {
		t.Errorf("unreachable server: %s", r.Message())
	}
}

// Without DNS_RESOLVER the system's configuration is read; when it names
// no server, the check says so rather than guess.
func TestCheckDomainSystemResolver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(empty, []byte("search example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		empty:                             "names none; set DNS_RESOLVER",
		filepath.Join(dir, "nonexistent"): "no DNS server to ask: open ",
	} {
		r := (&dnsverify.Verifier{ResolvConf: path}).CheckDomain(context.Background(), domain, token)
		if r.Outcome() != tenancy.TXTError || !strings.Contains(r.Message(), want) {
			t.Errorf("%s: %s", path, r.Message())
		}
	}
}

// The test server itself: UDP and TCP on the same port, NXDOMAIN for names
// nothing is under, an empty answer for names that exist.
func TestServer(t *testing.T) {
	t.Parallel()
	s := dnstest.NewServer(t)
	s.SetTXT("_x.a.example", "hello")
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: time.Second}
		for name, want := range map[string]int{
			"_x.a.example.": dns.RcodeSuccess, "a.example.": dns.RcodeSuccess, "example.": dns.RcodeSuccess,
			"b.example.": dns.RcodeNameError, "x.a.example.": dns.RcodeNameError,
		} {
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeTXT)
			resp, _, err := c.Exchange(q, s.Addr)
			if err != nil {
				t.Fatalf("%s %s: %v", network, name, err)
			}
			if resp.Rcode != want {
				t.Errorf("%s %s: rcode %s, want %s", network, name, dns.RcodeToString[resp.Rcode], dns.RcodeToString[want])
			}
			if wantAnswers := map[bool]int{true: 1, false: 0}[name == "_x.a.example."]; len(resp.Answer) != wantAnswers {
				t.Errorf("%s %s: %d answers", network, name, len(resp.Answer))
			}
		}
	}
	if s.Queries() != 10 {
		t.Errorf("%d queries counted, want 10", s.Queries())
	}
}
