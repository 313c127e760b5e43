package web

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// checkInput refuses, with 400 and a message naming the field, a request
// whose path, query string, form fields or JSON strings hold a NUL
// character or bytes that are not UTF-8. PostgreSQL stores neither in
// text, so such a value would otherwise reach a query and fail there as an
// internal error (SQLSTATE 22021); no handler has a use for either.
//
// A body is read whole (it is bounded by limitBody already) and handed on
// unchanged, so handlers and signature checks see the very bytes sent. A
// body that cannot be read or parsed is handed on as it is, for the handler
// to refuse in its own words.
func (s *Server) checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The application's requests stream to it as they are.
		if s.gatewayPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if msg := badInput(r); msg != "" {
			s.respondError(w, r, http.StatusBadRequest, titleOf(http.StatusBadRequest), msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// badInput says what is wrong with the request's text, or "".
func badInput(r *http.Request) string {
	if why := badText(r.URL.Path); why != "" {
		return "The address " + why + "."
	}
	if msg := badPairs(r.URL.RawQuery); msg != "" {
		return msg
	}
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	var check func([]byte) string
	switch {
	case mediaType == "application/x-www-form-urlencoded":
		check = func(b []byte) string { return badPairs(string(b)) }
	case mediaType == "multipart/form-data" && params["boundary"] != "":
		check = func(b []byte) string { return badParts(b, params["boundary"]) }
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		check = badJSON
	default:
		return ""
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		// Too large, or cut off: the handler meets the same error.
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		return ""
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return check(body)
}

// badText says what makes s unfit to be stored as text, or "".
func badText(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL character, which is not allowed"
	case !utf8.ValidString(s):
		return "is not valid UTF-8 text"
	}
	return ""
}

// badField is the message for a field whose name or value fails badText.
func badField(name, value string) string {
	if why := badText(name); why != "" {
		return "A field name " + why + "."
	}
	if why := badText(value); why != "" {
		return "The field " + quoteField(name) + " " + why + "."
	}
	return ""
}

func quoteField(name string) string {
	if len(name) > 40 {
		name = name[:40] + "…"
	}
	return `"` + strings.ToValidUTF8(name, "") + `"`
}

// badPairs checks URL-encoded pairs, as in a query string or a form body.
// A pair that does not decode is dropped by the form parser too, so it is
// not judged here.
func badPairs(raw string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		if msg := badField(key, value); msg != "" {
			return msg
		}
	}
	return ""
}

// maxFieldBytes bounds how much of one multipart field is read to check
// it; a file's bytes are not read at all.
const maxFieldBytes = 1 << 20

// badParts checks the fields of a multipart form, other than files.
func badParts(body []byte, boundary string) string {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if err != nil {
			return "" // the end, or a form the handler will refuse
		}
		name := p.FormName()
		if p.FileName() != "" {
			if msg := badField(name, ""); msg != "" {
				return msg
			}
			continue
		}
		value, err := io.ReadAll(io.LimitReader(p, maxFieldBytes))
		if err != nil {
			return ""
		}
		if msg := badField(name, string(value)); msg != "" {
			return msg
		}
	}
}

// badJSON checks every key and string of a JSON body. Decoding replaces
// bytes that are not UTF-8, so only NUL (written \u0000) is left to find.
func badJSON(body []byte) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return ""
	}
	return walkJSON("", v)
}

func walkJSON(field string, v any) string {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			if field == "" {
				return "The request body contains a NUL character, which is not allowed."
			}
			return "The field " + quoteField(field) + " contains a NUL character, which is not allowed."
		}
	case []any:
		for _, e := range x {
			if msg := walkJSON(field, e); msg != "" {
				return msg
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return "A field name contains a NUL character, which is not allowed."
			}
			if msg := walkJSON(k, e); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
