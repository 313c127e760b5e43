package postgres

import (
	"context"
	"time"
)

// Watch runs a background job that sleeps while it has nothing to do, until
// ctx ends. On every tick of every it runs each, when set, then look, which
// says whether there may be more to do. Without wake, look runs on every
// tick. With wake (a notice that there is work, as TenantCache.Woken gives),
// look runs only while its last answer was "more", watching being the first
// answer, and a wake-up makes it watch again: the first wake-up is the
// listener connecting, and looks at once, for what happened before it
// listened; the others are work their own process is doing, seen from the
// next tick.
func Watch(ctx context.Context, every time.Duration, wake <-chan struct{}, watching bool, each func(), look func() (more bool)) {
	t := time.NewTicker(every)
	defer t.Stop()
	heard := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			watching = true
			if heard {
				continue
			}
			heard = true
		case <-t.C:
		}
		if each != nil {
			each()
		}
		if wake != nil && !watching {
			continue
		}
		watching = look()
	}
}
