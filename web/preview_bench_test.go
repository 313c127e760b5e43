package web_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/nself/nself/internal/benchtest"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/tenancy"
)

// The white-label benchmarks run in process, through the server's handler
// (no network), as a signed-in owner of one tenant, and report the median
// and the 99th percentile of each request besides the mean:
//
//	eval "$(scripts/services.sh env)"
//	go test -run '^$' -bench 'LogoUpload|Preview' -benchtime 200x ./web/

// benchOwner is a signed-in owner of a tenant, for requests sent straight
// to the server's handler: the session cookies and CSRF token of a sign-in
// made once, over the test server, before any timing.
type benchOwner struct {
	b       *testing.B
	h       http.Handler
	host    string
	cookies []*http.Cookie
	csrf    string
}

func newBenchOwner(b *testing.B, e *testEnv, t *tenancy.Tenant) *benchOwner {
	b.Helper()
	email := "owner@" + t.Slug + ".test"
	e.mustMember(t, email, tenancy.RoleOwner)
	c := e.client(t.Slug + "." + baseDomain)
	c.signIn(email, passwordOf(email))
	if resp, _ := c.get("/settings/logos"); resp.StatusCode != http.StatusOK || c.csrf == "" {
		b.Fatalf("signed-in page: %d, token %q", resp.StatusCode, c.csrf)
	}
	u, _ := url.Parse(c.url("/"))
	return &benchOwner{b: b, h: e.server.Handler(), host: c.host, cookies: c.http.Jar.Cookies(u), csrf: c.csrf}
}

// request is a request from the owner's browser as htmx sends it: with
// the session's cookies and, for a POST, its CSRF token in the header.
func (o *benchOwner) request(method, path, contentType string, body []byte) *http.Request {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://"+o.host+path, r)
	for _, c := range o.cookies {
		req.AddCookie(c)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("HX-Request", "true")
		req.Header.Set("X-CSRF-Token", o.csrf)
	}
	return req
}

// serve answers req, failing unless it is 200 OK.
func (o *benchOwner) serve(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	o.h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		o.b.Fatalf("%s %s: %d\n%.500s", req.Method, req.URL, w.Code, w.Body)
	}
	return w
}

// BenchmarkLogoUpload compares an upload of a 1 MB PNG through the portal
// (POST /settings/logos as the logos page's htmx form sends it: session,
// CSRF, multipart parsing, the logo service, the panel rendered again)
// with the logo service called directly and with a plain minio-go
// PutObject of the same bytes to the same MinIO.
func BenchmarkLogoUpload(b *testing.B) {
	e := newEnv(b)
	acme := e.mustTenant("acme")
	o := newBenchOwner(b, e, acme)

	data := benchtest.PNG(b, 1<<20)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("type", string(tenancy.LogoMain))
	fw, _ := mw.CreateFormFile("file", "logo.png")
	fw.Write(data)
	mw.Close()
	form := body.Bytes()
	// The PNG inside the form, changed in place for each upload.
	at := bytes.Index(form, data)
	file := form[at : at+len(data)]

	b.Run("portal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		o.b = b
		var lat benchtest.Latencies
		for i := 0; b.Loop(); i++ {
			// New bytes each time, so every upload replaces the last one
			// and removes its object.
			benchtest.SetPNGSerial(file, i)
			req := o.request(http.MethodPost, "/settings/logos", mw.FormDataContentType(), form)
			lat.Time(func() { o.serve(req) })
		}
		lat.Report(b)
	})
	// The logo service alone, as the handler calls it.
	b.Run("service", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var lat benchtest.Latencies
		for i := 0; b.Loop(); i++ {
			benchtest.SetPNGSerial(data, i)
			lat.Time(func() {
				if _, err := e.server.Logos.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, data); err != nil {
					b.Fatal(err)
				}
			})
		}
		lat.Report(b)
	})
	b.Run("putobject", func(b *testing.B) {
		ctx := context.Background()
		store := blobtest.New(b)
		bucket := tenancy.TenantBucket(acme.ID)
		if err := store.EnsureBucket(ctx, bucket); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		var lat benchtest.Latencies
		for i := 0; b.Loop(); i++ {
			benchtest.SetPNGSerial(data, i)
			lat.Time(func() {
				if _, err := store.Client().PutObject(ctx, bucket, "bench/plain.png", bytes.NewReader(data), int64(len(data)),
					minio.PutObjectOptions{ContentType: "image/png"}); err != nil {
					b.Fatal(err)
				}
			})
		}
		lat.Report(b)
	})
}

// BenchmarkPreview measures the white-label live previews: each request
// the pages send as the form changes (the partial, POST) and the one the
// preview's frame then makes (GET), with unsaved values.
func BenchmarkPreview(b *testing.B) {
	e := newEnv(b)
	acme := e.mustTenant("acme")
	o := newBenchOwner(b, e, acme)
	const formType = "application/x-www-form-urlencoded"

	colors := url.Values{"primary_color": {"#0f766e"}, "secondary_color": {"#334155"}, "accent_color": {"#f59e0b"}}
	frameColors := url.Values{"preview": {"1"}, "primary": {"#0f766e"}, "secondary": {"#334155"},
		"accent": {"#f59e0b"}, "background": {"#fafaf9"}, "text": {"#1c1917"}}
	invite := url.Values{"email": {"new.person@example.com"}, "name": {"New Person"}, "role": {"admin"}}
	tpl, err := e.server.EmailTemplates.Get(e.ctx, acme.ID, "welcome")
	if err != nil {
		b.Fatal(err)
	}
	edited := url.Values{"subject": {"Welcome aboard, {{USER_NAME}}"},
		"html": {strings.Replace(tpl.HTML, "</body>", "<p>Edited, not saved.</p></body>", 1)}}
	// The frame of an email template's preview fetches the draft its
	// partial made.
	o.b = b
	w := o.serve(o.request(http.MethodPost, "/settings/emails/welcome/preview", formType, []byte(edited.Encode())))
	draft := regexp.MustCompile(`/settings/emails/welcome/preview\.html\?d=[A-Za-z0-9_.-]+`).FindString(w.Body.String())
	if draft == "" {
		b.Fatalf("no draft in the preview:\n%s", w.Body)
	}

	w = o.serve(o.request(http.MethodPost, "/settings/branding/preview", formType, []byte(colors.Encode())))
	brandingFrame := regexp.MustCompile(`/settings/branding/preview\.html\?d=[A-Za-z0-9_.-]+`).FindString(w.Body.String())
	if brandingFrame == "" {
		b.Fatalf("no frame in the branding preview:\n%s", w.Body)
	}

	for _, tc := range []struct {
		name, method, path string
		form               url.Values
	}{
		{"branding", http.MethodPost, "/settings/branding/preview", colors},
		{"branding-frame", http.MethodGet, brandingFrame, nil},
		{"branding-frame-css", http.MethodGet, "/brand.css?" + frameColors.Encode(), nil},
		{"invitation", http.MethodPost, "/members/invite/preview", invite},
		{"invitation-frame", http.MethodGet, "/members/invite/preview.html?" + invite.Encode(), nil},
		{"email-template", http.MethodPost, "/settings/emails/welcome/preview", edited},
		{"email-template-frame", http.MethodGet, draft, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			o.b = b
			var body []byte
			if tc.form != nil {
				body = []byte(tc.form.Encode())
			}
			var lat benchtest.Latencies
			for b.Loop() {
				req := o.request(tc.method, tc.path, formType, body)
				lat.Time(func() { o.serve(req) })
			}
			lat.Report(b)
		})
	}
}
