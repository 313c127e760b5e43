// Package faulttest makes real faults for tests, without touching the
// shared services other tests use: a listener that accepts connections and
// never answers (a hung Stripe or SMTP server), a TCP proxy in front of a
// real service that can be frozen or cut (a frozen or restarting
// PostgreSQL), and a private MinIO process that can be killed.
package faulttest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Blackhole is a server that accepts connections and never answers.
type Blackhole struct {
	ln       net.Listener
	accepted atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
}

// NewBlackhole listens on a free local port until the test ends.
func NewBlackhole(t testing.TB) *Blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Blackhole{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			// Read and drop what the client sends, so that it is never
			// stuck writing: it waits for an answer, as from a hung server.
			go io.Copy(io.Discard, c)
		}
	}()
	t.Cleanup(b.close)
	return b
}

// Addr is host:port.
func (b *Blackhole) Addr() string { return b.ln.Addr().String() }

// URL is http://host:port.
func (b *Blackhole) URL() string { return "http://" + b.Addr() }

// Accepted counts the connections accepted so far.
func (b *Blackhole) Accepted() int { return int(b.accepted.Load()) }

func (b *Blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
}

// Proxy forwards TCP connections to a target. It can freeze (accept and
// hold connections, forward nothing: a database that stopped answering)
// and cut (close every connection and drop new ones at once: a database
// restarting), and it counts the connections clients opened.
type Proxy struct {
	ln     net.Listener
	target string
	opened atomic.Int64

	mu      sync.Mutex
	cond    *sync.Cond
	frozen  bool
	cut     bool
	conns   map[net.Conn]bool
	stopped bool
}

// NewProxy forwards a free local port to target (host:port) until the
// test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.cond = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(p.stop)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Opened counts the connections clients opened to the proxy.
func (p *Proxy) Opened() int { return int(p.opened.Load()) }

// Freeze stops forwarding: connections stay open, bytes are held, new
// connections are accepted and wait.
func (p *Proxy) Freeze() { p.set(func() { p.frozen = true }) }

// Cut closes every connection, and closes new ones as soon as they are
// accepted, until Restore.
func (p *Proxy) Cut() {
	p.set(func() { p.cut = true })
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Restore forwards again, ending a freeze or a cut.
func (p *Proxy) Restore() { p.set(func() { p.frozen, p.cut = false, false }) }

func (p *Proxy) set(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
	p.cond.Broadcast()
}

// wait blocks while the proxy is frozen; false when the connection must
// close instead (cut, or the proxy stopped).
func (p *Proxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen && !p.cut && !p.stopped {
		p.cond.Wait()
	}
	return !p.cut && !p.stopped
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.stopped {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.opened.Add(1)
		go p.handle(c)
	}
}

func (p *Proxy) handle(client net.Conn) {
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	if !p.wait() {
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
}

// pipe copies src to dst, holding what it read while the proxy is frozen.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) stop() {
	p.set(func() { p.stopped = true })
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}
