package web

import (
	"net/http/httptest"
	"testing"
)

// Every list's page comes from the one pager: the page a query asks for,
// its place among the pages, and the links around it.
func TestPager(t *testing.T) {
	for _, tc := range []struct {
		query      string
		total      int
		page       int
		pages      int
		prev, next string
		err        bool
	}{
		{"", 0, 1, 1, "", "", false},
		{"", 45, 1, 3, "", "/l?page=2&q=x", false},
		{"page=2", 45, 2, 3, "/l?q=x", "/l?page=3&q=x", false},
		{"page=3", 45, 3, 3, "/l?page=2&q=x", "", false},
		// Past the end: the link back goes to the last page.
		{"page=9", 45, 9, 3, "/l?page=3&q=x", "", false},
		{"page=0", 45, 0, 0, "", "", true},
		{"page=abc", 45, 0, 0, "", "", true},
		{"page=99999999999", 45, 0, 0, "", "", true},
	} {
		r := httptest.NewRequest("GET", "/l?"+tc.query, nil)
		p, err := pageOf(r, 20)
		if (err != nil) != tc.err {
			t.Errorf("%q: error %v", tc.query, err)
			continue
		}
		if err != nil {
			if p.Number() != 1 {
				t.Errorf("%q: a page that is not one reads as page %d", tc.query, p.Number())
			}
			continue
		}
		v := pager("/l", map[string]string{"q": "x", "empty": ""}, p, tc.total)
		if v.Page != tc.page || v.Pages != tc.pages || v.PrevURL != tc.prev || v.NextURL != tc.next {
			t.Errorf("%q of %d: %+v", tc.query, tc.total, v)
		}
	}
}

func TestAPIPage(t *testing.T) {
	for query, want := range map[string]listPage{
		"":                   {Limit: defaultPageSize},
		"limit=10&offset=30": {Limit: 10, Offset: 30},
	} {
		p, err := apiPageOf(httptest.NewRequest("GET", "/v1/users?"+query, nil))
		if err != nil || p != want {
			t.Errorf("%q: %+v %v", query, p, err)
		}
	}
	for _, query := range []string{"limit=0", "limit=201", "limit=x", "offset=-1", "offset=x"} {
		if _, err := apiPageOf(httptest.NewRequest("GET", "/v1/users?"+query, nil)); err == nil {
			t.Errorf("%q: no error", query)
		}
	}
}

// A page cut from a list held whole is the last one when asked past it;
// a page fetched past the end still learns the total.
func TestCutAndFetchPage(t *testing.T) {
	all := []int{1, 2, 3, 4, 5}
	rows, p := cutPage(listPage{Limit: 2, Offset: 20}, all)
	if len(rows) != 1 || rows[0] != 5 || p.Number() != 3 {
		t.Errorf("past the end: %v, page %d", rows, p.Number())
	}
	if rows, _ := cutPage(listPage{Limit: 2}, []int{}); len(rows) != 0 {
		t.Errorf("empty list: %v", rows)
	}
	var asked []listPage
	list := func(limit, offset int) ([]int, int, error) {
		asked = append(asked, listPage{limit, offset})
		if offset >= len(all) {
			return nil, 0, nil
		}
		return all[offset:min(offset+limit, len(all))], len(all), nil
	}
	got, total, err := fetchPage(listPage{Limit: 2, Offset: 10}, list)
	if err != nil || len(got) != 0 || total != 5 || len(asked) != 2 {
		t.Errorf("past the end: %v %d %v, asked %v", got, total, err, asked)
	}
}
