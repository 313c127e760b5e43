package web_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// withExports returns the env's server's export jobs.
func (e *testEnv) withExports() *postgres.ExportJobService {
	e.t.Helper()
	// The services give the server exports when it has object storage,
	// as the tests' does.
	jobs, ok := e.server.Exports.(*postgres.ExportJobService)
	if !ok {
		e.t.Fatal("the test server has no exports")
	}
	return jobs
}

// exec runs one statement as the owner in the tenant's context.
func (e *testEnv) exec(tenantID, sql string, args ...any) {
	e.t.Helper()
	tx, err := e.db.Admin.Begin(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	if err := tx.Commit(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func TestExportPageOwnerDownloadsOwnExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	jobs := e.withExports()
	acme, beta := e.mustTenant("acme"), e.mustTenant("beta")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	other := e.signedIn(acme, "second@acme.test", tenancy.RoleOwner)
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)
	betaOwner := e.signedIn(beta, "owner@beta.test", tenancy.RoleOwner)

	// Owners only, and only owners see the menu item.
	resp, body := owner.get("/settings/export")
	if resp.StatusCode != 200 || len(byTestID(doc(t, body), "nav-export")) != 1 || len(byTestID(doc(t, body), "export-request")) != 1 {
		t.Fatalf("owner's export page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = admin.get("/settings/export")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin's export page: %d", resp.StatusCode)
	}
	if _, body = admin.get("/dashboard"); len(byTestID(doc(t, body), "nav-export")) != 0 {
		t.Error("an admin's menu links to the export")
	}
	if resp, _ = admin.post("/settings/export", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin requests an export: %d", resp.StatusCode)
	}

	resp, body = owner.post("/settings/export", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("request: %d\n%s", resp.StatusCode, body)
	}
	jobs.Wait()
	_, body = owner.get("/settings/export")
	job := byTestID(doc(t, body), "export-job")
	if len(job) != 1 || attr(job[0], "data-state") != "ready" {
		t.Fatalf("after the export: %s", body)
	}
	link := attr(byTestID(doc(t, body), "export-download")[0], "href")
	if textOf(t, body, "export-expires") == "" {
		t.Error("no expiry shown")
	}

	resp, archive := owner.get(link)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/gzip" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="acme-data-export-`) {
		t.Fatalf("download: %d %v", resp.StatusCode, resp.Header)
	}
	m, err := postgres.VerifyArchive(bytes.NewReader([]byte(archive)))
	if err != nil || m.TenantID != acme.ID {
		t.Fatalf("downloaded archive: %v, %+v", err, m)
	}

	// Nobody else gets it: another owner of the workspace, an owner of
	// another workspace (on their host, or on this one), a visitor.
	if resp, _ := other.get(link); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another owner downloads: %d", resp.StatusCode)
	}
	if resp, _ := betaOwner.get(link); resp.StatusCode != http.StatusNotFound {
		t.Errorf("beta's owner downloads on beta's host: %d", resp.StatusCode)
	}
	stranger := e.client("acme.nself.test")
	if resp, _ := stranger.get(link); resp.StatusCode == 200 {
		t.Error("a visitor downloads")
	}

	// Expired: refused, and the page says so.
	e.exec(acme.ID, `UPDATE tenants.tenant_exports SET expires_at = now() - interval '1 second' WHERE tenant_id = $1`, acme.ID)
	if resp, body := owner.get(link); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "expired") {
		t.Errorf("expired download: %d", resp.StatusCode)
	}
	_, body = owner.get("/settings/export")
	if len(byTestID(doc(t, body), "export-expired")) != 1 || len(byTestID(doc(t, body), "export-download")) != 0 {
		t.Errorf("expired export page:\n%s", body)
	}
}

func TestExportOneAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	jobs := e.withExports()
	acme := e.mustTenant("acme")
	u := e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	owner := e.client("acme.nself.test")
	owner.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	second := e.signedIn(acme, "second@acme.test", tenancy.RoleOwner)
	// An export that is running (its progress moving) holds the place.
	e.exec(acme.ID, `INSERT INTO tenants.tenant_exports (tenant_id, id, requested_by, rows_total, rows_done)
		VALUES ($1, '00000000-0000-4000-8000-000000000001', $2, 200, 50)`, acme.ID, u.ID)

	_, body := owner.get("/settings/export")
	panel := byTestID(doc(t, body), "export-panel")
	if len(panel) != 1 || attr(panel[0], "hx-trigger") != "every 1s" || len(byTestID(doc(t, body), "export-progress")) != 1 ||
		len(byTestID(doc(t, body), "export-request")) != 0 {
		t.Fatalf("running export page:\n%s", body)
	}
	if got := strings.Join(strings.Fields(textOf(t, body, "export-counts")), " "); got != "50 of 200 rows, 0 of 0 files" {
		t.Errorf("counts = %q", got)
	}
	// The poll answers with the panel.
	req, _ := http.NewRequest(http.MethodGet, owner.url("/settings/export/00000000-0000-4000-8000-000000000001"), nil)
	req.Header.Set("HX-Request", "true")
	if resp, body := owner.do(req); resp.StatusCode != 200 || strings.Contains(body, "<html") || len(byTestID(doc(t, body), "export-progress")) != 1 {
		t.Errorf("poll: %d\n%s", resp.StatusCode, body)
	}

	for _, c := range []*client{owner, second} {
		c.get("/settings/export")
		resp, body := c.post("/settings/export", nil)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(textOf(t, body, "export-message"), "already running") {
			t.Errorf("second export: %d\n%s", resp.StatusCode, body)
		}
	}
	// A job that stopped moving died with its process: it no longer holds
	// the place.
	e.exec(acme.ID, `UPDATE tenants.tenant_exports SET updated_at = now() - interval '1 hour' WHERE tenant_id = $1`, acme.ID)
	if resp, body := second.post("/settings/export", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("export after a stale one: %d\n%s", resp.StatusCode, body)
	}
	jobs.Wait()
	_, body = owner.get("/settings/export")
	if got := textOf(t, body, "export-failure"); !strings.Contains(got, "stopped") {
		t.Errorf("the stale job shows %q", got)
	}
	_, body = second.get("/settings/export")
	if job := byTestID(doc(t, body), "export-job"); len(job) != 1 || attr(job[0], "data-state") != "ready" {
		t.Errorf("second owner's export:\n%s", body)
	}
}

// More tenants export at once than the process builds at a time: the
// others wait their turn, marked running, and every one finishes.
func TestExportsBeyondTheSlotsWaitTheirTurn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	jobs := e.withExports()
	type req struct {
		job  *tenancy.ExportJob
		user string
	}
	var started []req
	for _, slug := range []string{"one", "two", "three", "four", "five"} {
		tn := e.mustTenant(slug)
		u := e.mustMember(tn, "owner@"+slug+".test", tenancy.RoleOwner)
		j, err := jobs.StartExport(e.ctx, tn.ID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, req{j, u.ID})
	}
	jobs.Wait()
	for _, r := range started {
		got, err := jobs.GetExport(e.ctx, r.job.TenantID, r.user, r.job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != tenancy.ExportReady {
			t.Errorf("export of %s: %s %s", r.job.TenantID, got.State, got.Failure)
		}
	}
}

// Archives are storage: at the plan's storage limit the page refuses a new
// export and says why.
func TestExportRefusedAtTheStorageLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.withExports()
	acme := e.mustTenant("acme") // free: 1 GB
	u := e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	owner := e.client("acme.nself.test")
	owner.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	e.exec(acme.ID, `INSERT INTO tenants.tenant_exports (tenant_id, requested_by, state, object_key, size_bytes, finished_at, expires_at)
		VALUES ($1, $2, 'ready', 'k', 1000000000, now(), now() + interval '1 hour')`, acme.ID, u.ID)
	owner.get("/settings/export")
	resp, body := owner.post("/settings/export", nil)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(textOf(t, body, "export-message"), "export archive would not fit") {
		t.Errorf("export at the storage limit: %d\n%s", resp.StatusCode, body)
	}
	if job := byTestID(doc(t, body), "export-job"); len(job) != 1 || attr(job[0], "data-state") != "ready" {
		t.Errorf("the page no longer shows the kept export:\n%s", body)
	}
}
