package tenancy_test

import (
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

// After a failed attempt the outbox waits twice as long as after the one
// before, never more than the cap, and gives up at the last attempt.
func TestMailRetry(t *testing.T) {
	r := tenancy.MailRetry{MinDelay: 30 * time.Second, MaxDelay: time.Hour, MaxAttempts: 10}
	for _, tc := range []struct {
		attempts int
		wait     time.Duration
		giveUp   bool
	}{
		{1, 30 * time.Second, false},
		{2, time.Minute, false},
		{3, 2 * time.Minute, false},
		{7, 32 * time.Minute, false},
		{8, time.Hour, false}, // 64 minutes, capped
		{9, time.Hour, false},
		{10, 0, true},
		{11, 0, true},
	} {
		wait, giveUp := r.After(tc.attempts)
		if wait != tc.wait || giveUp != tc.giveUp {
			t.Errorf("after attempt %d: wait %v, give up %v; want %v, %v", tc.attempts, wait, giveUp, tc.wait, tc.giveUp)
		}
	}
	// A huge attempt count neither overflows nor passes the cap.
	if wait, _ := (tenancy.MailRetry{MinDelay: time.Second, MaxDelay: time.Minute}).After(1 << 20); wait != time.Minute {
		t.Errorf("after a million attempts: %v", wait)
	}
	// The defaults try for about a day.
	var total time.Duration
	for n := 1; ; n++ {
		wait, giveUp := tenancy.DefaultMailRetry.After(n)
		if giveUp {
			break
		}
		total += wait
	}
	if total < 20*time.Hour || total > 30*time.Hour {
		t.Errorf("the default retries span %v", total)
	}
}

func TestMailState(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		m        tenancy.Mail
		state    tenancy.MailState
		delivery string
	}{
		{tenancy.Mail{}, tenancy.MailQueued, "not delivered yet"},
		{tenancy.Mail{LastError: "the mail server could not be reached", Attempts: 2}, tenancy.MailRetrying,
			"not delivered yet: the mail server could not be reached (trying again)"},
		{tenancy.Mail{LastError: "refused", FailedAt: &now}, tenancy.MailFailed, "not delivered: refused (resend to try again)"},
		{tenancy.Mail{SentAt: &now}, tenancy.MailSent, ""},
	} {
		if got := tc.m.State(); got != tc.state {
			t.Errorf("%+v: state %s, want %s", tc.m, got, tc.state)
		}
		if got := tc.m.Delivery(); got != tc.delivery {
			t.Errorf("%+v: delivery %q, want %q", tc.m, got, tc.delivery)
		}
	}
}
