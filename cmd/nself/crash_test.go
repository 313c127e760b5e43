package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// storeGate stands between the server and MinIO: it passes requests on,
// but holds those the test picks, as a store that stopped answering would,
// and says which it holds.
type storeGate struct {
	addr string
	mu   sync.Mutex
	pick func(*http.Request) bool
	held chan string
}

func newStoreGate(t *testing.T) *storeGate {
	t.Helper()
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: blobtest.Config(t).Endpoint})
	g := &storeGate{held: make(chan string, 16)}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		hold := g.pick != nil && g.pick(r)
		g.mu.Unlock()
		if !hold {
			proxy.ServeHTTP(w, r)
			return
		}
		// Read what the client sends, so that its going away is seen.
		io.Copy(io.Discard, r.Body)
		g.held <- r.Method + " " + r.URL.Path
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	g.addr = strings.TrimPrefix(srv.URL, "http://")
	return g
}

// hold holds the requests pick chooses from now on (none with nil).
func (g *storeGate) hold(pick func(*http.Request) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pick = pick
}

func (g *storeGate) waitHeld(t *testing.T, what string) string {
	t.Helper()
	select {
	case r := <-g.held:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("the export never reached %s", what)
	}
	return ""
}

// portal is a browser on one tenant's portal.
type portal struct {
	t      *testing.T
	addr   string
	host   string
	jar    http.CookieJar
	client *http.Client
}

func newPortal(t *testing.T, addr, host string) *portal {
	jar, _ := cookiejar.New(nil)
	return &portal{t: t, addr: addr, host: host, jar: jar,
		client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *portal) do(method, path string, form url.Values) (int, string) {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, "http://"+p.addr+path, body)
	req.Host = p.host
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	// The jar keys cookies by the URL's host; send them for the tenant host.
	u, _ := url.Parse("http://" + p.host + "/")
	for _, ck := range p.jar.Cookies(u) {
		req.AddCookie(ck)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	p.jar.SetCookies(u, resp.Cookies())
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *portal) csrf(page string) string {
	p.t.Helper()
	m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		p.t.Fatalf("page has no CSRF token:\n%s", page)
	}
	return m[1]
}

func (p *portal) signIn(email, password string) {
	p.t.Helper()
	_, page := p.do("GET", "/", nil)
	if code, _ := p.do("POST", "/signin", url.Values{"email": {email}, "password": {password}, "csrf_token": {p.csrf(page)}}); code != 303 {
		p.t.Fatalf("sign in: %d", code)
	}
}

// requestExport asks for an export as the owner does, with the page's
// button, and returns the answer's status and body.
func (p *portal) requestExport() (int, string) {
	p.t.Helper()
	_, page := p.do("GET", "/settings/export", nil)
	return p.do("POST", "/settings/export", url.Values{"csrf_token": {p.csrf(page)}})
}

// exportState reads the latest export's state and failure from the page.
func (p *portal) exportState() (state, failure, page string) {
	p.t.Helper()
	code, page := p.do("GET", "/settings/export", nil)
	if code != 200 {
		p.t.Fatalf("export page: %d", code)
	}
	if m := regexp.MustCompile(`data-testid="export-job" data-state="(\w+)"`).FindStringSubmatch(page); m != nil {
		state = m[1]
	}
	if m := regexp.MustCompile(`data-testid="export-failure">([^<]*)<`).FindStringSubmatch(page); m != nil {
		failure = m[1]
	}
	return state, failure, page
}

// waitExport waits until the latest export is in state.
func (p *portal) waitExport(want string) (failure, page string) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		state, failure, page := p.exportState()
		if state == want {
			return failure, page
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("export is %q (%s), want %s", state, failure, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nothingIn fails the test if a folder holds any file.
func nothingIn(t *testing.T, when string, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			t.Errorf("%s: %s left in %s", when, e.Name(), dir)
		}
	}
}

// namelessFilesIn counts the files the process has open in dir whose names
// are gone.
func namelessFilesIn(t *testing.T, pid int, dir string) int {
	t.Helper()
	fds, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") && strings.HasSuffix(target, " (deleted)") {
			n++
		}
	}
	return n
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// A server killed while it builds an export, and again while it uploads
// one, leaves no part of the tenant's data on disk, neither in its export
// folder nor in the system's temporary directory; started again, it shows
// the job failed, and the owner's next export starts at once and
// completes.
func TestExportAfterTheServerIsKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gate := newStoreGate(t)
	base := t.TempDir()
	spool, tmp := filepath.Join(base, "spool"), filepath.Join(base, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	urls := pgtest.NewURLs(t)
	env := []string{"SESSION_SECRET=crash-test-secret-0123456789abcdef", "PUBLIC_SCHEME=http", "EXPORT_SPOOL_DIR=" + spool, "TMPDIR=" + tmp}
	for _, kv := range blobtest.Env(t) {
		if strings.HasPrefix(kv, "MINIO_ENDPOINT=") {
			kv = "MINIO_ENDPOINT=" + gate.addr
		}
		env = append(env, kv)
	}
	c := newCLI(t, urls, env...)
	const owner, password = "owner@acme.test", "owner password here"
	if r := c.run(password+"\n", "tenant", "create", "Acme", "--slug", "acme", "--plan", "pro", "--owner", owner, "--owner-password-stdin"); r.code != 0 {
		t.Fatalf("create: %q", r.err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	var logo bytes.Buffer
	png.Encode(&logo, img)
	logoFile := filepath.Join(base, "logo.png")
	os.WriteFile(logoFile, logo.Bytes(), 0o644)
	c.ok("whitelabel", "logo", "upload", "acme", logoFile)
	// Enough rows that the archive is a few megabytes.
	admin, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var tenantID string
	if err := admin.QueryRow(ctx, `SELECT id FROM tenants.tenants WHERE slug = 'acme'`).Scan(&tenantID); err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			return err
		}
		// In batches of VALUES: Citus runs an INSERT … SELECT under
		// row-level security as a COPY, which it refuses.
		for from := 1; from <= 40000; from += 1000 {
			var values strings.Builder
			for i := from; i < from+1000; i++ {
				if i > from {
					values.WriteString(", ")
				}
				fmt.Fprintf(&values, "($1, md5(random()::text) || md5(random()::text) || md5(random()::text), %d)", i)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO app.products (tenant_id, name, price) VALUES `+values.String(), tenantID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	host := "acme.example.test"

	// 1. Killed while it builds: the export is copying the logo into the
	// archive, the store holding the read.
	addr, srv := startServer(t, c)
	p := newPortal(t, addr, host)
	p.signIn(owner, password)
	gate.hold(func(r *http.Request) bool {
		return r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/"+tenancy.TenantBucket(tenantID)+"/logos/")
	})
	if code, page := p.requestExport(); code != 303 {
		t.Fatalf("request an export: %d\n%s", code, page)
	}
	gate.waitHeld(t, "the logo")
	if n := namelessFilesIn(t, srv.Process.Pid, spool); n == 0 {
		t.Error("while it builds, the server has no nameless file open in its export folder")
	}
	nothingIn(t, "while it builds", spool, tmp)
	kill(t, srv)
	gate.hold(nil)
	nothingIn(t, "killed while it builds", spool, tmp)

	addr, srv = startServer(t, c)
	p = newPortal(t, addr, host)
	p.signIn(owner, password)
	if failure, _ := p.waitExport("failed"); !strings.Contains(failure, "stopped") {
		t.Errorf("after the restart the job shows %q", failure)
	}

	// 2. Killed while it uploads: the archive is complete and on its way
	// to the store, which holds the upload.
	gate.hold(func(r *http.Request) bool {
		return (r.Method == "PUT" || r.Method == "POST") && strings.HasPrefix(r.URL.Path, "/"+tenancy.ExportBucket+"/"+tenantID+"/")
	})
	if code, page := p.requestExport(); code != 303 {
		t.Fatalf("request an export right after the restart: %d\n%s", code, page)
	}
	gate.waitHeld(t, "the upload")
	if n := namelessFilesIn(t, srv.Process.Pid, spool); n == 0 {
		t.Error("while it uploads, the server has no nameless file open in its export folder")
	}
	nothingIn(t, "while it uploads", spool, tmp)
	kill(t, srv)
	gate.hold(nil)
	nothingIn(t, "killed while it uploads", spool, tmp)

	addr, _ = startServer(t, c)
	p = newPortal(t, addr, host)
	p.signIn(owner, password)
	if failure, _ := p.waitExport("failed"); !strings.Contains(failure, "stopped") {
		t.Errorf("after the second restart the job shows %q", failure)
	}
	store := blobtest.New(t)
	store.ListObjects(ctx, tenancy.ExportBucket, tenancy.ExportPrefix(tenantID), func(o tenancy.ObjectInfo) error {
		t.Errorf("archive %s of a killed export is in the store", o.Key)
		return nil
	})

	// 3. The owner asks again at once, and gets the archive.
	if code, page := p.requestExport(); code != 303 {
		t.Fatalf("request an export after the second restart: %d\n%s", code, page)
	}
	_, page := p.waitExport("ready")
	link := regexp.MustCompile(`href="(/settings/export/[^"]+/download)"`).FindStringSubmatch(page)
	if link == nil {
		t.Fatalf("no download link:\n%s", page)
	}
	code, archive := p.do("GET", link[1], nil)
	if code != 200 {
		t.Fatalf("download: %d", code)
	}
	m, err := postgres.VerifyArchive(strings.NewReader(archive))
	if err != nil || m.TenantID != tenantID || len(m.Objects) != 1 {
		t.Fatalf("archive: %v, %+v", err, m)
	}
	nothingIn(t, "after the export", spool, tmp)
}

// serve removes an object no row refers to once it is older than the
// grace period, and leaves a logo's object and a young object alone.
func TestServeSweepsObjectsWithoutARow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCLI(t, pgtest.NewURLs(t), blobtest.Env(t)...)
	out := c.ok("tenant", "create", "Acme", "--slug", "acme")
	id := regexp.MustCompile(`ID: ([0-9a-f-]{36})`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("tenant create said %q", out)
	}
	bucket := tenancy.TenantBucket(id[1])
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	var logo bytes.Buffer
	png.Encode(&logo, img)
	logoFile := filepath.Join(t.TempDir(), "logo.png")
	os.WriteFile(logoFile, logo.Bytes(), 0o644)
	c.ok("whitelabel", "logo", "upload", "acme", logoFile)
	store := blobtest.New(t)
	var logoKey string
	store.ListObjects(ctx, bucket, "", func(o tenancy.ObjectInfo) error { logoKey = o.Key; return nil })
	if logoKey == "" {
		t.Fatal("the logo is not in the bucket")
	}
	// Left by an upload whose commit never came.
	if err := store.Put(ctx, bucket, "logos/icon/orphan.png", logo.Bytes(), "image/png"); err != nil {
		t.Fatal(err)
	}
	const grace = 3 * time.Second
	time.Sleep(grace + 500*time.Millisecond)
	startServer(t, c, "--orphan-sweep", "200ms", "--orphan-grace", grace.String())
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := store.Exists(ctx, bucket, "logos/icon/orphan.png")
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the orphan is still there")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// An upload on its way: its row is not written yet. Five sweeps later,
	// well within its grace, it is still there.
	if err := store.Put(ctx, bucket, "logos/dark/young.png", logo.Bytes(), "image/png"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, key := range []string{logoKey, "logos/dark/young.png"} {
		if ok, err := store.Exists(ctx, bucket, key); err != nil || !ok {
			t.Errorf("%s was removed (%v)", key, err)
		}
	}
}

// The export folder is the server's own: made private, cleared of export
// files left from before, and refused when it is a file, a link or
// another user's folder.
func TestSpoolDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()

	made := filepath.Join(base, "new")
	if dir, err := spoolDir(made); err != nil || dir != made {
		t.Fatalf("new folder: %q, %v", dir, err)
	}
	if info, err := os.Stat(made); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("new folder: %v, %v", info.Mode(), err)
	}

	loose := filepath.Join(base, "loose")
	os.Mkdir(loose, 0o755)
	os.WriteFile(filepath.Join(loose, "nself-export-123.tar.gz"), []byte("a tenant's data"), 0o644)
	os.WriteFile(filepath.Join(loose, "nself-export-456.csv"), []byte("a tenant's rows"), 0o644)
	os.WriteFile(filepath.Join(loose, "notes.txt"), []byte("not ours"), 0o644)
	if _, err := spoolDir(loose); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(loose); info.Mode().Perm() != 0o700 {
		t.Errorf("a folder others could read stays %v", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(loose)
	if len(entries) != 1 || entries[0].Name() != "notes.txt" {
		t.Errorf("after clearing: %v", entries)
	}

	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	link := filepath.Join(base, "link")
	os.Symlink(made, link)
	bad := []string{file, link}
	if os.Getuid() == 0 {
		theirs := filepath.Join(base, "theirs")
		os.Mkdir(theirs, 0o700)
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, theirs)
	}
	for _, dir := range bad {
		if _, err := spoolDir(dir); err == nil || !strings.Contains(err.Error(), "EXPORT_SPOOL_DIR") {
			t.Errorf("%s: %v", dir, err)
		}
	}

	// The server refuses to start without a usable folder.
	c := newCLI(t, pgtest.NewURLs(t), append(blobtest.Env(t), "EXPORT_SPOOL_DIR="+file)...)
	if r := c.run("", "serve", "--addr", "127.0.0.1:0"); r.code != 1 || !strings.Contains(r.err, "not a folder") {
		t.Errorf("serve with a file as its export folder: %d %q", r.code, r.err)
	}
}

// Export archives kept for download are the tenant's storage: the server's
// storage sample counts them.
func TestServeSamplesExportArchivesAsStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCLI(t, pgtest.NewURLs(t), blobtest.Env(t)...)
	out := c.ok("tenant", "create", "Acme", "--slug", "acme")
	id := regexp.MustCompile(`ID: ([0-9a-f-]{36})`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("tenant create said %q", out)
	}
	store := blobtest.New(t)
	if err := store.Put(ctx, tenancy.ExportBucket, tenancy.ExportKey(id[1], "00000000-0000-4000-8000-000000000001"),
		bytes.Repeat([]byte("x"), 5000), "application/gzip"); err != nil {
		t.Fatal(err)
	}
	startServer(t, c, "--storage-sample", "100ms")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := c.ok("tenant", "usage", "acme", "--json")
		if m := regexp.MustCompile(`"storage_bytes": (\d+)`).FindStringSubmatch(out); m != nil && m[1] == "5000" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archive is not counted:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
