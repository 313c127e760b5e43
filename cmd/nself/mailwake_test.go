package main

import (
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nself/nself/internal/pgtest"
)

// A mail queued by another process (the CLI) reaches mailpit within about
// a second from a server that would look on its own only once an hour:
// the transaction that queues it sends a notice, which wakes the sender.
func TestQueuedMailWakesTheSender(t *testing.T) {
	t.Parallel()
	requireMailpit(t)
	c := newCLI(t, pgtest.NewURLs(t), "SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"),
		"SMTP_FROM=no-reply@example.test", "PUBLIC_SCHEME=http")
	c.ok("tenant", "create", "Wake Co", "--slug", "wake")
	startServer(t, c, "--mail-every", "1h")
	// The server's first looks (at start, and when its listener connects)
	// are behind it once the first mail has gone.
	run := uuid.NewString()[:8]
	for i := range 3 {
		to := "wake-" + run + "-" + string(rune('a'+i)) + "@example.test"
		c.ok("user", "create", "wake", to, "--name", "Wendy")
		queued := time.Now()
		// About a second here; any bound far below the hour shows the
		// notice woke the sender, and a loaded machine may take longer.
		awaitMailTo(t, to, 2, 15*time.Second)
		if took := time.Since(queued); took > 10*time.Second {
			t.Errorf("mail %d reached mailpit %v after it was queued", i+1, took)
		}
	}
}
