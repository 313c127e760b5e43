package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records what reaches the file, and in how many writes.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.buf.Write(p)
}

func (w *countingWriter) state() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String(), w.writes
}

// A burst of log lines reaches the file in one write within the flush
// interval, whole and in order; Close writes what is left at once, and
// lines after it are written as they come.
func TestLogBufferBatches(t *testing.T) {
	w := &countingWriter{}
	// An interval far longer than 200 writes to memory take, even on a
	// loaded machine.
	b := newLogBuffer(w, 500*time.Millisecond)
	var want strings.Builder
	for i := range 200 {
		line := fmt.Sprintf("level=INFO msg=request n=%d\n", i)
		want.WriteString(line)
		b.Write([]byte(line))
	}
	if got, _ := w.state(); got != "" {
		t.Fatalf("lines written before the flush interval: %d bytes", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, writes := w.state()
		if got == want.String() {
			if writes != 1 {
				t.Errorf("200 lines took %d writes, want 1", writes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the file has %d of %d bytes", len(got), want.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}

	b.Write([]byte("last before close\n"))
	b.Close()
	b.Write([]byte("after close\n"))
	if got, _ := w.state(); !strings.HasSuffix(got, "last before close\nafter close\n") {
		t.Errorf("Close left lines behind: %q", got[len(got)-40:])
	}
}

// slowWriter is a file that takes its time.
type slowWriter struct {
	countingWriter
	delay time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.countingWriter.Write(p)
}

// A line is logged without waiting for the file: a slow disk holds up the
// writer only, and everything still arrives, in order.
func TestLogBufferDoesNotWaitForTheFile(t *testing.T) {
	w := &slowWriter{delay: 300 * time.Millisecond}
	b := newLogBuffer(w, 10*time.Millisecond)
	line := strings.Repeat("x", 1000) + "\n"
	var want strings.Builder
	start := time.Now()
	// Two batches: the second is logged while the first is being written.
	for i := range 2 * logBatchSize / len(line) {
		l := fmt.Sprintf("%06d%s", i, line)
		want.WriteString(l)
		b.Write([]byte(l))
	}
	time.Sleep(20 * time.Millisecond)
	b.Write([]byte("after the first batch\n"))
	want.WriteString("after the first batch\n")
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("logging took %s with a file that takes 300ms a write", d)
	}
	b.Close()
	if got, _ := w.state(); got != want.String() {
		t.Errorf("the file has %d bytes, want %d in order", len(got), want.Len())
	}
}
