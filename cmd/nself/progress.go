package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws a long command's progress on standard error when it is a
// terminal, at most ten times a second; elsewhere it stays silent, so logs
// and pipes get the result lines only.
type progress struct {
	w      io.Writer
	mu     sync.Mutex
	last   time.Time
	render func() string
	tty    bool
}

func (a *app) progressBar() *progress {
	f, ok := a.Err.(*os.File)
	return &progress{w: a.Err, tty: ok && term.IsTerminal(int(f.Fd()))}
}

// show sets what the line shows; render is called only when it is drawn.
func (b *progress) show(render func() string) {
	if !b.tty {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.render = render
	if time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	b.draw()
}

func (b *progress) draw() { fmt.Fprint(b.w, "\r"+b.render()) }

// done draws the last state and ends the line, if anything was shown.
func (b *progress) done() {
	if !b.tty {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.render == nil {
		return
	}
	b.draw()
	fmt.Fprintln(b.w)
}

// bar is a bar of done out of total, with the percentage.
func bar(done, total int64) string {
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	const width = 30
	n := int(frac * width)
	return fmt.Sprintf("[%s%s] %3.0f%%", strings.Repeat("█", n), strings.Repeat("░", width-n), frac*100)
}
