package web_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/tenancy"
)

// The white-label benchmarks run in process, through the server's handler
// (no network), as a signed-in owner of one tenant, and report the median
// and the 99th percentile of each request besides the mean:
//
//	eval "$(scripts/services.sh env)"
//	go test -run '^$' -bench 'LogoUpload|Preview' -benchtime 200x ./web/

// benchPNG is a real PNG of exactly size bytes: pixels of noise, which
// deflate cannot shrink, then a text chunk padding it to size, then a
// small text chunk holding a serial number (setPNGSerial) so that each
// upload can be new bytes, then the end.
func benchPNG(tb testing.TB, size int) []byte {
	tb.Helper()
	const h = 512
	w := (size - 8<<10) / (4 * h)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(img.Pix); i += 8 {
		binary.LittleEndian.PutUint64(img.Pix[i:], r.Uint64())
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	enc := buf.Bytes()
	iend := enc[len(enc)-12:]
	out := slices.Clone(enc[:len(enc)-12])
	const serialChunk = 12 + 10 // length, type, "n\x00", 8 digits, CRC
	pad := size - len(out) - serialChunk - len(iend) - 12 - len("Comment\x00")
	if pad < 0 {
		tb.Fatalf("noise alone is %d bytes, more than %d", len(enc), size)
	}
	out = appendChunk(out, "tEXt", append([]byte("Comment\x00"), bytes.Repeat([]byte{'.'}, pad)...))
	out = appendChunk(out, "tEXt", []byte("n\x0000000000"))
	out = append(out, iend...)
	if len(out) != size {
		tb.Fatalf("PNG of %d bytes, want %d", len(out), size)
	}
	if _, err := png.Decode(bytes.NewReader(out)); err != nil {
		tb.Fatal(err)
	}
	return out
}

func appendChunk(p []byte, typ string, data []byte) []byte {
	p = binary.BigEndian.AppendUint32(p, uint32(len(data)))
	start := len(p)
	p = append(p, typ...)
	p = append(p, data...)
	return binary.BigEndian.AppendUint32(p, crc32.ChecksumIEEE(p[start:]))
}

// setPNGSerial writes i into a benchPNG's serial chunk, in place.
func setPNGSerial(p []byte, i int) {
	c := p[len(p)-12-22 : len(p)-12]
	copy(c[10:18], fmt.Appendf(nil, "%08d", i%100_000_000))
	binary.BigEndian.PutUint32(c[18:], crc32.ChecksumIEEE(c[4:18]))
}

// benchLatencies are the durations of a benchmark's iterations, for the
// percentiles that its mean (ns/op) hides.
type benchLatencies []time.Duration

func (l *benchLatencies) time(f func()) {
	start := time.Now()
	f()
	*l = append(*l, time.Since(start))
}

// report adds the median and the 99th percentile (nearest rank) to the
// benchmark's results, in milliseconds.
func (l benchLatencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(p int) float64 {
		i := max((p*len(s)+99)/100-1, 0)
		return float64(s[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(50), "p50-ms")
	b.ReportMetric(at(99), "p99-ms")
}

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

	data := benchPNG(b, 1<<20)
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
		var lat benchLatencies
		for i := 0; b.Loop(); i++ {
			// New bytes each time, so every upload replaces the last one
			// and removes its object.
			setPNGSerial(file, i)
			req := o.request(http.MethodPost, "/settings/logos", mw.FormDataContentType(), form)
			lat.time(func() { o.serve(req) })
		}
		lat.report(b)
	})
	// The logo service alone, as the handler calls it.
	b.Run("service", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var lat benchLatencies
		for i := 0; b.Loop(); i++ {
			setPNGSerial(data, i)
			lat.time(func() {
				if _, err := e.server.Logos.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, data); err != nil {
					b.Fatal(err)
				}
			})
		}
		lat.report(b)
	})
	b.Run("putobject", func(b *testing.B) {
		ctx := context.Background()
		store := blobtest.New(b)
		bucket := tenancy.TenantBucket(acme.ID)
		if err := store.EnsureBucket(ctx, bucket); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		var lat benchLatencies
		for i := 0; b.Loop(); i++ {
			setPNGSerial(data, i)
			lat.time(func() {
				if _, err := store.Client().PutObject(ctx, bucket, "bench/plain.png", bytes.NewReader(data), int64(len(data)),
					minio.PutObjectOptions{ContentType: "image/png"}); err != nil {
					b.Fatal(err)
				}
			})
		}
		lat.report(b)
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
	draft := regexp.MustCompile(`/settings/emails/welcome/preview\.html\?draft=[A-Za-z0-9_-]+`).FindString(w.Body.String())
	if draft == "" {
		b.Fatalf("no draft in the preview:\n%s", w.Body)
	}

	for _, tc := range []struct {
		name, method, path string
		form               url.Values
	}{
		{"branding", http.MethodPost, "/settings/branding/preview", colors},
		{"branding-frame", http.MethodGet, "/settings/branding/preview.html?" + frameColors.Encode(), nil},
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
			var lat benchLatencies
			for b.Loop() {
				req := o.request(tc.method, tc.path, formType, body)
				lat.time(func() { o.serve(req) })
			}
			lat.report(b)
		})
	}
}
