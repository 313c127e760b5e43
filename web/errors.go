package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// statusOf maps a domain error code to an HTTP status.
func statusOf(code string) int {
	switch code {
	case tenancy.ENOTFOUND:
		return http.StatusNotFound
	case tenancy.EINVALID:
		return http.StatusUnprocessableEntity
	case tenancy.ECONFLICT:
		return http.StatusConflict
	case tenancy.EFORBIDDEN:
		return http.StatusForbidden
	case tenancy.EQUOTA:
		return http.StatusTooManyRequests
	case tenancy.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// unavailableRetry is the Retry-After of a 503 for a service that is
// unavailable: long enough for a restart or a network blip to pass, short
// enough that a person retrying by hand is not turned away for long.
const unavailableRetry = 30 * time.Second

// Error is the one place errors become responses: JSON for the API, an
// error partial for htmx requests, a full page otherwise. Internal errors
// are logged and shown as a generic message.
//
// A service that could not be reached or did not answer in time
// (EUNAVAILABLE, or a database failure the database recognises as one)
// answers 503 with Retry-After and a message naming the service; the cause
// is logged.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := tenancy.ErrorCode(err)
	if code == tenancy.EINTERNAL && s.DB != nil {
		if u := s.DB.Outage(err); u != nil {
			err, code = u, tenancy.EUNAVAILABLE
		}
	}
	status := statusOf(code)
	msg := tenancy.ErrorMessage(err)
	switch code {
	case tenancy.EINTERNAL:
		noteError(r.Context(), err)
		msg = "Something went wrong on our side. Please try again."
	case tenancy.EUNAVAILABLE:
		noteError(r.Context(), err)
		w.Header().Set("Retry-After", strconv.Itoa(int(unavailableRetry.Seconds())))
	}
	s.respondError(w, r, status, titleOf(status), msg)
}

func titleOf(status int) string {
	switch status {
	case http.StatusNotFound:
		return "Not found"
	case http.StatusForbidden:
		return "Not allowed"
	case http.StatusTooManyRequests:
		return "Too many requests"
	case http.StatusUnprocessableEntity, http.StatusBadRequest:
		return "Please check your input"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusServiceUnavailable:
		return "Temporarily unavailable"
	}
	return "Something went wrong"
}

// respondError writes an error in the form the request expects.
func (s *Server) respondError(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/v1" || s.gatewayPath(r.URL.Path):
		writeJSON(w, status, map[string]any{"error": msg})
	case r.Header.Get("HX-Request") == "true":
		// htmx swaps only 2xx responses by default; say where to put it.
		w.Header().Set("HX-Retarget", "#errors")
		w.Header().Set("HX-Reswap", "innerHTML")
		render(w, r, status, views.ErrorPartial(msg))
	default:
		render(w, r, status, views.ErrorPage(s.page(r, title), status, title, msg))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// pages are the buffers pages are rendered into.
var pages = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// render writes a templ component with a status. The page is rendered
// whole first and sent with its length in one write: rendered straight to
// the connection, templ flushes at the end, which sends the page chunked
// in two writes (the page, then the closing chunk), and a failed render
// would leave half a page under a 200.
func render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	buf := pages.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			pages.Put(buf)
		}
	}()
	h := w.Header()
	if err := c.Render(r.Context(), buf); err != nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "The page could not be shown.\n")
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
