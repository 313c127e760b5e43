// Command bareproxy is Go's own floor for the gateway benchmark: a bare
// net/http/httputil.ReverseProxy to the application, with the transport
// the gateway uses (keep-alive connections enough for every client) and
// nothing else: no tenant, no credential, no log line.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18084", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:18082/", "the application")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = "/"
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		// wrk closing its connections at the end of a run is no news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	log.Fatal(http.ListenAndServe(*addr, proxy))
}
