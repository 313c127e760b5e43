package main

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/nself/nself/internal/pgtest"
)

// On SIGTERM the server first tells load balancers it is leaving: /readyz
// answers 503 while it goes on serving for the drain period; then it
// closes its listener and exits.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), "SESSION_SECRET=serve-test-secret-0123456789abcdef")
	c.ok("tenant", "create", "Acme Corporation", "--slug", "acme")
	const drain = 2 * time.Second
	addr, cmd := startServer(t, c, "--shutdown-drain", drain.String())
	if code, _ := get(t, addr, "any", "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz before SIGTERM: %d", code)
	}
	done := make(chan error, 1)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	go func() { done <- cmd.Wait() }()

	deadline := time.Now().Add(time.Second)
	for {
		code, body := get(t, addr, "any", "/readyz")
		if code == http.StatusServiceUnavailable && body == "shutting down\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after SIGTERM: %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Requests are still served meanwhile, on new connections too.
	for time.Since(signalled) < drain-500*time.Millisecond {
		if code, _ := get(t, addr, "acme.example.test", "/"); code != http.StatusOK {
			t.Fatalf("page %s after SIGTERM: %d", time.Since(signalled), code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v", err)
		}
		if d := time.Since(signalled); d < drain {
			t.Errorf("exited %s after SIGTERM, before the drain of %s", d, drain)
		}
	case <-time.After(drain + 10*time.Second):
		t.Fatal("serve did not exit after the drain")
	}
}
