package views

// Pager is a list's place among its pages, which every paged list shows:
// the page (from 1), how many there are, and the addresses of the pages
// before and after ("" when there is none).
type Pager struct {
	Page, Pages      int
	PrevURL, NextURL string
}
