package web

import (
	"math"
	"net/http"
	"net/url"
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

// pageParam reads the page number (from 1) of a list shown size rows a
// page; 1 when the query names none.
func pageParam(r *http.Request, size int) (int, error) {
	v := r.URL.Query().Get("page")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > math.MaxInt32/size {
		return 0, tenancy.FieldErrorf(tenancy.EINVALID, "page", "page must be a number, 1 or more")
	}
	return n, nil
}

// pager is a list's number of pages, and the addresses of the pages before
// and after page ("" when there is none): path with the list's non-empty
// params and the page.
func pager(path string, params map[string]string, page, total, size int) (pages int, prev, next string) {
	pages = max(1, (total+size-1)/size)
	pageURL := func(n int) string {
		v := url.Values{}
		for k, val := range params {
			if val != "" {
				v.Set(k, val)
			}
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		if len(v) == 0 {
			return path
		}
		return path + "?" + v.Encode()
	}
	if page > 1 {
		prev = pageURL(min(page-1, pages))
	}
	if page < pages {
		next = pageURL(page + 1)
	}
	return pages, prev, next
}
