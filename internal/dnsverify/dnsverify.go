// Package dnsverify checks the TXT records that prove control of a custom
// domain, by asking a DNS server directly.
//
// It speaks DNS itself (github.com/miekg/dns) rather than through the
// standard library's resolver, because that resolver reports a name that
// does not exist, a name without TXT records, a server failure and a
// refusal with the same few errors, and a person fixing their DNS needs to
// know which one it is.
package dnsverify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/nself/nself/internal/tenancy"
)

// DefaultTimeout bounds a check when Verifier.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// maxValues bounds the TXT values kept per name: a name may hold many, and
// the report needs only the first few.
const maxValues = 20

// Verifier looks up verification records. It implements
// tenancy.DomainVerifier.
type Verifier struct {
	// Resolver is the DNS server to ask, as host:port (DNS_RESOLVER).
	// When empty, the servers in ResolvConf are asked in turn.
	Resolver string
	// ResolvConf is the system resolver configuration; /etc/resolv.conf
	// when empty.
	ResolvConf string
	// Timeout bounds a whole check: both names are looked up at once, and
	// lost queries are retried within it. DefaultTimeout when zero.
	Timeout time.Duration
}

var _ tenancy.DomainVerifier = (*Verifier)(nil)

// New returns a verifier asking resolver (host:port), or the system's
// resolvers when resolver is empty.
func New(resolver string) *Verifier { return &Verifier{Resolver: resolver} }

// CheckDomain looks up the TXT records of both names that may carry the
// domain's verification value and reports what each holds.
func (v *Verifier) CheckDomain(ctx context.Context, domain, token string) tenancy.VerifyResult {
	timeout := v.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	names := tenancy.VerificationNames(domain)
	res := tenancy.VerifyResult{Domain: domain, Lookups: make([]tenancy.TXTLookup, len(names))}
	servers, err := v.servers()
	if err != nil {
		for i, name := range names {
			res.Lookups[i] = tenancy.TXTLookup{Name: name, Outcome: tenancy.TXTError, Detail: err.Error()}
		}
		return res
	}
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			res.Lookups[i] = lookup(ctx, servers, name, token, timeout)
		})
	}
	wg.Wait()
	return res
}

func (v *Verifier) timeout() time.Duration {
	if v.Timeout > 0 {
		return v.Timeout
	}
	return DefaultTimeout
}

// servers returns the DNS servers to ask, as host:port.
func (v *Verifier) servers() ([]string, error) {
	if v.Resolver != "" {
		return []string{v.Resolver}, nil
	}
	path := v.ResolvConf
	if path == "" {
		path = "/etc/resolv.conf"
	}
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("no DNS server to ask: %v; set DNS_RESOLVER", err)
	}
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("no DNS server to ask: %s names none; set DNS_RESOLVER", path)
	}
	out := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		out[i] = net.JoinHostPort(s, cfg.Port)
	}
	return out, nil
}

// lookup asks for name's TXT records until a server gives a definite
// answer or ctx ends. Each server gets two tries over UDP, as a lost packet
// is not an answer; a truncated answer is asked again over TCP.
func lookup(ctx context.Context, servers []string, name, token string, timeout time.Duration) tenancy.TXTLookup {
	tries := 2 * len(servers)
	perTry := timeout / time.Duration(tries)
	var last tenancy.TXTLookup
	for i := range tries {
		if ctx.Err() != nil {
			break
		}
		server := servers[i%len(servers)]
		l, definite := ask(ctx, server, name, token, perTry, timeout)
		if definite {
			return l
		}
		// A timeout says less than an error the server gave: keep the
		// error to report if nothing better comes.
		if last.Outcome == "" || l.Outcome != tenancy.TXTTimeout {
			last = l
		}
	}
	if last.Outcome == "" {
		last = tenancy.TXTLookup{Name: name, Outcome: tenancy.TXTTimeout, Detail: noAnswer(servers[0], timeout)}
	}
	return last
}

// ask puts one question to one server. definite is false for answers
// another try or server might better: timeouts, network errors and server
// failures.
func ask(ctx context.Context, server, name, token string, perTry, timeout time.Duration) (l tenancy.TXTLookup, definite bool) {
	l.Name = name
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	q.RecursionDesired = true
	q.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: perTry}
	resp, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			l.Outcome, l.Detail = tenancy.TXTTimeout, noAnswer(server, timeout)
			return l, false
		}
		l.Outcome, l.Detail = tenancy.TXTError, fmt.Sprintf("cannot ask %s: %s", server, shortNetError(err))
		return l, false
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		l.Outcome = tenancy.TXTNXDomain
		return l, true
	default:
		l.Outcome, l.Detail = tenancy.TXTError, fmt.Sprintf("%s from %s", dns.RcodeToString[resp.Rcode], server)
		return l, false
	}
	var values []string
	for _, rr := range resp.Answer {
		txt, ok := rr.(*dns.TXT)
		if !ok {
			continue // the CNAMEs of a chain; their targets' TXT records follow
		}
		value := unescape(strings.Join(txt.Txt, ""))
		if tenancy.MatchesVerification(value, token) {
			l.Outcome = tenancy.TXTFound
			return l, true
		}
		if len(values) < maxValues {
			values = append(values, value)
		} else {
			l.More++
		}
	}
	if len(values) == 0 {
		l.Outcome = tenancy.TXTNoRecord
		return l, true
	}
	l.Outcome, l.Values = tenancy.TXTOtherValues, values
	return l, true
}

func noAnswer(server string, timeout time.Duration) string {
	return fmt.Sprintf("no answer from %s within %s", server, timeout)
}

// shortNetError drops the operation and addresses a net.OpError repeats,
// keeping the cause ("connection refused").
func shortNetError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sys interface{ Unwrap() error }
	if errors.As(err, &sys) {
		if inner := sys.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// unescape turns the presentation form of a TXT string back into its
// bytes: \" and \\ become the character, \DDD the byte of that decimal
// value.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if n, err := strconv.Atoi(s[i+1 : i+4]); err == nil && n < 256 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
