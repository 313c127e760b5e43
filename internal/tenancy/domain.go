package tenancy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DomainState is where a custom domain is on its way to serving a tenant.
// Ownership and the certificate are separate steps: a domain is verified
// once its owner has proved control of its DNS, and active once a
// certificate has been issued for it.
//
//	pending ──verify──▶ verified ──▶ certificate_issuing ──▶ active
//	                       │                 │                 │
//	                       └────────────▶ failed ◀─────────────┘
//	                                         │
//	                 verified ◀──verify──────┘
//
// A failed check leaves a pending domain pending, with the reason recorded.
// A verified (or later) domain whose record has gone is failed once the
// record has been missing longer than DomainGracePeriod.
type DomainState string

const (
	DomainPending            DomainState = "pending"             // added; its owner has yet to prove control
	DomainVerified           DomainState = "verified"            // control proved by the TXT record
	DomainCertificateIssuing DomainState = "certificate_issuing" // a certificate is being obtained
	DomainActive             DomainState = "active"              // verified, with a certificate
	DomainFailed             DomainState = "failed"              // lost its verification, or its certificate failed; see Failure
)

// DomainStates lists the states in the order a domain moves through them.
var DomainStates = []DomainState{DomainPending, DomainVerified, DomainCertificateIssuing, DomainActive, DomainFailed}

// domainTransitions is every move the state machine allows.
var domainTransitions = map[DomainState][]DomainState{
	DomainPending:            {DomainVerified},
	DomainVerified:           {DomainCertificateIssuing, DomainFailed},
	DomainCertificateIssuing: {DomainActive, DomainFailed},
	DomainActive:             {DomainFailed},
	DomainFailed:             {DomainVerified},
}

// CanBecome reports whether a domain in state s may move to state to, and
// if not, why.
func (s DomainState) CanBecome(to DomainState) error {
	for _, next := range domainTransitions[s] {
		if next == to {
			return nil
		}
	}
	return Errorf(ECONFLICT, "a domain that is %s cannot become %s", s, to)
}

// Owned reports whether the state stands for proven control of the domain:
// such a domain routes to its tenant.
func (s DomainState) Owned() bool {
	return s == DomainVerified || s == DomainCertificateIssuing || s == DomainActive
}

// DomainGracePeriod is how long a verified domain keeps its state after its
// TXT record was last seen: a DNS change or an outage at the domain's DNS
// host should not take a tenant off the air at once.
const DomainGracePeriod = 72 * time.Hour

// Domain is a custom domain a tenant has claimed.
type Domain struct {
	TenantID string
	// Name is the domain in its ASCII form (internationalized names in
	// punycode), lowercase, without a trailing dot.
	Name    string
	Primary bool
	State   DomainState
	// Token is the secret that the TXT record must carry: 32 lowercase hex
	// digits.
	Token string
	// VerifiedAt is when control was last proved: set again when a failed
	// domain is verified anew.
	VerifiedAt *time.Time
	// FirstVerifiedAt is when control was first proved; never cleared. A
	// domain that has it stays its tenant's until the tenant removes it,
	// whatever later checks find (see StaleClaim).
	FirstVerifiedAt *time.Time
	// CheckedAt is when the TXT record was last looked up.
	CheckedAt *time.Time
	// LastSeenValidAt is when the TXT record was last found, for the grace
	// period of re-checks.
	LastSeenValidAt *time.Time
	// Failure says what went wrong in the last check (or the certificate);
	// empty when nothing did.
	Failure   string
	CreatedAt time.Time
}

// Verified reports whether the domain's owner has proved control of it.
func (d *Domain) Verified() bool { return d.State.Owned() }

// RecordName is where the verification TXT record goes.
func (d *Domain) RecordName() string { return VerificationRecordName(d.Name) }

// RecordValue is the text the verification TXT record must hold.
func (d *Domain) RecordValue() string { return VerificationValue(d.Token) }

func (d *Domain) moveTo(to DomainState) error {
	if err := d.State.CanBecome(to); err != nil {
		return fmt.Errorf("domain %s: %w", d.Name, err)
	}
	d.State = to
	return nil
}

// RecordCheck applies the result of looking up the domain's TXT record at
// time at. Found, a pending or failed domain becomes verified, and any
// domain's failure is cleared. Not found, the reason is recorded; a pending
// domain stays pending, and a verified one keeps its state until the record
// has been missing for longer than DomainGracePeriod, as shown by answers
// that leave no doubt (a timeout or a DNS error proves nothing).
func (d *Domain) RecordCheck(at time.Time, r VerifyResult) {
	d.CheckedAt = &at
	if r.Verified() {
		d.LastSeenValidAt = &at
		d.Failure = ""
		if d.State == DomainPending || d.State == DomainFailed {
			d.State = DomainVerified
			d.VerifiedAt = &at
		}
		if d.FirstVerifiedAt == nil {
			d.FirstVerifiedAt = &at
		}
		return
	}
	d.Failure = r.Message()
	if !d.State.Owned() || !r.Conclusive() {
		return
	}
	since := d.VerifiedAt
	if d.LastSeenValidAt != nil {
		since = d.LastSeenValidAt
	}
	if since != nil && at.Sub(*since) > DomainGracePeriod {
		d.State = DomainFailed
		d.Failure = fmt.Sprintf("verification record missing since %s: %s", since.UTC().Format("2006-01-02 15:04 MST"), r.Message())
	}
}

// StaleClaimAge is how long a claim may stay unverified before another
// tenant may take the domain over: without it, anybody could add a domain
// they do not own and keep its owner from adding it forever.
const StaleClaimAge = 7 * 24 * time.Hour

// StaleClaim reports whether another tenant's claim of the domain may be
// taken over at now: only a claim whose control was never proved, older
// than StaleClaimAge. A domain verified once stays its tenant's even while
// its record is missing and a re-check fails it: a lapse of a day must not
// hand a tenant's domain to whoever asks next.
func (d *Domain) StaleClaim(now time.Time) bool {
	return d.FirstVerifiedAt == nil && !d.Verified() && now.Sub(d.CreatedAt) > StaleClaimAge
}

// StartCertificate marks a verified domain as having a certificate
// requested for it.
func (d *Domain) StartCertificate() error { return d.moveTo(DomainCertificateIssuing) }

// CertificateIssued marks a domain whose certificate was issued as active.
func (d *Domain) CertificateIssued() error {
	if err := d.moveTo(DomainActive); err != nil {
		return err
	}
	d.Failure = ""
	return nil
}

// CertificateFailed marks a domain whose certificate could not be issued as
// failed, with the reason.
func (d *Domain) CertificateFailed(reason string) error {
	if err := d.moveTo(DomainFailed); err != nil {
		return err
	}
	d.Failure = "certificate: " + reason
	return nil
}

// CertificateRequestFailed records why a certificate could not be obtained
// for a domain whose control is proved: a verified domain moves to
// certificate_issuing (requests go on, and it keeps routing), and the
// reason is kept for its owner to read. It reports whether anything
// changed. An active domain keeps its certificate and state.
func (d *Domain) CertificateRequestFailed(reason string) (bool, error) {
	failure := "certificate: " + reason
	switch d.State {
	case DomainActive:
		return false, nil
	case DomainVerified:
		if err := d.StartCertificate(); err != nil {
			return false, err
		}
	case DomainCertificateIssuing:
		if d.Failure == failure {
			return false, nil
		}
	default:
		return false, Errorf(EINVALID, "domain %s is %s: no certificate is requested for it", d.Name, d.State)
	}
	d.Failure = failure
	return true, nil
}

// CanBePrimary reports whether the domain may become its tenant's primary
// domain: only one whose control was proved.
func (d *Domain) CanBePrimary() error {
	if !d.Verified() {
		return FieldErrorf(ECONFLICT, "domain", "domain %s is %s; only a verified domain can be primary", d.Name, d.State)
	}
	return nil
}

// The TXT verification scheme: the record _nself-verify.DOMAIN (or DOMAIN
// itself) holds nself-verify=TOKEN.
const (
	VerificationPrefix = "_nself-verify."
	VerificationTag    = "nself-verify="
)

// VerificationRecordName is the name of a domain's verification record.
func VerificationRecordName(domain string) string { return VerificationPrefix + domain }

// VerificationValue is the text a verification record holds.
func VerificationValue(token string) string { return VerificationTag + token }

// VerificationNames are the names whose TXT records may prove control of a
// domain, in the order to report them.
func VerificationNames(domain string) []string {
	return []string{VerificationRecordName(domain), domain}
}

// MatchesVerification reports whether a TXT value is the verification
// value for token. Surrounding space and quotes, which DNS control panels
// sometimes keep, and letter case are forgiven.
func MatchesVerification(value, token string) bool {
	v := strings.Trim(strings.TrimSpace(value), `"`)
	return strings.EqualFold(v, VerificationValue(token))
}

// NewVerificationToken returns a fresh token: 128 random bits as 32
// lowercase hex digits.
func NewVerificationToken() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails; see crypto/rand.Read
	return hex.EncodeToString(b)
}

// TXTOutcome is what a lookup of one name's TXT records found.
type TXTOutcome string

const (
	TXTFound       TXTOutcome = "found"        // the expected value is among the records
	TXTOtherValues TXTOutcome = "other_values" // TXT records, none of them the expected value
	TXTNoRecord    TXTOutcome = "no_record"    // the name exists but has no TXT record
	TXTNXDomain    TXTOutcome = "nxdomain"     // the name does not exist
	TXTTimeout     TXTOutcome = "timeout"      // no answer in time
	TXTError       TXTOutcome = "error"        // the DNS server answered with an error, or could not be reached
)

// TXTLookup is the result of looking up one name.
type TXTLookup struct {
	Name    string
	Outcome TXTOutcome
	// Values are the values found under TXTOtherValues; More counts the
	// ones left out.
	Values []string
	More   int
	// Detail says what happened under TXTTimeout and TXTError, such as
	// "SERVFAIL from 127.0.0.1:53".
	Detail string
}

// VerifyResult is what a check of a domain's verification record found:
// one lookup per name of VerificationNames.
type VerifyResult struct {
	Domain  string
	Lookups []TXTLookup
}

// Verified reports whether the expected value was found.
func (r VerifyResult) Verified() bool { return r.FoundAt() != "" }

// FoundAt is the name where the expected value was found, or "".
func (r VerifyResult) FoundAt() string {
	for _, l := range r.Lookups {
		if l.Outcome == TXTFound {
			return l.Name
		}
	}
	return ""
}

// Outcome sums the lookups up in one outcome: found anywhere wins; then
// other values (something is there, but not the token); then a timeout or
// an error (the answer is unknown); then no record; and NXDOMAIN only when
// no name exists.
func (r VerifyResult) Outcome() TXTOutcome {
	for _, o := range []TXTOutcome{TXTFound, TXTOtherValues, TXTTimeout, TXTError, TXTNoRecord} {
		for _, l := range r.Lookups {
			if l.Outcome == o {
				return o
			}
		}
	}
	return TXTNXDomain
}

// Conclusive reports whether every lookup got a definite answer, so the
// result says what DNS holds rather than that it could not be asked.
func (r VerifyResult) Conclusive() bool {
	for _, l := range r.Lookups {
		if l.Outcome == TXTTimeout || l.Outcome == TXTError {
			return false
		}
	}
	return len(r.Lookups) > 0
}

// maxShownValues bounds the values a message lists per name.
const maxShownValues = 3

// Message says in one line what the check found, name by name.
func (r VerifyResult) Message() string {
	if at := r.FoundAt(); at != "" {
		return "verification record found at " + at
	}
	parts := make([]string, 0, len(r.Lookups))
	for _, l := range r.Lookups {
		parts = append(parts, l.Name+": "+l.describe())
	}
	return "verification record not found: " + strings.Join(parts, "; ")
}

func (l TXTLookup) describe() string {
	switch l.Outcome {
	case TXTFound:
		return "found"
	case TXTNoRecord:
		return "no TXT record"
	case TXTNXDomain:
		return "no such name in DNS (NXDOMAIN)"
	case TXTOtherValues:
		shown := l.Values
		more := l.More
		if len(shown) > maxShownValues {
			more += len(shown) - maxShownValues
			shown = shown[:maxShownValues]
		}
		q := make([]string, len(shown))
		for i, v := range shown {
			q[i] = quoteValue(v)
		}
		s := "other values: " + strings.Join(q, ", ")
		if more > 0 {
			s += fmt.Sprintf(" (and %d more)", more)
		}
		return s
	case TXTTimeout:
		return "timeout (" + l.Detail + ")"
	}
	return "DNS error (" + l.Detail + ")"
}

// quoteValue quotes a TXT value for a message, long enough to show a whole
// verification value (45 characters) so a wrong token can be compared.
func quoteValue(v string) string {
	const max = 64
	if utf8.RuneCountInString(v) > max {
		return strconv.Quote(string([]rune(v)[:max])) + "…"
	}
	return strconv.Quote(v)
}

// DomainVerifier looks up a domain's verification record. Every failure
// (timeout, DNS error) is described in the result, never returned as an
// error.
type DomainVerifier interface {
	CheckDomain(ctx context.Context, domain, token string) VerifyResult
}

// DomainNameMaxLen is the longest domain name DNS allows, in its ASCII
// form.
const DomainNameMaxLen = 253

// DomainRules are what a custom domain name is checked against.
type DomainRules struct {
	// BaseDomain is the platform's own domain (BASE_DOMAIN); neither it nor
	// any name under it can be claimed.
	BaseDomain string
	// ToASCII converts an internationalized name to its ASCII (punycode)
	// form, and checks names with xn-- labels. IDNA needs Unicode tables the
	// standard library lacks, so the conversion is passed in; when nil,
	// names must already be in ASCII.
	ToASCII func(name string) (string, error)
	// Disabled is TENANT_CUSTOM_DOMAINS_ENABLED=false: no domain may be
	// added, so none can route.
	Disabled bool
}

// ErrCustomDomainsOff refuses a new custom domain where they are turned off.
var ErrCustomDomainsOff = FieldErrorf(EINVALID, "domain", "custom domains are turned off on this platform (TENANT_CUSTOM_DOMAINS_ENABLED=false): your workspace is reached at its subdomain")

// Normalize checks a domain name a person typed and returns the form to
// store: trimmed, lowercase, without a trailing dot, internationalized
// names in punycode. It names the first rule the name breaks.
func (r DomainRules) Normalize(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	bad := func(format string, args ...any) error {
		return FieldErrorf(EINVALID, "domain", "domain %s "+format, append([]any{Quote(s)}, args...)...)
	}
	switch {
	case s == "":
		return "", FieldErrorf(EINVALID, "domain", "domain is required")
	case strings.Contains(s, "://"):
		return "", bad("must be a name only, without http:// or another scheme")
	case strings.ContainsAny(s, `/?#\`):
		return "", bad("must be a name only, without a path")
	case strings.Contains(s, "@"):
		return "", bad("must be a name only, without a user name and @")
	case strings.Contains(s, "*"):
		return "", bad("is a wildcard; add each name separately")
	case isIP(s):
		return "", bad("is an IP address; use a domain name")
	}
	if host, _, err := net.SplitHostPort(s); err == nil && isIP(host) {
		return "", bad("is an IP address; use a domain name")
	}
	if strings.Contains(s, ":") {
		return "", bad("must not include a port")
	}

	name := strings.TrimSuffix(strings.ToLower(s), ".")
	if isIP(name) {
		return "", bad("is an IP address; use a domain name")
	}
	if !isASCII(name) {
		if r.ToASCII == nil {
			return "", bad("is an internationalized name; enter its ASCII form (xn--…)")
		}
		ascii, err := r.ToASCII(name)
		if err != nil {
			return "", bad("is not a valid internationalized domain name")
		}
		name = strings.ToLower(ascii)
		if isIP(name) {
			return "", bad("is an IP address; use a domain name")
		}
	}

	if len(name) > DomainNameMaxLen {
		return "", bad("is too long: %d characters in DNS form, at most %d", len(name), DomainNameMaxLen)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "", bad("has an empty label: two dots in a row, or a leading dot")
		case len(l) > 63:
			return "", bad("has a label longer than 63 characters")
		case !isLDH(l):
			return "", bad("may contain only letters, digits, hyphens and dots")
		case l[0] == '-' || l[len(l)-1] == '-':
			return "", bad("has a label that starts or ends with a hyphen")
		case len(l) >= 4 && l[2:4] == "--" && !strings.HasPrefix(l, "xn--"):
			return "", bad("has a label with hyphens in its 3rd and 4th places, which DNS keeps for xn-- labels")
		}
	}
	if len(labels) < 2 {
		return "", bad("needs at least two labels, such as example.com")
	}
	if isDigits(labels[len(labels)-1]) {
		return "", bad("ends in a number, like an IP address; use a domain name")
	}
	if r.ToASCII != nil && strings.Contains(name, "xn--") {
		// A punycode label typed as such must decode to a valid name.
		if _, err := r.ToASCII(name); err != nil {
			return "", bad("is not a valid internationalized domain name")
		}
	}
	if base := strings.TrimSuffix(strings.ToLower(r.BaseDomain), "."); base != "" {
		switch {
		case name == base:
			return "", bad("is the platform's own domain")
		case strings.HasSuffix(name, "."+base):
			return "", bad("is under the platform's domain %s; tenants have SLUG.%s already", base, base)
		}
	}
	return name, nil
}

// Canonical returns the form a domain is stored in, as well as it can be
// worked out, to look a domain up by what a person or a request named. It
// never fails: a name that cannot be converted is returned lowercased and
// simply matches nothing.
func (r DomainRules) Canonical(name string) string {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if !isASCII(name) && r.ToASCII != nil {
		if ascii, err := r.ToASCII(name); err == nil {
			return strings.ToLower(ascii)
		}
	}
	return name
}

func isIP(s string) bool {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isLDH(label string) bool {
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// DomainFilter selects the domains of a tenant for a list.
type DomainFilter struct {
	// State selects one state; all when empty.
	State  DomainState
	Offset int
	// Limit is the page size; 0 means no limit.
	Limit int
}

// DomainService manages a tenant's custom domains. Every call runs in that
// tenant's context, so row-level security bounds what it can touch; a
// domain of another tenant is not found.
type DomainService interface {
	// AddDomain claims a domain for the tenant, pending verification, with
	// a fresh token. A domain claimed by another tenant is a conflict.
	AddDomain(ctx context.Context, tenantID, name string) (*Domain, error)
	// FindDomain returns one of the tenant's domains.
	FindDomain(ctx context.Context, tenantID, name string) (*Domain, error)
	// ListDomains returns a page of the tenant's domains, oldest first, and
	// the total that match.
	ListDomains(ctx context.Context, tenantID string, f DomainFilter) ([]*Domain, int, error)
	// VerifyDomain looks the domain's TXT record up through v, outside any
	// transaction, and records what it found (see Domain.RecordCheck). A
	// record not found is not an error: the domain comes back with Failure
	// set, and the result says name by name what DNS held.
	VerifyDomain(ctx context.Context, tenantID, name string, v DomainVerifier) (*Domain, VerifyResult, error)
	// SetPrimaryDomain makes a verified domain the tenant's primary one,
	// and the previous primary an ordinary domain.
	SetPrimaryDomain(ctx context.Context, tenantID, name string) (*Domain, error)
	// RemoveDomain gives up a domain; another tenant may then claim it.
	RemoveDomain(ctx context.Context, tenantID, name string) error
	// CertificateIssued records that a verified domain has its
	// certificate: it becomes active.
	CertificateIssued(ctx context.Context, tenantID, name string) (*Domain, error)
	// CertificateRequestFailed records why a verified domain's
	// certificate could not be obtained.
	CertificateRequestFailed(ctx context.Context, tenantID, name, reason string) (*Domain, error)
}

// DomainLookup is the platform's path to route requests: it finds which
// tenant a verified custom domain belongs to, across all tenants.
type DomainLookup interface {
	// LookupVerifiedDomain returns the id of the tenant whose verified
	// (or later: certificate issuing, active) domain name is, or
	// ENOTFOUND.
	LookupVerifiedDomain(ctx context.Context, name string) (tenantID string, err error)
	// LookupClaimedDomain is the same for any domain a tenant has added
	// and that has not failed, verified or not: for platforms that route
	// domains before verification (TENANT_REQUIRE_DOMAIN_VERIFICATION=false).
	LookupClaimedDomain(ctx context.Context, name string) (tenantID string, err error)
}
