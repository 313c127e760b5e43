package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logBuffer gathers the server's log lines and writes them in batches:
// at most every flushEvery, or sooner when a batch fills. One write per
// request line cost a system call per request, a tenth of the gateway's
// time per proxied request. A crash loses at most flushEvery of lines;
// Close writes what is left.
type logBuffer struct {
	mu      sync.Mutex
	w       *bufio.Writer
	every   time.Duration
	pending bool
	closed  bool
}

func newLogBuffer(w io.Writer, every time.Duration) *logBuffer {
	return &logBuffer{w: bufio.NewWriterSize(w, 64<<10), every: every}
}

// Write takes one log line (slog writes a record in one call, so a line
// is never split between batches unless it is larger than the buffer).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		n, err := b.w.Write(p)
		if err == nil {
			err = b.w.Flush()
		}
		return n, err
	}
	n, err := b.w.Write(p)
	if !b.pending && b.w.Buffered() > 0 {
		b.pending = true
		time.AfterFunc(b.every, b.flush)
	}
	return n, err
}

func (b *logBuffer) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = false
	b.w.Flush()
}

// Close writes what is buffered; later lines are written at once.
func (b *logBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.w.Flush()
}
