package web_test

import (
	"bytes"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/tenancy"
)

func logoPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (c *client) getWith(path string, header ...string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.url(path), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.do(req)
}

func TestLogoServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme, beta := e.mustTenant("acme"), e.mustTenant("beta")
	data := logoPNG(t, 30, 10)
	l, err := e.server.Logos.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, data)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client("acme.nself.test")
	resp, body := c.get("/logo/main")
	if resp.StatusCode != 200 || body != string(data) {
		t.Fatalf("GET /logo/main: %d, %d bytes", resp.StatusCode, len(body))
	}
	etag := `"` + l.SHA256 + `"`
	for k, want := range map[string]string{
		"Content-Type": "image/png", "X-Content-Type-Options": "nosniff",
		"ETag": etag, "Cache-Control": "public, max-age=300",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	resp, body = c.getWith("/logo/main", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("If-None-Match: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := c.getWith("/logo/main", "If-None-Match", `"old"`); resp.StatusCode != 200 {
		t.Errorf("stale If-None-Match: %d", resp.StatusCode)
	}

	// No logo of that kind, no such kind, and another tenant's host: 404.
	for _, tc := range []struct{ host, path string }{
		{"acme.nself.test", "/logo/icon"},
		{"acme.nself.test", "/logo/banner"},
		{"acme.nself.test", "/logo/"},
		{"beta.nself.test", "/logo/main"},
	} {
		if resp, body := e.client(tc.host).get(tc.path); resp.StatusCode != 404 || strings.Contains(body, "\x89PNG") {
			t.Errorf("%s%s: %d", tc.host, tc.path, resp.StatusCode)
		}
	}

	// An SVG is served under a policy that runs and loads nothing.
	svg := `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8"/></svg>`
	if _, err := e.server.Logos.UploadLogo(e.ctx, beta.ID, tenancy.LogoIcon, []byte(svg)); err != nil {
		t.Fatal(err)
	}
	resp, body = e.client("beta.nself.test").get("/logo/icon")
	if resp.StatusCode != 200 || body != svg || resp.Header.Get("Content-Type") != "image/svg+xml" ||
		resp.Header.Get("Content-Security-Policy") != "default-src 'none'; style-src 'unsafe-inline'; sandbox" {
		t.Errorf("svg: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
	}
}

// The sign-in page and the portal show the main logo instead of the
// initial, and a new logo at once.
func TestLogoInLayout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	c := e.client("acme.nself.test")
	_, body := c.get("/")
	if n := len(byTestID(doc(t, body), "brand-logo")); n != 0 {
		t.Fatalf("logo shown before one is uploaded")
	}
	if !strings.Contains(body, `class="brand-mark"`) {
		t.Errorf("no initial without a logo")
	}
	l, err := e.server.Logos.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, logoPNG(t, 20, 20))
	if err != nil {
		t.Fatal(err)
	}
	_, body = c.get("/")
	imgs := byTestID(doc(t, body), "brand-logo")
	if len(imgs) != 1 || attr(imgs[0], "src") != "/logo/main?v="+l.SHA256[:16] {
		t.Fatalf("sign-in page logo: %d images", len(imgs))
	}
	if strings.Contains(body, `class="brand-mark"`) {
		t.Errorf("initial shown with a logo")
	}
	if resp, _ := c.get(attr(imgs[0], "src")); resp.StatusCode != 200 {
		t.Errorf("logo URL answers %d", resp.StatusCode)
	}
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	if _, body := owner.get("/dashboard"); len(byTestID(doc(t, body), "brand-logo")) != 1 {
		t.Errorf("dashboard lacks the logo")
	}
	l2, err := e.server.Logos.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, logoPNG(t, 21, 21))
	if err != nil {
		t.Fatal(err)
	}
	if _, body := c.get("/"); attr(byTestID(doc(t, body), "brand-logo")[0], "src") != "/logo/main?v="+l2.SHA256[:16] {
		t.Errorf("new logo not shown at once")
	}
	if _, err := e.server.Logos.RemoveLogo(e.ctx, acme.ID, tenancy.LogoMain); err != nil {
		t.Fatal(err)
	}
	if _, body := c.get("/"); len(byTestID(doc(t, body), "brand-logo")) != 0 {
		t.Errorf("removed logo still shown")
	}
	// Another tenant's pages never show it.
	e.mustTenant("beta")
	if _, body := e.client("beta.nself.test").get("/"); len(byTestID(doc(t, body), "brand-logo")) != 0 {
		t.Errorf("beta shows a logo")
	}
}

// upload posts a logo form as the page's htmx would (htmx true) or as a
// plain form; the CSRF token is the last page's.
func (c *client) upload(kind, filename string, data []byte, htmx bool) (*http.Response, string) {
	c.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("csrf_token", c.csrf)
	mw.WriteField("type", kind)
	if data != nil {
		fw, _ := mw.CreateFormFile("file", filename)
		fw.Write(data)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, c.url("/settings/logos"), &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if htmx {
		// As static/app.js sends it with every htmx request.
		req.Header.Set("HX-Request", "true")
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	return c.do(req)
}

func TestLogoSettingsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)
	resp, body := admin.get("/settings/logos")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /settings/logos: %d", resp.StatusCode)
	}
	admin.csrf = csrfOf(body)
	d := doc(t, body)
	if len(byTestID(d, "nav-logos")) != 1 || len(byTestID(d, "logo-row")) != 4 || len(byTestID(d, "logo-none")) != 4 ||
		len(byTestID(d, "logo-file")) != 1 || len(byTestID(d, "logo-progress")) != 1 {
		t.Fatalf("logos page lacks its parts:\n%s", body)
	}
	form := byTestID(d, "logo-form")[0]
	if attr(form, "hx-encoding") != "multipart/form-data" || attr(form, "enctype") != "multipart/form-data" {
		t.Errorf("form encoding: %q %q", attr(form, "hx-encoding"), attr(form, "enctype"))
	}

	// htmx upload: the panel comes back with the new logo.
	data := logoPNG(t, 80, 20)
	resp, body = admin.upload("main", "whatever.gif", data, true)
	if resp.StatusCode != 200 || textOf(t, body, "logo-done") != "Main logo uploaded." || strings.Contains(body, "<html") {
		t.Fatalf("upload: %d\n%s", resp.StatusCode, body)
	}
	imgs := byTestID(doc(t, body), "logo-image")
	if len(imgs) != 1 || !strings.HasPrefix(attr(imgs[0], "src"), "/logo/main?v=") {
		t.Fatalf("panel after upload: %d images", len(imgs))
	}
	if resp, got := admin.get(attr(imgs[0], "src")); resp.StatusCode != 200 || got != string(data) {
		t.Errorf("uploaded logo served: %d", resp.StatusCode)
	}

	// A plain form: 303 back to the page, with a flash.
	resp, _ = admin.upload("icon", "i.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"/>`), false)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/logos" {
		t.Fatalf("plain upload: %d", resp.StatusCode)
	}
	_, body = admin.get("/settings/logos")
	if n := len(byTestID(doc(t, body), "logo-image")); n != 2 {
		t.Errorf("%d logos listed, want 2", n)
	}

	// A body over 2 MB passes the server's 1 MB default on this route
	// only, and is refused by the logo's own limit.
	big := append(logoPNG(t, 4, 4), make([]byte, 1500<<10)...)
	resp, body = admin.upload("main", "big.png", big, true)
	if resp.StatusCode != http.StatusOK {
		// 1.5 MB of PNG with trailing bytes is a valid PNG within limits.
		t.Errorf("1.5 MB upload: %d %s", resp.StatusCode, textOf(t, body, "error-file"))
	}

	for _, tc := range []struct {
		kind string
		data []byte
		msg  string
	}{
		{"main", []byte("GIF89a......"), "not a PNG, JPEG, WebP or SVG image"},
		{"main", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "onload= event handler"},
		{"main", make([]byte, 2<<20+10), "a logo may be at most 2.0 MB"},
		{"main", make([]byte, 3<<20), "larger than 2.0 MB"},
		{"main", nil, "Choose an image to upload."},
	} {
		resp, body := admin.upload(tc.kind, "x.png", tc.data, true)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "error-file"), tc.msg) {
			t.Errorf("upload %q: %d, error %q; want 422 %q", tc.msg, resp.StatusCode, textOf(t, body, "error-file"), tc.msg)
		}
	}
	resp, body = admin.upload("banner", "x.png", logoPNG(t, 2, 2), false)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(t, body, "error-type"), `Logo type "banner" is not one of`) {
		t.Errorf("bad type: %d %q", resp.StatusCode, textOf(t, body, "error-type"))
	}
	// The 1 MB default still holds elsewhere.
	resp, _ = admin.post("/members/invite", url.Values{"email": {strings.Repeat("a", 2<<20)}})
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusSeeOther {
		t.Errorf("a 2 MB form elsewhere was accepted: %d", resp.StatusCode)
	}

	// Removing.
	_, body = admin.get("/settings/logos")
	admin.csrf = csrfOf(body)
	req, _ := http.NewRequest(http.MethodPost, admin.url("/settings/logos/icon/remove"), strings.NewReader(url.Values{"csrf_token": {admin.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	resp, body = admin.do(req)
	if resp.StatusCode != 200 || textOf(t, body, "logo-done") != "Icon logo removed." || len(byTestID(doc(t, body), "logo-image")) != 1 {
		t.Errorf("remove: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := admin.get("/logo/icon"); resp.StatusCode != 404 {
		t.Errorf("removed icon served: %d", resp.StatusCode)
	}

	// Members may not open the page.
	member := e.signedIn(acme, "m@acme.test", tenancy.RoleMember)
	if resp, _ := member.get("/settings/logos"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("member: %d", resp.StatusCode)
	}
}

// The icon logo is the favicon of the tenant's pages.
func TestFavicon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	c := e.client("acme.nself.test")
	// Before an icon is uploaded, a plain one: without a link, browsers
	// ask for /favicon.ico, which is not there.
	_, body := c.get("/")
	plain := byTestID(doc(t, body), "plain-icon")
	if len(byTestID(doc(t, body), "brand-icon")) != 0 || len(plain) != 1 {
		t.Fatal("before an icon is uploaded: a brand icon, or no plain one")
	}
	if resp, _ := c.get(attr(plain[0], "href")); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("the plain icon answers %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	l, err := e.server.Logos.UploadLogo(e.ctx, acme.ID, tenancy.LogoIcon, logoPNG(t, 32, 32))
	if err != nil {
		t.Fatal(err)
	}
	_, body = c.get("/")
	links := byTestID(doc(t, body), "brand-icon")
	if len(links) != 1 || attr(links[0], "href") != "/logo/icon?v="+l.SHA256[:16] || attr(links[0], "rel") != "icon" {
		t.Fatalf("favicon links: %d", len(links))
	}
	if resp, _ := c.get(attr(links[0], "href")); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("favicon answers %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// The logos page previews the sign-in page in the tenant's look, where the
// chosen image will stand as the main logo.
func TestLogoSignInPreview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	_, body := owner.get("/settings/logos")
	if got := textOf(t, body, "logo-signin-preview"); !strings.Contains(got, "Sign in to Acme Inc") {
		t.Fatalf("preview = %q", got)
	}
	if !strings.Contains(body, "data-logo-preview-brand") || !strings.Contains(body, "/brand.css?v=") {
		t.Error("the preview lacks the logo slot or the tenant's stylesheet")
	}
	l, err := e.server.Logos.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, logoPNG(t, 20, 20))
	if err != nil {
		t.Fatal(err)
	}
	_, body = owner.get("/settings/logos")
	for _, img := range byTestID(doc(t, body), "logo-signin-preview") {
		if !strings.Contains(renderNode(img), "/logo/main?v="+l.SHA256[:16]) {
			t.Error("the preview does not start from the current logo")
		}
	}
}

func renderNode(n *html.Node) string {
	var b strings.Builder
	html.Render(&b, n)
	return b.String()
}
