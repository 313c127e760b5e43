// Package dnstest runs a DNS server on 127.0.0.1 for tests, answering TXT
// questions from records the test sets, over UDP and TCP on one free port.
// Point a verifier (or the program, with DNS_RESOLVER) at Server.Addr.
//
// Names follow DNS: a name holding records, or with a descendant holding
// some, exists (a TXT question for it without TXT records gets an empty
// answer); any other name gets NXDOMAIN.
package dnstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server is a running test DNS server.
type Server struct {
	// Addr is the server's address, 127.0.0.1:PORT, for UDP and TCP.
	Addr string

	mu      sync.Mutex
	txt     map[string][]string // by lowercase name with the final dot
	failing map[string]int      // names answered with this rcode
	queries int
}

// NewServer starts a server that stops when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{txt: map[string][]string{}, failing: map[string]int{}}
	pc, ln, err := listen()
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	var started sync.WaitGroup
	servers := []*dns.Server{
		{PacketConn: pc, Handler: h, NotifyStartedFunc: started.Done},
		{Listener: ln, Handler: h, NotifyStartedFunc: started.Done},
	}
	started.Add(len(servers))
	for _, srv := range servers {
		go srv.ActivateAndServe()
	}
	started.Wait()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			srv.ShutdownContext(ctx)
		}
	})
	return s
}

// listen opens UDP and TCP on one free loopback port; a port free for UDP
// may be taken for TCP, so it tries a few.
func listen() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP: %v", lastErr)
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

// SetTXT makes name hold exactly these TXT values; with none, the name
// exists without TXT records.
func (s *Server) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[fqdn(name)] = append([]string{}, values...)
	delete(s.failing, fqdn(name))
}

// ClearTXT removes name and its records: it no longer exists, unless a
// name under it does.
func (s *Server) ClearTXT(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.txt, fqdn(name))
	delete(s.failing, fqdn(name))
}

// Fail makes the server answer questions about name with rcode, such as
// dns.RcodeServerFailure or dns.RcodeRefused.
func (s *Server) Fail(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing[fqdn(name)] = rcode
}

// Queries counts the questions answered so far.
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)

	s.mu.Lock()
	s.queries++
	rcode, failing := s.failing[name]
	values, exists := s.txt[name]
	if !exists {
		for n := range s.txt {
			if strings.HasSuffix(n, "."+name) {
				exists = true
				break
			}
		}
	}
	s.mu.Unlock()

	switch {
	case failing:
		m.Rcode = rcode
	case !exists:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeTXT:
		for _, v := range values {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: split(v),
			})
		}
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// split turns a value into TXT character-strings: at most 255 bytes each,
// in presentation form (quotes and backslashes escaped), as the library
// packs them.
func split(v string) []string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	var out []string
	for len(v) > 255 {
		out = append(out, r.Replace(v[:255]))
		v = v[255:]
	}
	return append(out, r.Replace(v))
}
