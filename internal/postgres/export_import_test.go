package postgres_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

type exportEnv struct {
	t     *testing.T
	ctx   context.Context
	db    *postgres.DB
	store *blob.Store
	svc   *postgres.ExportService
}

func newExportEnv(t *testing.T) *exportEnv {
	t.Helper()
	db := mustOpenDB(t)
	store := blobtest.New(t)
	svc := postgres.NewExportService(db, store, tenancy.ModeHybrid)
	svc.TempDir = t.TempDir()
	svc.Domains = tenancy.DomainRules{BaseDomain: "nself.test", ToASCII: domainname.ToASCII}
	return &exportEnv{t: t, ctx: context.Background(), db: db, store: store, svc: svc}
}

// richTenant makes a tenant with something in every table an export holds:
// users, members, an invitation, domains, settings, themes, logos, email
// templates, usage records and data rows, and a session and a password
// token that must not travel.
func (e *exportEnv) richTenant(slug string, strategy tenancy.Strategy) *tenancy.Tenant {
	t, ctx := e.t, e.ctx
	t.Helper()
	c, err := postgres.NewTenantService(e.db, tenancy.ModeHybrid).CreateTenant(ctx, tenancy.NewTenant{
		Name: "Tenant " + slug, Slug: slug, Strategy: strategy, Plan: "pro",
		Owner: "owner@" + slug + ".example", OwnerPassword: "correct horse battery",
	})
	if err != nil {
		t.Fatal(err)
	}
	tn := c.Tenant
	members := postgres.NewMemberService(e.db)
	bob := mustCreateUser(t, e.db, tn.ID, "bob@"+slug+".example")
	if _, err := members.AddMember(ctx, tn.ID, bob.ID, tenancy.RoleAdmin, tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := postgres.NewInvitationService(e.db).Invite(ctx, tn.ID,
		tenancy.NewInvitation{Email: "carol@" + slug + ".example", Role: tenancy.RoleMember}, tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	domains := postgres.NewDomainService(e.db, tenancy.DomainRules{BaseDomain: "nself.test", ToASCII: domainname.ToASCII})
	for _, d := range []string{slug + ".example.com", "app." + slug + ".example.com"} {
		if _, err := domains.AddDomain(ctx, tn.ID, d); err != nil {
			t.Fatal(err)
		}
	}
	brand := postgres.NewBrandingService(e.db)
	if _, err := brand.SetSetting(ctx, tn.ID, "contact.support_email", "help@"+slug+".example"); err != nil {
		t.Fatal(err)
	}
	if _, err := brand.CreateTheme(ctx, tn.ID, tenancy.NewTheme{Name: "Night", Primary: "#112233", Secondary: "#445566", Background: "#000000", Text: "#ffffff"}); err != nil {
		t.Fatal(err)
	}
	if _, err := brand.ActivateTheme(ctx, tn.ID, "night"); err != nil {
		t.Fatal(err)
	}
	// A renamed theme keeps its id, which its new name would not make.
	if _, err := brand.CreateTheme(ctx, tn.ID, tenancy.NewTheme{Name: "Ocean", Primary: "#006680", Secondary: "#004455", Background: "#ffffff", Text: "#111111"}); err != nil {
		t.Fatal(err)
	}
	if _, err := brand.UpdateTheme(ctx, tn.ID, "ocean", tenancy.NewTheme{Name: "Sea", Primary: "#006680", Secondary: "#004455", Background: "#ffffff", Text: "#111111"}); err != nil {
		t.Fatal(err)
	}
	logos := postgres.NewLogoService(e.db, e.store)
	if _, err := logos.UploadLogo(ctx, tn.ID, tenancy.LogoMain, testPNG(t, 40, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := logos.UploadLogo(ctx, tn.ID, tenancy.LogoIcon, testPNG(t, 16, 16)); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.NewEmailTemplateService(e.db).Customize(ctx, tn.ID, "welcome",
		"Welcome to {{TENANT_NAME}}", "<p>Hello, \"quoted\"\nnew line, comma</p>", "Hello\r\nthere", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := postgres.NewAuthService(e.db).SignIn(ctx, tn.ID, "owner@"+slug+".example", "correct horse battery", tenancy.SessionMeta{}); err != nil {
		t.Fatal(err)
	}
	e.asOwner(tn.ID, func(tx pgx.Tx) {
		search := ""
		if tn.SchemaName != "" {
			search = tn.SchemaName + "."
		} else {
			search = "app."
		}
		// INSERT … VALUES: Citus runs an INSERT … SELECT under row-level
		// security as a COPY, which it refuses.
		var products, orders []string
		for i := 1; i <= 50; i++ {
			id := uuid.NewString()
			products = append(products, fmt.Sprintf("($1, '%s', 'Product %d', %d)", id, i, i))
			orders = append(orders, fmt.Sprintf("($1, '%s', 2)", id))
		}
		for _, sql := range []string{
			`INSERT INTO ` + search + `products (tenant_id, id, name, price) VALUES ` + strings.Join(products, ", "),
			`INSERT INTO ` + search + `orders (tenant_id, product_id, quantity) VALUES ` + strings.Join(orders, ", "),
			`INSERT INTO public.billing_usage_records (tenant_id, service_name, quantity, metadata) VALUES ($1, 'api_requests', 12.5, '{"a": [1, "x"]}')`,
		} {
			if _, err := tx.Exec(ctx, sql, tn.ID); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
	})
	return tn
}

// asOwner runs fn as the owner in the tenant's context and commits.
func (e *exportEnv) asOwner(tenantID string, fn func(pgx.Tx)) {
	e.t.Helper()
	tx, err := e.db.Admin.Begin(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer tx.Rollback(e.ctx)
	if _, err := tx.Exec(e.ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
		e.t.Fatal(err)
	}
	fn(tx)
	if err := tx.Commit(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *exportEnv) export(ref string) []byte {
	e.t.Helper()
	var b bytes.Buffer
	if _, err := e.svc.Export(e.ctx, ref, &b, nil); err != nil {
		e.t.Fatalf("export %s: %v", ref, err)
	}
	return b.Bytes()
}

// rows returns a table's rows of the tenant as JSON text without
// tenant_id and the columns in drop, sorted.
func (e *exportEnv) rows(table, tenantID string, drop ...string) []string {
	e.t.Helper()
	var out []string
	e.asOwner(tenantID, func(tx pgx.Tx) {
		minus := ""
		for _, d := range append(drop, "tenant_id") {
			minus += " - '" + d + "'"
		}
		rows, err := tx.Query(e.ctx, `SELECT (to_jsonb(t)`+minus+`)::text FROM `+table+` t WHERE tenant_id = $1 ORDER BY 1`, tenantID)
		if err != nil {
			e.t.Fatal(err)
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			e.t.Fatal(err)
		}
	})
	return out
}

func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	for _, strategy := range []tenancy.Strategy{tenancy.StrategyRLS, tenancy.StrategySchema} {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			e := newExportEnv(t)
			src := e.richTenant("acme", strategy)
			archive := e.export("acme")

			res, err := e.svc.Import(e.ctx, bytes.NewReader(archive), tenancy.ImportOptions{Slug: "acme-copy", Plan: "pro"})
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			dst := res.Tenant
			if dst.ID == src.ID || dst.Slug != "acme-copy" || dst.Name != src.Name || dst.Plan != "pro" ||
				dst.Strategy != strategy || dst.OwnerID != src.OwnerID {
				t.Fatalf("imported tenant %+v, from %+v", dst, src)
			}
			if res.Objects != 2 {
				t.Errorf("objects = %d, want 2", res.Objects)
			}
			dataSchema := "app"
			dstSchema := "app"
			if strategy == tenancy.StrategySchema {
				dataSchema, dstSchema = src.SchemaName, dst.SchemaName
			}
			same := []struct {
				src, dst string
				drop     []string
			}{
				{"auth.users", "auth.users", []string{"password_hash", "email_lower"}},
				{"tenants.tenant_members", "tenants.tenant_members", nil},
				{"tenants.tenant_settings", "tenants.tenant_settings", nil},
				{"tenants.tenant_themes", "tenants.tenant_themes", nil},
				{"tenants.tenant_logos", "tenants.tenant_logos", nil},
				{"tenants.tenant_email_templates", "tenants.tenant_email_templates", nil},
				{"tenants.tenant_invitations", "tenants.tenant_invitations", []string{"token_hash", "revoked_at"}},
				{dataSchema + ".products", dstSchema + ".products", nil},
				{dataSchema + ".orders", dstSchema + ".orders", nil},
			}
			for _, s := range same {
				a, b := e.rows(s.src, src.ID, s.drop...), e.rows(s.dst, dst.ID, s.drop...)
				if len(a) == 0 {
					t.Errorf("%s: the source tenant has no rows; the test sets up too little", s.src)
				}
				if !reflect.DeepEqual(a, b) {
					t.Errorf("%s differs after the round trip:\n%v\n%v", s.src, a, b)
				}
			}
			// Secrets stay behind; what is unique across the platform is not
			// carried as it was.
			e.asOwner(dst.ID, func(tx pgx.Tx) {
				for sql, want := range map[string]int{
					`SELECT count(*) FROM auth.sessions WHERE tenant_id = $1`:                                     0,
					`SELECT count(*) FROM auth.password_tokens WHERE tenant_id = $1 AND purpose = 'reset'`:        0,
					`SELECT count(*) FROM auth.password_tokens WHERE tenant_id = $1 AND purpose = 'set'`:          1,
					`SELECT count(*) FROM auth.users WHERE tenant_id = $1 AND password_hash IS NOT NULL`:          0,
					`SELECT count(*) FROM tenants.tenant_invitations WHERE tenant_id = $1 AND revoked_at IS NULL`: 0,
					`SELECT count(*) FROM tenants.tenant_domains WHERE tenant_id = $1`:                            0,
					`SELECT count(*) FROM tenants.tenant_members WHERE tenant_id = $1 AND role = 'owner'`:         1,
					// The platform's records of the tenant stay behind: usage
					// and payments start anew, and the audit log with the
					// import.
					`SELECT count(*) FROM public.billing_usage_records WHERE tenant_id = $1`:              0,
					`SELECT count(*) FROM audit.events WHERE tenant_id = $1`:                              1,
					`SELECT count(*) FROM audit.events WHERE tenant_id = $1 AND action = 'tenant.import'`: 1,
				} {
					if n := count(t, tx, sql, dst.ID); n != want {
						t.Errorf("%s = %d, want %d", sql, n, want)
					}
				}
			})
			var held int
			for _, n := range res.Notes {
				if strings.Contains(n, "another tenant holds it") {
					held++
				}
			}
			if held != 2 {
				t.Errorf("notes %q: want the two held domains named", res.Notes)
			}
			for _, table := range []string{"audit.events", "public.billing_usage_records"} {
				if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.HasPrefix(n, table+" left out") }) {
					t.Errorf("notes %q: want %s named as left out", res.Notes, table)
				}
			}
			// Objects: the same bytes under the same keys in the new bucket.
			for _, kind := range []tenancy.LogoKind{tenancy.LogoMain, tenancy.LogoIcon} {
				logos := postgres.NewLogoService(e.db, e.store)
				_, a, err := logos.GetLogo(e.ctx, src.ID, kind)
				if err != nil {
					t.Fatal(err)
				}
				_, b, err := logos.GetLogo(e.ctx, dst.ID, kind)
				if err != nil || !bytes.Equal(a, b) {
					t.Errorf("%s logo: %d bytes, imported %d bytes, %v", kind, len(a), len(b), err)
				}
			}
			// The export of the copy holds the same rows.
			again := e.manifestOf(e.export("acme-copy"))
			first := e.manifestOf(archive)
			for i, tb := range first.Tables {
				_, notImported := tenancy.NotImported[tb.Name]
				if tb.Name != "tenants.tenant_domains" && !notImported && (i >= len(again.Tables) || again.Tables[i].Rows != tb.Rows) {
					t.Errorf("table %s: %d rows, re-exported %+v", tb.Name, tb.Rows, again.Tables)
				}
			}
		})
	}
}

func TestImportDomainsAsPendingWhenFree(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	src := e.richTenant("acme", tenancy.StrategyRLS)
	archive := e.export("acme")
	if _, err := postgres.NewTenantService(e.db, tenancy.ModeHybrid).DeleteTenant(e.ctx, src.ID); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Import(e.ctx, bytes.NewReader(archive), tenancy.ImportOptions{Slug: "acme-two"})
	if err != nil {
		t.Fatal(err)
	}
	got := e.rows("tenants.tenant_domains", res.Tenant.ID, "created_at", "verification_token")
	if len(got) != 2 || !strings.Contains(got[0], `"state": "pending"`) || !strings.Contains(got[0], `"verified": false`) {
		t.Fatalf("domains = %v", got)
	}
}

func (e *exportEnv) manifestOf(archive []byte) *tenancy.Manifest {
	e.t.Helper()
	m, err := postgres.VerifyArchive(bytes.NewReader(archive))
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// entry is one file of an archive, for rewriting archives in tests.
type entry struct {
	name string
	data []byte
	typ  byte
}

func readEntries(t *testing.T, archive []byte) []entry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, entry{h.Name, b, h.Typeflag})
	}
}

func writeEntries(t *testing.T, entries []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, en := range entries {
		typ := en.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		if err := tw.WriteHeader(&tar.Header{Name: en.name, Typeflag: typ, Size: int64(len(en.data)), Mode: 0o644, Linkname: map[bool]string{true: "/etc/passwd"}[typ == tar.TypeSymlink]}); err != nil {
			t.Fatal(err)
		}
		tw.Write(en.data)
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

// withManifest rewrites the manifest of entries (the last one) with fn,
// recomputing nothing: what fn sets is what the importer sees.
func withManifest(t *testing.T, entries []entry, fn func(m *tenancy.Manifest)) []entry {
	t.Helper()
	last := entries[len(entries)-1]
	var m tenancy.Manifest
	if err := json.Unmarshal(last.data, &m); err != nil {
		t.Fatal(err)
	}
	fn(&m)
	b, _ := json.Marshal(m)
	out := append([]entry{}, entries[:len(entries)-1]...)
	return append(out, entry{name: tenancy.ManifestFile, data: b})
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func TestImportRefusesTamperedArchives(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	archive := e.export("acme")
	entries := readEntries(t, archive)
	find := func(prefix string) int {
		for i, en := range entries {
			if strings.HasPrefix(en.name, prefix) {
				return i
			}
		}
		t.Fatalf("no entry %s", prefix)
		return -1
	}
	users := find("db/auth.users.csv")
	logo := find("objects/")
	changed := func(i int, fn func([]byte) []byte) []entry {
		out := append([]entry{}, entries...)
		out[i].data = fn(append([]byte{}, out[i].data...))
		return out
	}
	cases := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"changed byte", writeEntries(t, changed(users, func(b []byte) []byte { b[len(b)-3] ^= 1; return b })), "does not match its SHA-256"},
		{"changed object", writeEntries(t, changed(logo, func(b []byte) []byte { b[10] ^= 0xff; return b })), "does not match its SHA-256"},
		{"longer file", writeEntries(t, changed(users, func(b []byte) []byte { return append(b, "x\n"...) })), "bytes, the manifest says"},
		{"extra file", writeEntries(t, append(append([]entry{}, entries[:len(entries)-1]...), entry{name: "db/auth.extra.csv", data: []byte("x")}, entries[len(entries)-1])), "not listed in the manifest"},
		{"extra listed file", writeEntries(t, withManifest(t, append(append([]entry{}, entries[:len(entries)-1]...), entry{name: "notes.txt", data: []byte("x")}, entries[len(entries)-1]),
			func(m *tenancy.Manifest) {
				m.Files = append(m.Files, tenancy.ManifestEntry{Path: "notes.txt", Size: 1, SHA256: sum([]byte("x"))})
			})), "neither a table nor an object"},
		{"missing file", writeEntries(t, append(append([]entry{}, entries[:logo]...), entries[logo+1:]...)), "listed in the manifest but missing"},
		{"missing manifest", writeEntries(t, entries[:len(entries)-1]), "manifest.json is missing"},
		{"path traversal", writeEntries(t, append([]entry{{name: "../../etc/cron.d/x", data: []byte("x")}}, entries...)), "leaves its directory"},
		{"absolute path", writeEntries(t, append([]entry{{name: "/etc/x", data: []byte("x")}}, entries...)), "absolute path"},
		{"symlink", writeEntries(t, append([]entry{{name: "objects/link", typ: tar.TypeSymlink}}, entries...)), "not a regular file"},
		{"wrong hash", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Files[1].SHA256 = strings.Repeat("0", 64) })), "does not match its SHA-256"},
		{"wrong version", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Version = 99 })), "format version 99"},
		{"traversing object key", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) { m.Objects[0].Key = "../x" })), "names object"},
		{"manifest not last", writeEntries(t, append(append([]entry{}, entries...), entry{name: "late.txt", data: []byte("x")})), "follows the manifest"},
		{"not gzip", []byte("plain text"), "not a gzip-compressed archive"},
		{"truncated", archive[:len(archive)/2], "damaged"},
		{"table renamed in the manifest only", writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) {
			m.Tables[0].Name = "auth.sessions"
		})), "oddly"},
		{"never imported table", writeEntries(t, renameTable(t, entries, "app.orders", "auth.sessions")), "auth.sessions, which is never imported"},
		{"table unknown here", writeEntries(t, renameTable(t, entries, "app.orders", "app.invoices")), "app.invoices does not exist here"},
	}
	before := e.counts()
	for _, c := range cases {
		_, err := e.svc.Import(e.ctx, bytes.NewReader(c.archive), tenancy.ImportOptions{Slug: "acme-copy"})
		if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line with %q", c.name, err, c.want)
		}
	}
	if after := e.counts(); after != before {
		t.Errorf("a refused import wrote something: %s, then %s", before, after)
	}
	// The untouched archive still imports.
	if _, err := e.svc.Import(e.ctx, bytes.NewReader(archive), tenancy.ImportOptions{Slug: "acme-copy"}); err != nil {
		t.Fatal(err)
	}
}

// renameTable gives a table of the archive another name, consistently:
// its file, its manifest entry and the file's listing.
func renameTable(t *testing.T, entries []entry, from, to string) []entry {
	t.Helper()
	out := append([]entry{}, entries...)
	for i := range out {
		if out[i].name == tenancy.TableFile(from) {
			out[i].name = tenancy.TableFile(to)
		}
	}
	return withManifest(t, out, func(m *tenancy.Manifest) {
		for i := range m.Tables {
			if m.Tables[i].Name == from {
				m.Tables[i].Name, m.Tables[i].File = to, tenancy.TableFile(to)
			}
		}
		for i := range m.Files {
			if m.Files[i].Path == tenancy.TableFile(from) {
				m.Files[i].Path = tenancy.TableFile(to)
			}
		}
	})
}

// counts sums up what exists: tenants, users, and buckets.
func (e *exportEnv) counts() string {
	e.t.Helper()
	var tenants, users int
	if err := e.db.Admin.QueryRow(e.ctx, `SELECT count(*) FROM tenants.tenants`).Scan(&tenants); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.Admin.QueryRow(e.ctx, `SELECT count(*) FROM auth.users`).Scan(&users); err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	rows, _ := e.db.Admin.Query(e.ctx, `SELECT id::text FROM tenants.tenants`)
	ids, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	objects := 0
	for _, id := range ids {
		e.store.ListObjects(e.ctx, tenancy.TenantBucket(id), "", func(tenancy.ObjectInfo) error { objects++; return nil })
	}
	b, _ := json.Marshal([]int{tenants, users, objects})
	return string(b)
}

func TestImportUndoesObjectsWhenTheTransactionFails(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	archive := e.export("acme")
	before := e.counts()
	// Another tenant takes the slug the import asks for after the first
	// pass has checked it: the transaction fails late, after the uploads.
	entries := readEntries(t, archive)
	var m tenancy.Manifest
	json.Unmarshal(entries[len(entries)-1].data, &m)
	// A product row pointing nowhere breaks the orders' foreign key.
	i := 0
	for j, en := range entries {
		if en.name == "db/app.orders.csv" {
			i = j
		}
	}
	lines := strings.SplitN(string(entries[i].data), "\n", 3)
	cols := strings.Split(lines[1], ",")
	cols[2] = "00000000-0000-0000-0000-000000000000" // product_id
	entries[i].data = []byte(lines[0] + "\n" + strings.Join(cols, ",") + "\n" + lines[2])
	entries = withManifest(t, entries, func(m *tenancy.Manifest) {
		for k := range m.Files {
			if m.Files[k].Path == "db/app.orders.csv" {
				m.Files[k].Size, m.Files[k].SHA256 = int64(len(entries[i].data)), sum(entries[i].data)
			}
		}
	})
	_, err := e.svc.Import(e.ctx, bytes.NewReader(writeEntries(t, entries)), tenancy.ImportOptions{Slug: "acme-copy"})
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("import with a broken foreign key: %v", err)
	}
	t.Log(err)
	if after := e.counts(); after != before {
		t.Errorf("a failed import left something behind: %s, then %s", before, after)
	}
}

func TestExportSeesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	e.richTenant("globex", tenancy.StrategySchema)
	for _, slug := range []string{"acme", "globex"} {
		m := e.manifestOf(e.export(slug))
		byName := map[string]int64{}
		for _, tb := range m.Tables {
			byName[tb.Name] = tb.Rows
		}
		if byName["auth.users"] != 2 || byName["app.products"] != 50 || byName["tenants.tenant_domains"] != 2 || len(m.Objects) != 2 {
			t.Errorf("%s: tables %v, %d objects", slug, byName, len(m.Objects))
		}
		for name := range byName {
			if _, bad := tenancy.NotExported[name]; bad {
				t.Errorf("%s: exported %s", slug, name)
			}
		}
	}
}

// A table added after this code was written, such as a log with a serial
// key of its own, is exported from the catalog and imported with new keys.
func TestExportIncludesTablesAddedLater(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	for _, sql := range []string{
		`CREATE SCHEMA extra`,
		`CREATE TABLE extra.events (
			id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			tenant_id uuid NOT NULL REFERENCES tenants.tenants (id),
			ref       uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
			action    text NOT NULL,
			at        timestamptz NOT NULL DEFAULT now())`,
		`CREATE INDEX ON extra.events (tenant_id)`,
		`SELECT tenants.enable_tenant_rls('extra.events')`,
		`GRANT USAGE ON SCHEMA extra TO ` + pgx.Identifier{e.db.AppRole}.Sanitize(),
		`GRANT SELECT, INSERT ON extra.events TO ` + pgx.Identifier{e.db.AppRole}.Sanitize(),
		// A platform table the application role may not read: exported on
		// the owner's path, still only this tenant's rows.
		`CREATE TABLE extra.notes (tenant_id uuid NOT NULL, note text NOT NULL, PRIMARY KEY (tenant_id, note))`,
		`SELECT tenants.enable_tenant_rls('extra.notes')`,
	} {
		if _, err := e.db.Admin.Exec(e.ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	src := e.richTenant("acme", tenancy.StrategyRLS)
	e.asOwner(src.ID, func(tx pgx.Tx) {
		if _, err := tx.Exec(e.ctx, `INSERT INTO extra.events (tenant_id, action) SELECT $1, 'action ' || i FROM generate_series(1, 5) i`, src.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(e.ctx, `INSERT INTO extra.notes VALUES ($1, 'mine')`, src.ID); err != nil {
			t.Fatal(err)
		}
	})
	other := e.richTenant("globex", tenancy.StrategyRLS)
	e.asOwner(other.ID, func(tx pgx.Tx) {
		if _, err := tx.Exec(e.ctx, `INSERT INTO extra.notes VALUES ($1, 'not yours')`, other.ID); err != nil {
			t.Fatal(err)
		}
	})
	archive := e.export("acme")
	found := 0
	for _, tb := range e.manifestOf(archive).Tables {
		if tb.Name == "extra.events" && tb.Rows == 5 || tb.Name == "extra.notes" && tb.Rows == 1 {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("extra.events not exported: %+v", e.manifestOf(archive).Tables)
	}
	res, err := e.svc.Import(e.ctx, bytes.NewReader(archive), tenancy.ImportOptions{Slug: "acme-copy"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := e.rows("extra.events", src.ID, "id", "ref"), e.rows("extra.events", res.Tenant.ID, "id", "ref")
	if len(a) != 5 || !reflect.DeepEqual(a, b) {
		t.Errorf("events:\n%v\n%v", a, b)
	}
	if got := e.rows("extra.notes", res.Tenant.ID); len(got) != 1 || !strings.Contains(got[0], "mine") {
		t.Errorf("notes: %v", got)
	}
}

// forge writes entries as an archive whose manifest lists every file with
// its actual size and hash: an archive altered by someone who recomputed
// the manifest, which no hash tells from a genuine one.
func forge(t *testing.T, entries []entry) []byte {
	t.Helper()
	data := map[string][]byte{}
	for _, en := range entries {
		data[en.name] = en.data
	}
	return writeEntries(t, withManifest(t, entries, func(m *tenancy.Manifest) {
		for i := range m.Files {
			b := data[m.Files[i].Path]
			m.Files[i].Size, m.Files[i].SHA256 = int64(len(b)), sum(b)
		}
	}))
}

// editCSV rewrites each row of a table's file with fn, which gets the row
// by column name. Values are split at commas, so it is for files whose
// values hold no commas or line breaks (auth.users of richTenant).
func editCSV(t *testing.T, entries []entry, table string, fn func(row map[string]string)) []entry {
	t.Helper()
	out := append([]entry{}, entries...)
	for i := range out {
		if out[i].name != tenancy.TableFile(table) {
			continue
		}
		lines := strings.Split(strings.TrimSuffix(string(out[i].data), "\n"), "\n")
		header := strings.Split(lines[0], ",")
		for j, line := range lines[1:] {
			vals := strings.Split(line, ",")
			if len(vals) != len(header) {
				t.Fatalf("%s: line %q has a comma in a value", table, line)
			}
			row := map[string]string{}
			for k, h := range header {
				row[h] = vals[k]
			}
			fn(row)
			for k, h := range header {
				vals[k] = row[h]
			}
			lines[j+1] = strings.Join(vals, ",")
		}
		out[i].data = []byte(strings.Join(lines, "\n") + "\n")
		return out
	}
	t.Fatalf("no file for %s", table)
	return nil
}

// appendRow adds a row to a table's file; columns row does not name are
// NULL.
func appendRow(t *testing.T, entries []entry, table string, row map[string]string) []entry {
	t.Helper()
	out := append([]entry{}, entries...)
	for i := range out {
		if out[i].name != tenancy.TableFile(table) {
			continue
		}
		header, _, _ := strings.Cut(string(out[i].data), "\n")
		var vals []string
		for _, h := range strings.Split(header, ",") {
			vals = append(vals, row[h])
		}
		out[i].data = append(append([]byte{}, out[i].data...), strings.Join(vals, ",")+"\n"...)
		return out
	}
	t.Fatalf("no file for %s", table)
	return nil
}

// Every byte of an archive is its author's, the manifest's hashes too: an
// import keeps no password hash and no time in the future from it.
func TestImportSetsNoPasswordsFromTheArchive(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	entries := editCSV(t, readEntries(t, e.export("acme")), "auth.users", func(row map[string]string) {
		row["password_hash"] = "$2a$10$forgedforgedforgedforgedforgedforgedforgedforgedforged"
		row["created_at"] = "2099-01-01 00:00:00+00"
		row["updated_at"] = "2099-01-01 00:00:00+00"
		row["last_sign_in_at"] = "2099-01-01 00:00:00+00"
	})
	res, err := e.svc.Import(e.ctx, bytes.NewReader(forge(t, entries)), tenancy.ImportOptions{Slug: "acme-copy"})
	if err != nil {
		t.Fatal(err)
	}
	e.asOwner(res.Tenant.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM auth.users WHERE tenant_id = $1`, res.Tenant.ID); n != 2 {
			t.Fatalf("%d users imported, want 2", n)
		}
		if n := count(t, tx, `SELECT count(*) FROM auth.users WHERE tenant_id = $1 AND password_hash IS NOT NULL`, res.Tenant.ID); n != 0 {
			t.Errorf("%d imported users have the archive's password hash", n)
		}
		if n := count(t, tx, `
			SELECT count(*) FROM auth.users WHERE tenant_id = $1
			AND (created_at > now() OR updated_at > now() OR last_sign_in_at > now())`, res.Tenant.ID); n != 0 {
			t.Errorf("%d imported users keep a time in the future", n)
		}
	})
}

// A person keeps one id across tenants; an archive may not give another
// person's id to an account of its own.
func TestImportRefusesAnotherPersonsUserID(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	tenants := postgres.NewTenantService(e.db, tenancy.ModeHybrid)
	victim, err := tenants.CreateTenant(e.ctx, tenancy.NewTenant{Name: "Globex", Slug: "globex", Owner: "vic@globex.example"})
	if err != nil {
		t.Fatal(err)
	}
	entries := readEntries(t, e.export("acme"))
	// bob@acme takes the victim's id, in every file that names it.
	var bobID string
	editCSV(t, entries, "auth.users", func(row map[string]string) {
		if row["email"] == "bob@acme.example" {
			bobID = row["id"]
		}
	})
	withID := func(email string) []entry {
		out := append([]entry{}, entries...)
		for i := range out {
			if strings.HasPrefix(out[i].name, tenancy.TablesDir) {
				out[i].data = bytes.ReplaceAll(out[i].data, []byte(bobID), []byte(victim.Owner.ID))
			}
		}
		return editCSV(t, out, "auth.users", func(row map[string]string) {
			if row["id"] == victim.Owner.ID {
				row["email"] = email
			}
		})
	}
	before := e.counts()
	_, err = e.svc.Import(e.ctx, bytes.NewReader(forge(t, withID("bob@acme.example"))), tenancy.ImportOptions{Slug: "acme-copy"})
	if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), "has an account in another tenant under another email") ||
		strings.Contains(err.Error(), "\n") {
		t.Fatalf("import of an account with another person's id: %v", err)
	}
	if after := e.counts(); after != before {
		t.Errorf("a refused import wrote something: %s, then %s", before, after)
	}
	// The same person (the email compared without case) keeps the id.
	res, err := e.svc.Import(e.ctx, bytes.NewReader(forge(t, withID("VIC@globex.example"))), tenancy.ImportOptions{Slug: "acme-copy"})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.rows("auth.users", res.Tenant.ID, "created_at", "updated_at", "last_sign_in_at", "name", "password_hash"); !slices.ContainsFunc(got, func(r string) bool {
		return strings.Contains(r, victim.Owner.ID) && strings.Contains(r, "VIC@globex.example")
	}) {
		t.Errorf("users = %v", got)
	}
}

// An archive reaches only the new tenant's own tables: not another schema
// tenant's, and not the records the platform keeps about a tenant.
func TestImportKeepsToTheTenantsOwnTables(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	src := e.richTenant("acme", tenancy.StrategyRLS)
	other := mustCreateTenant(t, e.db, "globex", tenancy.StrategySchema)
	entries := readEntries(t, e.export("acme"))
	productsOf := func(schema, tenantID string) int {
		var n int
		e.asOwner(tenantID, func(tx pgx.Tx) {
			n = count(t, tx, `SELECT count(*) FROM `+pgx.Identifier{schema, "products"}.Sanitize())
		})
		return n
	}

	before := e.counts()
	for _, to := range []string{other.SchemaName + ".products", "app.products_x"} {
		_, err := e.svc.Import(e.ctx, bytes.NewReader(writeEntries(t, renameTable(t, entries, "app.products", to))), tenancy.ImportOptions{Slug: "acme-copy"})
		if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), "table "+to+" ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("archive naming %s: %v", to, err)
		}
	}
	if n := productsOf(other.SchemaName, other.ID); n != 0 {
		t.Errorf("globex has %d products after refused imports", n)
	}
	if after := e.counts(); after != before {
		t.Errorf("a refused import wrote something: %s, then %s", before, after)
	}

	// Forged audit entries, usage and payments are left out with a note.
	forged := appendRow(t, entries, "audit.events", map[string]string{
		"tenant_id": src.ID, "id": "11111111-1111-1111-1111-111111111111", "at": "2020-01-01 00:00:00+00",
		"actor_kind": "admin", "actor_id": "1", "actor": "root", "action": "tenant.purge", "target": "acme", "summary": "x",
	})
	forged = appendRow(t, forged, "public.billing_payments", map[string]string{
		"tenant_id": src.ID, "id": "22222222-2222-2222-2222-222222222222", "stripe_invoice_id": "in_forged",
		"status": "paid", "amount_cents": "9900", "currency": "usd", "occurred_at": "2020-01-01 00:00:00+00",
	})
	forged = appendRow(t, forged, "public.billing_usage_counters", map[string]string{
		"tenant_id": src.ID, "period": "2020-01-01", "service_name": "api_requests", "used": "0",
		"reserved": "0", "last_grant": "0", "updated_at": "2020-01-01 00:00:00+00",
	})
	res, err := e.svc.Import(e.ctx, bytes.NewReader(forge(t, forged)), tenancy.ImportOptions{Slug: "acme-copy"})
	if err != nil {
		t.Fatal(err)
	}
	e.asOwner(res.Tenant.ID, func(tx pgx.Tx) {
		for sql, want := range map[string]int{
			`SELECT count(*) FROM audit.events WHERE tenant_id = $1`:                              1,
			`SELECT count(*) FROM audit.events WHERE tenant_id = $1 AND action = 'tenant.import'`: 1,
			`SELECT count(*) FROM public.billing_payments WHERE tenant_id = $1`:                   0,
			`SELECT count(*) FROM public.billing_usage_counters WHERE tenant_id = $1`:             0,
			`SELECT count(*) FROM public.billing_usage_records WHERE tenant_id = $1`:              0,
		} {
			if n := count(t, tx, sql, res.Tenant.ID); n != want {
				t.Errorf("%s = %d, want %d", sql, n, want)
			}
		}
	})
	for _, table := range []string{"audit.events", "public.billing_payments", "public.billing_usage_counters"} {
		if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.HasPrefix(n, table+" left out") }) {
			t.Errorf("notes %q: want %s named as left out", res.Notes, table)
		}
	}
	if n := productsOf("app", res.Tenant.ID); n != 50 {
		t.Errorf("the import has %d products, want 50", n)
	}
}

// twoFaced is an archive that is one thing when first read and another
// after it is rewound.
type twoFaced struct {
	r      *bytes.Reader
	second []byte
}

func (f *twoFaced) Read(p []byte) (int, error) { return f.r.Read(p) }

func (f *twoFaced) Seek(offset int64, whence int) (int64, error) {
	if f.second != nil {
		f.r, f.second = bytes.NewReader(f.second), nil
	}
	return f.r.Seek(offset, whence)
}

// The second pass, which writes, sees every file the first pass verified,
// once, and the gzip stream to its end.
func TestImportRefusesAnArchiveThatChangesBetweenReads(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	e.richTenant("acme", tenancy.StrategyRLS)
	archive := e.export("acme")
	entries := readEntries(t, archive)
	var logo int
	for i, en := range entries {
		if strings.HasPrefix(en.name, tenancy.ObjectsDir) {
			logo = i
		}
	}
	badCRC := append([]byte{}, archive...)
	badCRC[len(badCRC)-8] ^= 0xff // the gzip trailer's CRC-32
	cases := []struct {
		name   string
		second []byte
		want   string
	}{
		{"a file missing", writeEntries(t, append(append([]entry{}, entries[:logo]...), entries[logo+1:]...)), "changed while it was read"},
		{"a file twice", writeEntries(t, append(append([]entry{}, entries[:logo+1]...), entries[logo:]...)), "changed while it was read"},
		{"the manifest missing", writeEntries(t, entries[:len(entries)-1]), "changed while it was read"},
		{"a bad gzip checksum", badCRC, "damaged"},
	}
	before := e.counts()
	for _, c := range cases {
		_, err := e.svc.Import(e.ctx, &twoFaced{r: bytes.NewReader(archive), second: c.second}, tenancy.ImportOptions{Slug: "acme-copy"})
		if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line with %q", c.name, err, c.want)
		}
	}
	if after := e.counts(); after != before {
		t.Errorf("a refused import wrote something: %s, then %s", before, after)
	}
	if _, err := e.svc.Import(e.ctx, &twoFaced{r: bytes.NewReader(archive), second: archive}, tenancy.ImportOptions{Slug: "acme-copy"}); err != nil {
		t.Fatal(err)
	}
}

// CreateTenant --owner ID copies an account of that person; accounts may
// have come from archives (before imports kept no password or future time),
// so their times choose nothing, and accounts that disagree on the email
// are not one person's.
func TestCreateOwnerByIDTrustsNoImportedAccount(t *testing.T) {
	t.Parallel()
	e := newExportEnv(t)
	tenants := postgres.NewTenantService(e.db, tenancy.ModeHybrid)
	a, err := tenants.CreateTenant(e.ctx, tenancy.NewTenant{Name: "A", Slug: "tenant-a", Owner: "ann@example.com", OwnerPassword: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	ann := a.Owner.ID
	hashOf := func(tenantID string) *string {
		var h *string
		e.asOwner(tenantID, func(tx pgx.Tx) {
			if err := tx.QueryRow(e.ctx, `SELECT password_hash FROM auth.users WHERE tenant_id = $1 AND id = $2`, tenantID, ann).Scan(&h); err != nil {
				t.Fatal(err)
			}
		})
		return h
	}
	// One account: copied with its password.
	c1, err := tenants.CreateTenant(e.ctx, tenancy.NewTenant{Name: "C1", Slug: "tenant-c1", Owner: ann})
	if err != nil {
		t.Fatal(err)
	}
	if h := hashOf(c1.Tenant.ID); h == nil || *h != *hashOf(a.Tenant.ID) || c1.PasswordToken != "" {
		t.Errorf("the only account's password was not copied (token %q)", c1.PasswordToken)
	}
	// An account of the same email with another password, dated in the
	// future: no password is copied; the owner sets one with a link.
	planted := mustCreateTenant(t, e.db, "tenant-b", tenancy.StrategyRLS)
	plant := func(email string) {
		e.asOwner(planted.ID, func(tx pgx.Tx) {
			if _, err := tx.Exec(e.ctx, `DELETE FROM auth.users WHERE tenant_id = $1 AND id = $2`, planted.ID, ann); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(e.ctx, `
				INSERT INTO auth.users (tenant_id, id, email, password_hash, created_at)
				VALUES ($1, $2, $3, 'planted', '2099-01-01')`, planted.ID, ann, email); err != nil {
				t.Fatal(err)
			}
		})
	}
	plant("ANN@example.com")
	c2, err := tenants.CreateTenant(e.ctx, tenancy.NewTenant{Name: "C2", Slug: "tenant-c2", Owner: ann})
	if err != nil {
		t.Fatal(err)
	}
	if h := hashOf(c2.Tenant.ID); h != nil || c2.PasswordToken == "" || !strings.EqualFold(c2.Owner.Email, "ann@example.com") {
		t.Errorf("accounts with different passwords: owner %+v, hash %v, token %q", c2.Owner, h, c2.PasswordToken)
	}
	// An account of another email under the id: refused.
	plant("mallory@example.com")
	_, err = tenants.CreateTenant(e.ctx, tenancy.NewTenant{Name: "C3", Slug: "tenant-c3", Owner: ann})
	wantError(t, err, tenancy.ECONFLICT, "different email addresses")
}
