package web

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Sign-in limits: failed attempts allowed per window. They slow guessing
// without letting anybody lock an account from elsewhere: what one address
// does never refuses another address that has not been failing.
//   - One account from one address: 5, so one client guesses slowly.
//   - One address, any accounts and tenants: 30, so one client cannot
//     spread its guesses over many accounts.
//   - One account from everywhere: past 50, an address that has failed on
//     that account even once is refused, so many addresses guessing
//     together get about one guess each; its owner, not failing, still
//     signs in.
const (
	attemptWindow     = 15 * time.Minute
	maxPairFailure    = 5
	maxAddressFailure = 30
	maxAccountFailure = 50
)

// attemptLimiter counts failed attempts per key in fixed windows, in this
// process. Several server processes each keep their own counts, so the
// effective limit is at most that many times higher.
type attemptLimiter struct {
	mu     sync.Mutex
	counts map[string]*window
	now    func() time.Time
}

type window struct {
	start time.Time
	n     int
}

func newAttemptLimiter() *attemptLimiter {
	return &attemptLimiter{counts: map[string]*window{}, now: time.Now}
}

// blocked reports whether key has used up its attempts, and when it may
// try again.
func (l *attemptLimiter) blocked(key string, max int) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.counts[key]
	now := l.now()
	if w == nil || now.Sub(w.start) >= attemptWindow {
		return false, 0
	}
	if w.n >= max {
		return true, attemptWindow - now.Sub(w.start)
	}
	return false, 0
}

// count is key's failures in its current window.
func (l *attemptLimiter) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.counts[key]; w != nil && l.now().Sub(w.start) < attemptWindow {
		return w.n
	}
	return 0
}

// fail records a failed attempt.
func (l *attemptLimiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.counts[key]
	if w == nil || now.Sub(w.start) >= attemptWindow {
		w = &window{start: now}
		l.counts[key] = w
	}
	w.n++
	// Drop old windows now and then, so the map does not grow forever.
	if len(l.counts) > 10000 {
		for k, v := range l.counts {
			if now.Sub(v.start) >= attemptWindow {
				delete(l.counts, k)
			}
		}
	}
}

// reset forgets a key's failures, after a successful sign-in.
func (l *attemptLimiter) reset(key string) {
	l.mu.Lock()
	delete(l.counts, key)
	l.mu.Unlock()
}

// signInKeys are what one sign-in attempt counts against: the account
// within its scope (a tenant, or the console), that account from the
// client's address, and the address across all scopes, so trying many
// tenants from one address is limited too.
type signInKeys struct{ account, pair, address string }

func newSignInKeys(scope, email, clientAddr string) signInKeys {
	account := "signin|" + scope + "|" + strings.ToLower(strings.TrimSpace(email))
	block := addressBlock(clientAddr)
	return signInKeys{account: account, pair: account + "|" + block, address: "signin|" + block}
}

// addressBlock is what counts as one client address: an IPv4 address, or
// the /64 of an IPv6 one, since one subscriber holds a whole /64 and could
// otherwise take a fresh address for every few guesses.
func addressBlock(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// signInBlocked reports whether the attempt is refused, and when to try
// again.
func (l *attemptLimiter) signInBlocked(k signInKeys) (bool, time.Duration) {
	if blocked, wait := l.blocked(k.pair, maxPairFailure); blocked {
		return true, wait
	}
	if blocked, wait := l.blocked(k.address, maxAddressFailure); blocked {
		return true, wait
	}
	if blocked, wait := l.blocked(k.account, maxAccountFailure); blocked && l.count(k.pair) > 0 {
		return true, wait
	}
	return false, 0
}

// signInFailed counts a failed attempt against every key.
func (l *attemptLimiter) signInFailed(k signInKeys) {
	l.fail(k.account)
	l.fail(k.pair)
	l.fail(k.address)
}

// signInSucceeded forgets the failures of the account from this address;
// the account's and the address's other counts stand.
func (l *attemptLimiter) signInSucceeded(k signInKeys) { l.reset(k.pair) }
