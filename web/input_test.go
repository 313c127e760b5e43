package web_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

// A NUL character or bytes that are not UTF-8, in a filter, a form field,
// the path or a JSON body, answer 400 with a message, on the portal, the
// console and the API alike, and store nothing.
func TestNULAndInvalidUTF8AnswerBadRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "owner@acme.example", tenancy.RoleOwner)
	owner := e.client("acme." + baseDomain)
	owner.signIn("owner@acme.example", passwordOf("owner@acme.example"))
	owner.get("/members")
	admin := signedInAdmin(t, e)
	admin.get("/tenants")
	visitor, console := e.client("acme."+baseDomain), e.client(adminHost)
	visitor.get("/")
	console.get("/")
	_, key, err := e.server.APIKeys.CreateAPIKey(e.ctx, acme.ID, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	before := e.stored(acme.ID)

	form := func(c *client, path string, v url.Values) *http.Request {
		v.Set("csrf_token", c.csrf)
		req, _ := http.NewRequest(http.MethodPost, c.url(path), strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	get := func(c *client, path string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, c.url(path), nil)
		return req
	}
	api := func(method, path, body string) *http.Request {
		req, _ := http.NewRequest(method, owner.url(path), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return req
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("csrf_token", owner.csrf)
	mw.WriteField("type", "main\x00")
	fw, _ := mw.CreateFormFile("file", "logo.svg")
	fw.Write([]byte(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`))
	mw.Close()
	upload, _ := http.NewRequest(http.MethodPost, owner.url("/settings/logos"), &mp)
	upload.Header.Set("Content-Type", mw.FormDataContentType())
	htmx := get(owner, "/audit?action=%00")
	htmx.Header.Set("HX-Request", "true")

	cases := []struct {
		name  string
		c     *client
		req   *http.Request
		field string // named in the message
		json  bool
	}{
		{"portal audit filter", owner, get(owner, "/audit?actor=ann%00"), `"actor"`, false},
		{"portal audit filter, invalid UTF-8", owner, get(owner, "/audit?actor=%ff%fe"), `"actor" is not valid UTF-8`, false},
		{"portal audit filter over htmx", owner, htmx, `"action"`, false},
		{"portal member search", owner, get(owner, "/members?q=%00"), `"q"`, false},
		{"portal path", owner, get(owner, "/domains/a%00.example/row"), "The address", false},
		{"invitation form", owner, form(owner, "/members/invite", url.Values{"email": {"x@acme.example"}, "name": {"Eve\x00"}, "role": {"member"}}), `"name"`, false},
		{"domain form", owner, form(owner, "/domains", url.Values{"domain": {"shop\x00.example.com"}}), `"domain"`, false},
		{"setting form", owner, form(owner, "/settings/branding/settings", url.Values{"key": {"custom.motto"}, "value": {"\xff"}}), `"value"`, false},
		{"sign-in form", visitor, form(visitor, "/signin", url.Values{"email": {"owner@acme.example\x00"}, "password": {"x"}}), `"email"`, false},
		{"logo upload field", owner, upload, `"type"`, false},
		{"console audit filter", admin, get(admin, "/audit?actor=%00"), `"actor"`, false},
		{"console tenant search", admin, get(admin, "/tenants?q=%00"), `"q"`, false},
		{"console sign-in", console, form(console, "/signin", url.Values{"email": {"root\x00@example.com"}, "password": {"x"}}), `"email"`, false},
		{"API filter", owner, api(http.MethodGet, "/v1/users?q=%00", ""), `"q"`, true},
		{"API JSON body", owner, api(http.MethodPost, "/v1/users", `{"email": "a@b.example", "name": "x\u0000"}`), `"name"`, true},
	}
	for _, c := range cases {
		resp, body := c.c.do(c.req)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400\n%.300s", c.name, resp.StatusCode, body)
			continue
		}
		msg := body
		if c.json {
			var v struct{ Error string }
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Errorf("%s: not JSON: %v\n%s", c.name, err, body)
			}
			msg = v.Error
		} else {
			if c.req.Header.Get("HX-Request") == "true" && resp.Header.Get("HX-Retarget") != "#errors" {
				t.Errorf("%s: an htmx error partial should say where it goes", c.name)
			}
			msg = textOf(t, body, "error-message")
		}
		if !strings.Contains(msg, c.field) || !(strings.Contains(msg, "NUL") || strings.Contains(msg, "UTF-8")) {
			t.Errorf("%s: message %q, want it to name %s and say what is wrong", c.name, msg, c.field)
		}
	}
	if after := e.stored(acme.ID); after != before {
		t.Errorf("refused requests stored something: %s, then %s", before, after)
	}
	// Ordinary text, other languages included, passes.
	if resp, body := owner.get("/audit?actor=Zoë%20%E6%97%A5"); resp.StatusCode != http.StatusOK {
		t.Errorf("audit filter with Unicode: %d\n%.300s", resp.StatusCode, body)
	}
}

// stored sums up what a tenant holds that the requests above could write.
func (e *testEnv) stored(tenantID string) string {
	e.t.Helper()
	var out []int
	for _, sql := range []string{
		`SELECT count(*) FROM tenants.tenant_invitations WHERE tenant_id = $1`,
		`SELECT count(*) FROM tenants.tenant_domains WHERE tenant_id = $1`,
		`SELECT count(*) FROM tenants.tenant_settings WHERE tenant_id = $1`,
		`SELECT count(*) FROM tenants.tenant_logos WHERE tenant_id = $1`,
		`SELECT count(*) FROM audit.events WHERE tenant_id = $1`,
	} {
		var n int
		tx, err := e.db.Admin.Begin(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			e.t.Fatal(err)
		}
		if err := tx.QueryRow(e.ctx, sql, tenantID).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		tx.Rollback(e.ctx)
		out = append(out, n)
	}
	b, _ := json.Marshal(out)
	return string(b)
}
