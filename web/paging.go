package web

import (
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// Every list pages the same way, through a listPage: the console's
// tenants, the audit logs and the members page read it from ?page=, the
// API from ?limit=&offset=; each list fetches it (or cuts it from a list
// held whole) and shows a views.Pager made by pager.

// Page sizes of the API's lists.
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// listPage is one page of a list: Limit rows from Offset.
type listPage struct {
	Limit, Offset int
}

// Number is the page's number, from 1.
func (p listPage) Number() int { return p.Offset/p.Limit + 1 }

// pageOf reads the page (from 1, ?page=) a request asks of a list shown
// size rows a page; the first when the query names none.
func pageOf(r *http.Request, size int) (listPage, error) {
	v := r.URL.Query().Get("page")
	if v == "" {
		return listPage{Limit: size}, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > math.MaxInt32/size {
		return listPage{Limit: size}, tenancy.FieldErrorf(tenancy.EINVALID, "page", "page must be a number, 1 or more")
	}
	return listPage{Limit: size, Offset: (n - 1) * size}, nil
}

// apiPageOf reads the rows an API request asks of a list: ?limit= (1 to
// maxPageSize, defaultPageSize when not given) from ?offset=.
func apiPageOf(r *http.Request) (listPage, error) {
	p := listPage{Limit: defaultPageSize}
	q := r.URL.Query()
	var err error
	if v := q.Get("limit"); v != "" {
		if p.Limit, err = strconv.Atoi(v); err != nil || p.Limit < 1 || p.Limit > maxPageSize {
			return listPage{}, tenancy.FieldErrorf(tenancy.EINVALID, "limit", "limit must be a number from 1 to %d", maxPageSize)
		}
	}
	if v := q.Get("offset"); v != "" {
		if p.Offset, err = strconv.Atoi(v); err != nil || p.Offset < 0 {
			return listPage{}, tenancy.FieldErrorf(tenancy.EINVALID, "offset", "offset must be a number, 0 or more")
		}
	}
	return p, nil
}

// fetchPage lists page p with list, which returns the rows and the total
// of the whole list. A page past the end has no rows to carry the total:
// it is asked for again, with one row from the start.
func fetchPage[T any](p listPage, list func(limit, offset int) ([]T, int, error)) ([]T, int, error) {
	rows, total, err := list(p.Limit, p.Offset)
	if err != nil || len(rows) > 0 || p.Offset == 0 {
		return rows, total, err
	}
	_, total, err = list(1, 0)
	return nil, total, err
}

// cutPage cuts page p from a list held whole; a page past the last is the
// last.
func cutPage[T any](p listPage, all []T) ([]T, listPage) {
	last := max(0, (len(all)-1)/p.Limit)
	p.Offset = min(p.Offset/p.Limit, last) * p.Limit
	return all[p.Offset:min(p.Offset+p.Limit, len(all))], p
}

// pager is page p's place in a list of total rows: how many pages there
// are, and the addresses of the pages before and after it, path with the
// list's non-empty params and the page.
func pager(path string, params map[string]string, p listPage, total int) views.Pager {
	page := p.Number()
	v := views.Pager{Page: page, Pages: max(1, (total+p.Limit-1)/p.Limit)}
	pageURL := func(n int) string {
		q := url.Values{}
		for k, val := range params {
			if val != "" {
				q.Set(k, val)
			}
		}
		if n > 1 {
			q.Set("page", strconv.Itoa(n))
		}
		if len(q) == 0 {
			return path
		}
		return path + "?" + q.Encode()
	}
	if page > 1 {
		v.PrevURL = pageURL(min(page-1, v.Pages))
	}
	if page < v.Pages {
		v.NextURL = pageURL(page + 1)
	}
	return v
}

// partialSwap reports whether a list page's request is htmx asking for the
// table alone (a filter or a page changed), rather than for the whole page
// (a first visit, or htmx restoring history). The answer varies with it.
func partialSwap(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "HX-Request")
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-History-Restore-Request") != "true"
}
