package main

import (
	"io"
	"sync"
	"time"
)

// logBuffer gathers the server's log lines and writes them in batches:
// at most every flushEvery, or sooner when a batch fills. One write per
// request line cost a system call per request, a tenth of the gateway's
// time per proxied request. A crash loses at most flushEvery of lines;
// Close writes what is left.
//
// The batches are written by a goroutine of their own, in order: a
// request logging its line only appends it to memory, and never waits
// for the file (a full batch written under the lock held every request
// up for as long as the disk took). When the writer falls behind by
// logBatches batches, requests wait for it rather than memory grow.
type logBuffer struct {
	mu      sync.Mutex
	buf     []byte
	every   time.Duration
	pending bool
	closed  bool

	w    io.Writer
	out  chan []byte // batches to write, in order
	free chan []byte // written batches' buffers, for reuse
	done chan struct{}
}

const (
	logBatchSize = 64 << 10
	logBatches   = 4
)

func newLogBuffer(w io.Writer, every time.Duration) *logBuffer {
	b := &logBuffer{w: w, every: every, buf: make([]byte, 0, logBatchSize),
		out: make(chan []byte, logBatches), free: make(chan []byte, logBatches), done: make(chan struct{})}
	go b.write()
	return b
}

func (b *logBuffer) write() {
	defer close(b.done)
	for p := range b.out {
		b.w.Write(p)
		select {
		case b.free <- p[:0]:
		default:
		}
	}
}

// Write takes one log line (slog writes a record in one call, so a line
// is never split between batches).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= logBatchSize {
		b.handOff()
	} else if !b.pending {
		b.pending = true
		time.AfterFunc(b.every, b.flush)
	}
	return len(p), nil
}

// handOff gives the batch to the writer; b.mu is held.
func (b *logBuffer) handOff() {
	if len(b.buf) == 0 {
		return
	}
	b.out <- b.buf
	select {
	case b.buf = <-b.free:
	default:
		b.buf = make([]byte, 0, logBatchSize)
	}
}

func (b *logBuffer) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = false
	if !b.closed {
		b.handOff()
	}
}

// Close writes what is buffered and waits for it; later lines are written
// at once.
func (b *logBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.handOff()
	b.closed = true
	close(b.out)
	<-b.done
	return nil
}
