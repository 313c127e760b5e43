package web

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

// Mail sent off the request path. A request that may mail (a password
// reset) answers in the same time whether it mails or not, and a slow or
// hung SMTP server holds no request.
const (
	// mailPlaces bounds the mails in hand at once; past it, requests that
	// would mail are refused until places free up.
	mailPlaces = 32
	// mailTimeout bounds building and sending one mail.
	mailTimeout = 30 * time.Second
	// mailCooldown is how long the mail system counts as unavailable
	// after a mail failed; the next request after it tries again.
	mailCooldown = 30 * time.Second
)

// mailQueue sends mail in the background, at most mailPlaces at a time,
// and remembers whether the last attempt failed, so that a page never says
// a mail is on its way while mail is known to be down.
type mailQueue struct {
	mailer   tenancy.Mailer
	log      *slog.Logger
	places   chan struct{}
	timeout  time.Duration
	cooldown time.Duration

	mu        sync.Mutex
	downUntil time.Time
}

func newMailQueue(m tenancy.Mailer, log *slog.Logger) *mailQueue {
	return &mailQueue{mailer: m, log: log, places: make(chan struct{}, mailPlaces),
		timeout: mailTimeout, cooldown: mailCooldown}
}

// mailTicket is a place taken for one mail: send uses it, release gives it
// back unused. Exactly one of them is called.
type mailTicket struct{ q *mailQueue }

// reserve takes a place for a mail before the caller knows whether it will
// send one, so that the answer (a place, or how long to wait) cannot depend
// on what the caller finds afterwards. No place while the last mail failed
// less than the cooldown ago, or while every place is taken.
func (q *mailQueue) reserve() (*mailTicket, time.Duration) {
	q.mu.Lock()
	wait := time.Until(q.downUntil)
	q.mu.Unlock()
	if wait > 0 {
		return nil, wait
	}
	select {
	case q.places <- struct{}{}:
		return &mailTicket{q: q}, 0
	default:
		return nil, q.cooldown
	}
}

func (t *mailTicket) release() { <-t.q.places }

// send builds the mail and sends it in the background, within the
// queue's timeout; what goes wrong is logged, and a failed send marks the
// mail system unavailable for the cooldown. build gets a context of its
// own: the request's ends with its answer.
func (t *mailTicket) send(what string, build func(context.Context) (tenancy.Message, error)) {
	q := t.q
	go func() {
		defer t.release()
		defer func() {
			// Out of any request, a panic would end the process.
			if v := recover(); v != nil {
				q.log.Error("mail panicked", "mail", what, "panic", v)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
		defer cancel()
		msg, err := build(ctx)
		if err != nil {
			q.log.Error("mail not built", "mail", what, "err", err)
			return
		}
		if err := q.mailer.Send(ctx, msg); err != nil {
			// Whatever the cause (unreachable, hung, refusing), the next
			// requests are told that mail cannot go out, instead of being
			// told a link is on its way.
			q.mu.Lock()
			q.downUntil = time.Now().Add(q.cooldown)
			q.mu.Unlock()
			q.log.Error("mail not sent", "mail", what, "err", err, "unavailable_for", q.cooldown.String())
		}
	}()
}

// wait returns once every mail taken in hand is sent or has failed, or
// when ctx ends.
func (q *mailQueue) wait(ctx context.Context) error {
	for len(q.places) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
