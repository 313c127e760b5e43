package web

import (
	"net/http"
	"strconv"

	"github.com/nself/nself/internal/tenancy"
)

// Page sizes of lists.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// paging reads limit and offset from the query.
func paging(r *http.Request) (limit, offset int, err error) {
	limit, offset = defaultPageSize, 0
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPageSize {
			return 0, 0, tenancy.FieldErrorf(tenancy.EINVALID, "limit", "limit must be a number from 1 to %d", maxPageSize)
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, tenancy.FieldErrorf(tenancy.EINVALID, "offset", "offset must be a number, 0 or more")
		}
	}
	return limit, offset, nil
}

// partialSwap reports whether a list page's request is htmx asking for the
// table alone (a filter or a page changed), rather than for the whole page
// (a first visit, or htmx restoring history). The answer varies with it.
func partialSwap(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "HX-Request")
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-History-Restore-Request") != "true"
}
