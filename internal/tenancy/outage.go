package tenancy

import (
	"context"
	"strings"
	"time"
)

// The services an action may find unavailable, as named to people.
const (
	ServiceDatabase = "the database"
	ServiceStorage  = "file storage"
	ServiceStripe   = "Stripe (payments)"
	ServiceMail     = "the mail server"
)

// Unavailable reports that service could not be reached or did not answer
// in time; cause is kept for logs. Each package that talks to an outside
// service returns it for transport failures and timeouts, so that every
// edge says the same thing: what is unavailable, and to try again (the web
// answers 503 with Retry-After), instead of a generic internal error.
func Unavailable(service string, cause error) *Error {
	name := service
	if name != "" {
		name = strings.ToUpper(name[:1]) + name[1:]
	}
	return &Error{
		Code:    EUNAVAILABLE,
		Service: service,
		Message: name + " is unavailable right now. Please try again in a minute.",
		Err:     cause,
	}
}

type queryTimeoutKey struct{}

// WithQueryTimeout returns ctx under which each database call (a query, a
// statement, taking a connection) must finish within d. The web server
// sets it for every request, so a frozen database answers in bounded time;
// jobs that legitimately run long (an export's COPY) do not carry it.
func WithQueryTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, queryTimeoutKey{}, d)
}

// QueryTimeoutFrom returns the timeout WithQueryTimeout set, if any.
func QueryTimeoutFrom(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(queryTimeoutKey{}).(time.Duration)
	return d, ok && d > 0
}
