package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// directTransport carries the gateway's plain reads (GET and HEAD without
// a body, over HTTP: directRequest) to the application on kept-alive
// connections, in the request's own goroutine: it writes the request,
// reads the answer, and the connection goes back to the pool when the body
// has been read to its end.
//
// http.Transport gives each connection a reading and a writing goroutine
// and hands every request and answer between them over channels: on this
// path that is three goroutines woken per request, and a third of the
// gateway's CPU went to it and to the scheduler. Everything else (bodies,
// WebSocket upgrades, HTTPS) goes through httputil.ReverseProxy and
// http.Transport.
type directTransport struct {
	dial            func(ctx context.Context, network, addr string) (net.Conn, error)
	responseTimeout time.Duration
	idleTimeout     time.Duration
	maxIdle         int

	mu   sync.Mutex
	idle map[string][]*directConn
}

// directConn is a connection to the application with its buffers.
type directConn struct {
	conn      net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	addr      string
	idleSince time.Time
}

// do sends r to addr, its head written by head, and reads the answer's
// header; 1xx answers before it go to got1xx. A kept-alive connection the
// application has closed meanwhile fails before any answer: the request
// goes again on a new connection (a GET or HEAD may be sent twice, as
// http.Transport would).
func (t *directTransport) do(r *http.Request, addr string, head func(*bufio.Writer), got1xx func(int, http.Header)) (*http.Response, error) {
	for {
		c, reused := t.get(addr)
		if c == nil {
			var err error
			if c, err = t.connect(r.Context(), addr); err != nil {
				return nil, err
			}
		}
		resp, stale, err := t.exchange(c, r, head, got1xx)
		if err != nil && stale && reused && r.Context().Err() == nil {
			continue
		}
		return resp, err
	}
}

// directRequest reports whether the client's request r can take the direct
// path to an application at upstream.
func directRequest(r *http.Request, upstream *url.URL) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && upstream.Scheme == "http" &&
		(r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 && len(r.TransferEncoding) == 0 &&
		r.Header.Get("Upgrade") == ""
}

// exchange writes a request on c and reads the answer's header. On an
// error, c is closed, and stale reports a failure before any byte of the
// answer: a kept-alive connection the application had closed.
func (t *directTransport) exchange(c *directConn, req *http.Request, head func(*bufio.Writer), got1xx func(int, http.Header)) (resp *http.Response, stale bool, err error) {
	ctx := req.Context()
	// The client going away ends the exchange, as http.Transport does:
	// its connection's deadline is then in the past.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error, stale bool) (*http.Response, bool, error) {
		stop()
		c.conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, stale, err
	}
	head(c.bw)
	if err := c.bw.Flush(); err != nil {
		return fail(err, true)
	}
	if t.responseTimeout > 0 {
		c.conn.SetReadDeadline(time.Now().Add(t.responseTimeout))
	}
	// A deadline set here could have replaced the past one of a client
	// gone meanwhile.
	if ctx.Err() != nil {
		return fail(ctx.Err(), false)
	}
	if _, err := c.br.Peek(1); err != nil {
		var ne net.Error
		return fail(err, !(errors.As(err, &ne) && ne.Timeout()))
	}
	for {
		if resp, err = http.ReadResponse(c.br, req); err != nil {
			return fail(err, false)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// 1xx answers (103 Early Hints) come before the real one, and
		// reach the client.
		if got1xx != nil {
			got1xx(resp.StatusCode, resp.Header)
		}
	}
	if t.responseTimeout > 0 && !bodyBuffered(resp, c.br) {
		// The body streams as long as it takes, unless the client goes. A
		// body already read whole needs no more reads: the deadline stays
		// until the connection's next request sets its own.
		c.conn.SetReadDeadline(time.Time{})
		if ctx.Err() != nil {
			return fail(ctx.Err(), false)
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("the application switched protocols unasked"), false)
	}
	resp.Body = &directBody{body: resp.Body, c: c, t: t, stop: stop, keep: !resp.Close}
	return resp, false, nil
}

// bodyBuffered reports whether resp's whole body is in br already.
func bodyBuffered(resp *http.Response, br *bufio.Reader) bool {
	return resp.ContentLength >= 0 && int64(br.Buffered()) >= resp.ContentLength
}

// connect dials the application.
func (t *directTransport) connect(ctx context.Context, addr string) (*directConn, error) {
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &directConn{conn: conn, br: bufio.NewReaderSize(conn, 4<<10), bw: bufio.NewWriterSize(conn, 4<<10), addr: addr}, nil
}

// get takes the most recently used idle connection to addr, if any.
func (t *directTransport) get(addr string) (*directConn, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for conns := t.idle[addr]; len(conns) > 0; conns = t.idle[addr] {
		c := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		t.idle[addr] = conns[:len(conns)-1]
		if t.idleTimeout > 0 && time.Since(c.idleSince) > t.idleTimeout {
			c.conn.Close()
			continue
		}
		return c, true
	}
	return nil, false
}

// put keeps c for the next request, or closes it when enough are kept.
func (t *directTransport) put(c *directConn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	if t.idle == nil {
		t.idle = map[string][]*directConn{}
	}
	if len(t.idle[c.addr]) < t.maxIdle {
		t.idle[c.addr] = append(t.idle[c.addr], c)
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		c.conn.Close()
	}
}

// directBody is an answer's body; the connection goes back to the pool
// once the body has been read to its end, and is closed if it is not.
type directBody struct {
	body io.ReadCloser
	c    *directConn
	t    *directTransport
	stop func() bool
	keep bool
	done bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *directBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

// finish ends the exchange: the connection is reused only when the body
// was read whole, the application keeps it open, and the client did not
// go away meanwhile (its deadline would be in the past).
func (b *directBody) finish(whole bool) {
	b.done = true
	b.body.Close()
	if b.stop() && whole && b.keep && b.c.br.Buffered() == 0 {
		b.t.put(b.c)
		return
	}
	b.c.conn.Close()
}
