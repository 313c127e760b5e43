// Package tenancy holds the domain of nself: tenants, their users and
// members, plans, and the rules that apply to them. It depends on the
// standard library only, and on the Go project's HTML5 parser
// (golang.org/x/net/html), without which the rule on where an email may
// place a secret link could not read the HTML as a mail reader does;
// storage, mail, billing and the web live elsewhere and implement or call
// the interfaces declared here.
package tenancy

import (
	"errors"
	"fmt"
)

// Error codes. They say what kind of failure happened, so each edge (the
// CLI, the web server) can translate it once: an exit code, an HTTP status.
const (
	ECONFLICT  = "conflict"  // the action conflicts with existing state (a taken slug)
	EINTERNAL  = "internal"  // a failure the caller cannot fix
	EINVALID   = "invalid"   // the input is wrong
	ENOTFOUND  = "not_found" // the thing does not exist (or is not visible)
	EFORBIDDEN = "forbidden" // the actor may not do this
	EQUOTA     = "quota"     // a plan limit would be exceeded
	// EUNAVAILABLE: a service the action needs (the database, file
	// storage, Stripe, the mail server) could not be reached or did not
	// answer in time. Nothing is wrong with the request: it may succeed
	// when tried again later. Error.Service names the service.
	EUNAVAILABLE = "unavailable"
)

// Error is a failure the domain knows about. Message is safe to show to the
// person who caused it; Field, when set, names the input that was wrong so a
// form can show the message next to it.
type Error struct {
	Code    string
	Field   string
	Message string
	// Service names the service that failed, for EUNAVAILABLE.
	Service string
	// Err is the cause, for logs and the CLI; it is never shown on a page.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + " (" + e.Err.Error() + ")"
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an *Error about one input field.
func FieldErrorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		// Before e, which escapes: no allocation for the nil error every
		// successful request checks.
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic text for internal errors, whose details are for logs only.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}
