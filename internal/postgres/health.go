package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nself/nself/internal/tenancy"
)

// Reconnecting after a failed connection attempt waits between
// minBackoff and maxBackoff, doubling with each failure; the delay is
// jittered so that several server processes do not return in step.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// DefaultConnectTimeout bounds a connection attempt when the URL sets no
// connect_timeout. pgxpool would otherwise allow two minutes, and a
// database that accepts connections but does not answer (frozen, or
// behind a stuck proxy) would hold every slot of the pool meanwhile.
const DefaultConnectTimeout = 5 * time.Second

// cancelGrace is how long a call past its deadline waits for the server to
// cancel its statement before the connection is dropped.
const cancelGrace = 500 * time.Millisecond

// gate spaces out connection attempts while the database is unreachable.
// Without it each request that finds no connection starts one, about 200
// a second per server during an outage, and the attempts queue up behind
// each other. After a failed attempt, new ones fail at once with
// EUNAVAILABLE until the backoff allows the next; that one goes through
// alone, and its outcome decides the next delay. A success opens the gate.
type gate struct {
	pool string // which pool, for messages

	mu       sync.Mutex
	failures int
	next     time.Time // no attempt before this, while failures > 0
	last     error

	attempts atomic.Int64 // connection attempts let through, for tests
}

// admit lets a connection attempt through, or refuses it while the
// backoff runs.
func (g *gate) admit() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures == 0 {
		g.attempts.Add(1)
		return nil
	}
	now := time.Now()
	if now.Before(g.next) {
		return tenancy.Unavailable(tenancy.ServiceDatabase, fmt.Errorf(
			"%s pool: %d connection attempts failed, the next in %s: %w", g.pool, g.failures, g.next.Sub(now).Round(time.Millisecond), g.last))
	}
	// This attempt probes alone: others wait as long again.
	g.next = now.Add(backoff(g.failures))
	g.attempts.Add(1)
	return nil
}

// done records the outcome of an attempt admit let through.
func (g *gate) done(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.failures, g.last = 0, nil
		return
	}
	g.failures++
	g.last = err
	g.next = time.Now().Add(backoff(g.failures))
}

// down returns the last failure while the backoff runs, nil otherwise.
func (g *gate) down() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failures > 0 && time.Now().Before(g.next) {
		return g.last
	}
	return nil
}

// backoff is the delay after n failed attempts: exponential from
// minBackoff, capped at maxBackoff, with "equal jitter" (half fixed, half
// random) so that the delay still grows.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 16 {
		d = min(minBackoff<<(n-1), maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// tracer bounds the database calls of requests and reports connection
// outcomes to the pool's gate. pgx hands the context it returns from a
// Start hook to the call and then to the End hook, so a deadline set at
// Start covers the whole call (a query until its rows are closed, a batch
// until its results are) and is released at End.
type tracer struct{ gate *gate }

type cancelKey struct{}

// bound gives the call a deadline when the context asks for one.
func bound(ctx context.Context) context.Context {
	d, ok := tenancy.QueryTimeoutFrom(ctx)
	if !ok {
		return ctx
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return context.WithValue(ctx, cancelKey{}, cancel)
}

// release ends the deadline bound set.
func release(ctx context.Context) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

func (t tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return bound(ctx)
}
func (t tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	release(ctx)
}
func (t tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return bound(ctx)
}
func (t tracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (t tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	release(ctx)
}
func (t tracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return bound(ctx)
}
func (t tracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	release(ctx)
}
func (t tracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return bound(ctx)
}
func (t tracer) TracePrepareEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareEndData) {
	release(ctx)
}
func (t tracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return bound(ctx)
}
func (t tracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	release(ctx)
}

// A pool's connection attempt runs on past the Acquire that started it
// (pgxpool keeps the connection); its context keeps the request's values,
// so a request's attempt is bounded like its queries.
func (t tracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return bound(ctx)
}
func (t tracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	release(ctx)
	t.gate.done(data.Err)
}

// withHealth sets a pool's configuration up for outages: a bounded
// connection attempt, the gate before each attempt, and the tracer.
func withHealth(cfg *pgxpool.Config, name string) *gate {
	g := &gate{pool: name}
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	cfg.BeforeConnect = func(context.Context, *pgx.ConnConfig) error { return g.admit() }
	// A call past its deadline asks the server to cancel the statement,
	// so that it stops working for nobody, and gives the server
	// cancelGrace to do so before the connection is dropped.
	cfg.ConnConfig.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: cancelGrace}
	}
	cfg.ConnConfig.Tracer = tracer{gate: g}
	return g
}

// ConnectAttempts counts the connection attempts both pools have made,
// for tests that check that an outage does not bring a storm of them.
func (db *DB) ConnectAttempts() int64 {
	return db.appGate.attempts.Load() + db.adminGate.attempts.Load()
}

// readyWait is how long Ready waits for a connection: a pool that has
// none to give for that long is exhausted, not merely busy.
const readyWait = time.Second

// Ready reports whether a request would get a connection from each pool
// now: not while the database is unreachable, nor while every connection
// of a pool is taken (by requests stuck behind a lock, say), which pool
// statistics alone cannot tell from a busy moment.
func (db *DB) Ready(ctx context.Context) error {
	for _, p := range []struct {
		name string
		pool *pgxpool.Pool
		gate *gate
	}{{"application", db.App, db.appGate}, {"owner", db.Admin, db.adminGate}} {
		if p.gate != nil {
			if err := p.gate.down(); err != nil {
				return &tenancy.Error{Code: tenancy.EUNAVAILABLE, Service: tenancy.ServiceDatabase,
					Message: "database unreachable", Err: err}
			}
		}
		actx, cancel := context.WithTimeout(ctx, readyWait)
		c, err := p.pool.Acquire(actx)
		if err == nil {
			err = c.Ping(actx)
			c.Release()
		}
		cancel()
		switch {
		case err == nil:
		case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && int(p.pool.Stat().AcquiredConns()) >= int(p.pool.Stat().MaxConns()):
			st := p.pool.Stat()
			return &tenancy.Error{Code: tenancy.EUNAVAILABLE, Service: tenancy.ServiceDatabase,
				Message: fmt.Sprintf("database pool exhausted: all %d connections of the %s pool are in use", st.MaxConns(), p.name), Err: err}
		default:
			return &tenancy.Error{Code: tenancy.EUNAVAILABLE, Service: tenancy.ServiceDatabase,
				Message: "database unreachable", Err: err}
		}
	}
	return nil
}

// Outage turns an error that says the database could not be reached or
// did not answer in time into EUNAVAILABLE, naming the database; any other
// error gives nil. Those errors come out of every service of this package
// by many paths (a query, a commit, taking a connection), so they are
// recognised once, at the edge, rather than at each call.
func (db *DB) Outage(err error) error {
	if isOutage(err) {
		return tenancy.Unavailable(tenancy.ServiceDatabase, err)
	}
	return nil
}

func isOutage(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		// Canceled: the client left, or the server is stopping.
		return false
	}
	var te *tenancy.Error
	if errors.As(err, &te) {
		return false // already says what it is
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "08"), // connection exception
			pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03", // shutting down, crashed, starting up
			pg.Code == "53300", // too many connections
			pg.Code == "57014": // statement cancelled: the call's deadline passed
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.Timeout(err) || errors.Is(err, pgconn.ErrConnClosed) ||
		// Waiting for a connection past the call's deadline.
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// A connection lost mid-call. pgconn passes the network's error on,
	// often bare (a cut stream is io.ErrUnexpectedEOF). Other packages
	// name their own network failures (file storage, Stripe, mail), and a
	// request body cut short leaves no one to answer to, so what remains
	// is the database's.
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
