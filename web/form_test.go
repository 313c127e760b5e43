package web

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// A form struct is filled from the posted form by its tags; a secret is
// never shown again; an error is put only next to a field the form has.
func TestParseForm(t *testing.T) {
	body := url.Values{"email": {"ann@acme.test"}, "password": {"hunter2-hunter2"}, "next": {"/members"}, "other": {"x"}}
	r := httptest.NewRequest("POST", "/signin", strings.NewReader(body.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var in signInForm
	f := parseForm(r, &in)
	if in.Email != "ann@acme.test" || in.Password != "hunter2-hunter2" || in.Next != "/members" {
		t.Errorf("parsed %+v", in)
	}
	if f.Values["email"] != "ann@acme.test" || f.Values["password"] != "" || f.Values["next"] != "/members" || len(f.Values) != 3 {
		t.Errorf("the view holds %v", f.Values)
	}
	setFieldError(&f, "email", "no such account")
	if f.Err("email") != "No such account" { // as a page shows it
		t.Errorf("errors: %v", f.Errors)
	}
	defer func() {
		if recover() == nil {
			t.Error("an error for a field the form does not have was accepted")
		}
	}()
	setFieldError(&f, "emial", "typo")
}
