package web

import (
	"strings"
	"sync"
	"time"
)

// Sign-in limits: failed attempts allowed per window, per account and per
// client address. The account limit stops guessing one password; the
// address limit stops one client trying many accounts.
const (
	attemptWindow     = 15 * time.Minute
	maxAccountFailure = 5
	maxAddressFailure = 30
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

// signInKeys are what one sign-in attempt counts against: the account,
// within its scope (a tenant, or the console), and the client's address,
// across all scopes, so trying many tenants from one address is limited too.
type signInKeys struct{ account, address string }

func newSignInKeys(scope, email, clientAddr string) signInKeys {
	return signInKeys{
		account: "signin|" + scope + "|" + strings.ToLower(strings.TrimSpace(email)),
		address: "signin|" + clientAddr,
	}
}

// signInBlocked reports whether either key has used up its attempts, and
// when to try again.
func (l *attemptLimiter) signInBlocked(k signInKeys) (bool, time.Duration) {
	if blocked, wait := l.blocked(k.account, maxAccountFailure); blocked {
		return true, wait
	}
	return l.blocked(k.address, maxAddressFailure)
}

// signInFailed counts a failed attempt against both keys.
func (l *attemptLimiter) signInFailed(k signInKeys) {
	l.fail(k.account)
	l.fail(k.address)
}
