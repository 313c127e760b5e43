package notify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

// Sender delivers the outbox's mail. Every server process runs one; they
// share the work through the outbox's claims, so each mail is sent once
// however many run (and, after a sender dies mid-mail, once more at most,
// when its claim expires).
type Sender struct {
	Outbox   tenancy.Outbox
	Mailer   tenancy.Mailer
	Composer *Composer
	Retry    tenancy.MailRetry
	// Batch is how many mails one claim takes; DefaultBatch when 0.
	Batch int
	// SendTimeout bounds composing and sending one mail; DefaultSendTimeout
	// when 0. A claim holds its mails for Batch of them and a margin.
	SendTimeout time.Duration
	Log         *slog.Logger
	// Wake says mail may be due: a notice that mail was queued, from any
	// process. With it, Run sleeps until it speaks or the next mail is due,
	// and looks on its own only at its long interval; without it, Run
	// looks at every interval.
	Wake <-chan struct{}

	// down is set while the mail server cannot be reached: each run then
	// claims one mail, to find out whether it is back, instead of a batch
	// it would hand back untried.
	down atomic.Bool
}

// Defaults of a Sender.
const (
	DefaultBatch       = 10
	DefaultSendTimeout = time.Minute
	// markTimeout bounds writing down how a send went, which goes on
	// after shutdown begins: a mail sent and not marked would go again.
	markTimeout = 10 * time.Second
	// maxRounds bounds the claims of one RunOnce, so that a steady stream
	// of new mail cannot keep it from returning.
	maxRounds = 100
)

// Result counts what a run did.
type Result struct {
	Sent, Failed, GivenUp int
}

func (s *Sender) batch() int {
	if s.Batch > 0 {
		return s.Batch
	}
	return DefaultBatch
}

func (s *Sender) sendTimeout() time.Duration {
	if s.SendTimeout > 0 {
		return s.SendTimeout
	}
	return DefaultSendTimeout
}

// hold is how long a claim keeps its mails from other senders: long
// enough to send them all one after another.
func (s *Sender) hold() time.Duration {
	return time.Duration(s.batch())*s.sendTimeout() + 30*time.Second
}

// RunOnce sends the mail that is due, batch after batch, until none is
// left. When the mail server cannot be reached it stops: the rest waits
// for the next run rather than each mail timing out in turn, and the runs
// that follow try one mail each until one goes.
func (s *Sender) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	for range maxRounds {
		limit := s.batch()
		if s.down.Load() {
			limit = 1
		}
		mails, err := s.Outbox.Claim(ctx, limit, s.hold())
		if err != nil {
			return res, err
		}
		sent := res.Sent
		down := s.deliver(ctx, mails, &res)
		if down {
			s.down.Store(true)
		} else if res.Sent > sent {
			s.down.Store(false)
		}
		if down || len(mails) < limit || ctx.Err() != nil {
			break
		}
	}
	return res, ctx.Err()
}

// deliver sends claimed mails one by one and reports whether the mail
// server was found unreachable; the mails not tried then are handed back.
func (s *Sender) deliver(ctx context.Context, mails []*tenancy.Mail, res *Result) (down bool) {
	for i, m := range mails {
		if ctx.Err() != nil || down {
			wait := s.Retry.MinDelay
			if ctx.Err() != nil {
				wait = 0
			}
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
			if err := s.Outbox.Release(mctx, mails[i:], wait); err != nil {
				s.log().Warn("mail outbox: hand back unsent mail", "err", err)
			}
			cancel()
			return down
		}
		err := s.send(ctx, m)
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
		if err == nil {
			res.Sent++
			ok, merr := s.Outbox.Sent(mctx, m)
			switch {
			case merr != nil:
				s.log().Error("mail sent but not marked: it may go again", "tenant", m.TenantSlug, "template", m.Template, "mail", m.ID, "err", merr)
			case !ok:
				s.log().Warn("mail sent after its claim expired: another sender may have sent it too", "tenant", m.TenantSlug, "template", m.Template, "mail", m.ID)
			}
			cancel()
			continue
		}
		down = tenancy.ErrorCode(err) == tenancy.EUNAVAILABLE
		wait, giveUp := s.Retry.After(m.Attempts)
		if tenancy.ErrorCode(err) == tenancy.EINVALID {
			// The mail server refused it for good (a 5xx reply, such as an
			// unknown address): trying again for a day would only harm the
			// sender's standing.
			giveUp = true
		}
		if giveUp {
			res.GivenUp++
		} else {
			res.Failed++
		}
		s.log().Warn("mail not sent", "tenant", m.TenantSlug, "template", m.Template, "mail", m.ID,
			"attempt", m.Attempts, "retry_in", wait.String(), "given_up", giveUp, "err", err)
		if merr := s.Outbox.Failed(mctx, m, Reason(err), wait, giveUp); merr != nil {
			s.log().Error("mail outbox: record a failed attempt", "mail", m.ID, "err", merr)
		}
		cancel()
	}
	return down
}

// send composes one mail and hands it to the mail server, within the
// send timeout. The claim's context is not the request's: nothing here
// runs inside a transaction or holds a lock.
func (s *Sender) send(ctx context.Context, m *tenancy.Mail) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.sendTimeout())
	defer cancel()
	msg, err := s.Composer.Compose(ctx, m)
	if err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	m.Subject = msg.Subject
	return s.Mailer.Send(ctx, msg)
}

// Reason says why a mail did not go, for the people who see it: the
// members page beside an invitation, the console. An unreachable server
// is said plainly; a refusal carries the server's reply, which is about
// the message or the address.
func Reason(err error) string {
	switch tenancy.ErrorCode(err) {
	case tenancy.EUNAVAILABLE:
		return "the mail server could not be reached"
	case tenancy.EINTERNAL:
	default:
		return "the mail could not be composed: " + tenancy.ErrorMessage(err)
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if strings.HasPrefix(msg, "compose: ") {
		return "the mail could not be composed"
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return "the mail server refused it (" + msg + ")"
}

// Run sends due mail until ctx ends, and returns once the mail in hand is
// sent and marked. Between rounds it sleeps until Wake speaks, the next
// mail is due (a retry scheduled for later, a claim that ends) or every
// has passed, whichever comes first: a server with no mail to send asks
// the database nothing. every is the safety net for mail queued without a
// notice (by hand, say).
func (s *Sender) Run(ctx context.Context, every time.Duration) {
	t := time.NewTimer(every)
	defer t.Stop()
	var forgotAt time.Time
	for {
		if time.Since(forgotAt) >= time.Hour {
			forgotAt = time.Now()
			if n, err := s.Outbox.Forget(ctx); err != nil && ctx.Err() == nil {
				s.log().Warn("mail outbox: forget old mail", "err", err)
			} else if n > 0 {
				s.log().Info("mail outbox: forgot old mail", "mails", n)
			}
		}
		res, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.log().Warn("mail outbox: sending paused", "err", err)
		}
		if res.Sent+res.Failed+res.GivenUp > 0 {
			s.log().Info("mail outbox", "sent", res.Sent, "failed", res.Failed, "given_up", res.GivenUp)
		}
		t.Reset(s.sleep(ctx, every, err))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.Wake:
		}
	}
}

// Bounds of the sleep between rounds, when woken by notices.
const (
	// minSleep keeps mail that stays due (another sender's claim still
	// being written, a hundred rounds of new mail) from making a busy loop.
	minSleep = time.Second
	// errorSleep is the sleep after a round that failed: the database may
	// be back before the listener notices it was gone.
	errorSleep = 10 * time.Second
)

// sleep is how long to wait before the next round: every without Wake,
// else until the next mail is due, within every.
func (s *Sender) sleep(ctx context.Context, every time.Duration, roundErr error) time.Duration {
	if s.Wake == nil || ctx.Err() != nil {
		return every
	}
	if roundErr != nil {
		return min(every, errorSleep)
	}
	next, err := s.Outbox.NextDue(ctx)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.log().Warn("mail outbox: when is mail next due", "err", err)
		}
		return min(every, errorSleep)
	case next.IsZero():
		return every
	}
	return min(max(time.Until(next), minSleep), every)
}

func (s *Sender) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
