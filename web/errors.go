package web

import (
	"encoding/json"
	"net/http"
	"strings"

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
	}
	return http.StatusInternalServerError
}

// Error is the one place errors become responses: JSON for the API, an
// error partial for htmx requests, a full page otherwise. Internal errors
// are logged and shown as a generic message.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := tenancy.ErrorCode(err)
	status := statusOf(code)
	msg := tenancy.ErrorMessage(err)
	if code == tenancy.EINTERNAL {
		noteError(r.Context(), err)
		msg = "Something went wrong on our side. Please try again."
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
	}
	return "Something went wrong"
}

// respondError writes an error in the form the request expects.
func (s *Server) respondError(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/v1":
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

// render writes a templ component with a status.
func render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	c.Render(r.Context(), w)
}
