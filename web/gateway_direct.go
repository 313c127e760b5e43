package web

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/nself/nself/internal/tenancy"
)

// serveDirect proxies a plain read (directRequest) to the application as
// httputil.ReverseProxy does with the gateway's rewrite, without copying
// the request: the head the application receives is written straight from
// the client's, and the answer goes back from the connection's buffer.
// ReverseProxy's clone of the request and its headers, and the request
// writer's sorted copy of them, were a fifth of the gateway's CPU.
func (g *gateway) serveDirect(w http.ResponseWriter, r *http.Request, caller tenancy.UpstreamCaller, token string) {
	h := w.Header()
	resp, err := g.direct.do(r, g.cfg.URL.Host,
		func(bw *bufio.Writer) { g.writeHead(bw, r, caller, token) },
		func(code int, header http.Header) {
			// An interim answer carries the application's headers alone;
			// the final one carries ours again.
			ours := h.Clone()
			clear(h)
			copyHeader(h, header)
			w.WriteHeader(code)
			clear(h)
			copyHeader(h, ours)
		})
	if err != nil {
		g.fail(w, r, err)
		return
	}
	defer resp.Body.Close()
	removeHopByHop(resp.Header)
	copyHeader(h, resp.Header)
	announced := len(resp.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h.Add("Trailer", strings.Join(names, ", "))
	}
	w.WriteHeader(resp.StatusCode)

	if err := copyBody(w, resp, streamed(resp)); err != nil {
		// The answer is cut off: all that is left is to break the
		// connection, so that the client does not take it for whole.
		noteError(r.Context(), err)
		panic(http.ErrAbortHandler)
	}
	if len(resp.Trailer) > 0 {
		// Chunked, so that the trailers can follow.
		http.NewResponseController(w).Flush()
	}
	if len(resp.Trailer) == announced {
		copyHeader(h, resp.Trailer)
		return
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
}

// streamed reports whether each piece of the answer goes to the client as
// it comes (events, and bodies of unknown length), as ReverseProxy does.
func streamed(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	// The media type without its parameters, as mime.ParseMediaType would
	// read it, without its allocations on every answer.
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// copyBody copies the answer's body to the client through a pooled buffer,
// flushing after each piece when flush is set.
func copyBody(w http.ResponseWriter, resp *http.Response, flush bool) error {
	buf := proxyBuffers.Get()
	defer proxyBuffers.Put(buf)
	rc := http.NewResponseController(w)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// writeHead writes the request head the application receives: the
// client's request line and headers as the gateway's rewrite leaves them
// (hop-by-hop and forwarding headers, the credential, the portal's cookies
// and every context header the client sent dropped), then the forwarding
// headers and the caller's context.
func (g *gateway) writeHead(bw *bufio.Writer, r *http.Request, c tenancy.UpstreamCaller, token string) {
	u := url.URL{RawQuery: cleanQuery(r.URL.RawQuery), ForceQuery: r.URL.ForceQuery}
	u.Path, u.RawPath = g.targetPath(r.URL)
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(u.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(g.cfg.URL.Host)
	bw.WriteString("\r\n")
	connection := r.Header["Connection"]
	for k, vv := range r.Header {
		if !forwarded(k, connection) {
			continue
		}
		switch k {
		case "User-Agent":
			// The first only, and none when empty, as net/http writes it.
			vv = vv[:1]
			if vv[0] == "" {
				continue
			}
		case "Cookie":
			vv = applicationCookies(vv)
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		writeField(bw, "Te", "trailers")
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		writeField(bw, "X-Forwarded-For", ip)
	}
	writeField(bw, "X-Forwarded-Host", r.Host)
	if r.TLS != nil {
		writeField(bw, "X-Forwarded-Proto", "https")
	} else {
		writeField(bw, "X-Forwarded-Proto", "http")
	}
	if token != "" {
		writeField(bw, "Authorization", "Bearer "+token)
	} else {
		for _, kv := range c.UpstreamHeaders() {
			writeField(bw, kv[0], kv[1])
		}
	}
	bw.WriteString("\r\n")
}

// writeField writes one header line. The server has refused requests
// whose values hold a line break, and the gateway's own values hold none.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// hopHeaders describe a connection rather than a request or an answer
// (RFC 9110, 7.6.1, and the older ones ReverseProxy drops too).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forwarded reports whether the client's header k goes on to the
// application: not a hop-by-hop header (nor one its Connection header
// names; connection holds that header's values), not a forwarding header (the gateway sets its
// own), not the credential, not a context header, and not one net/http
// writes from the request itself.
func forwarded(k string, connection []string) bool {
	switch k {
	case "Authorization", "Host", "Content-Length":
		return false
	}
	return !slices.Contains(hopHeaders, k) && !httpguts.HeaderValuesContainsToken(connection, k) &&
		!tenancy.IsUpstreamContextHeader(k) && !tenancy.IsForwardingHeader(k)
}

// removeHopByHop removes the headers that describe a connection rather than
// the answer, as ReverseProxy does.
func removeHopByHop(h http.Header) {
	for _, line := range h["Connection"] {
		for name := range strings.SplitSeq(line, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// copyHeader adds src's values to dst; src's keys are canonical, and src
// is not used after.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if have, ok := dst[k]; ok {
			dst[k] = append(have[:len(have):len(have)], vv...)
		} else {
			dst[k] = vv
		}
	}
}

// cleanQuery drops what ReverseProxy drops from a query: a query that does
// not parse (a semicolon, a bad escape) is sent re-encoded with its
// parsable parameters only.
func cleanQuery(q string) string {
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			v, _ := url.ParseQuery(q)
			return v.Encode()
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				v, _ := url.ParseQuery(q)
				return v.Encode()
			}
			i += 3
		default:
			i++
		}
	}
	return q
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
