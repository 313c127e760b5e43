package web

import "context"

// requestLog collects what handlers learn that the request log line
// should carry.
type requestLog struct {
	tenant string
	err    error
}

type requestLogKey struct{}

func withRequestLog(ctx context.Context, l *requestLog) context.Context {
	return context.WithValue(ctx, requestLogKey{}, l)
}

func noteTenant(ctx context.Context, slug string) {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		l.tenant = slug
	}
}

func noteError(ctx context.Context, err error) {
	if l, ok := ctx.Value(requestLogKey{}).(*requestLog); ok {
		l.err = err
	}
}
