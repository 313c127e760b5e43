package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/png"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type logoEnv struct {
	t     *testing.T
	ctx   context.Context
	db    *postgres.DB
	store *blob.Store
	svc   *postgres.LogoService
}

func newLogoEnv(t *testing.T) *logoEnv {
	t.Helper()
	db := mustOpenDB(t)
	store := blobtest.New(t)
	return &logoEnv{t: t, ctx: context.Background(), db: db, store: store, svc: postgres.NewLogoService(db, store)}
}

func (e *logoEnv) exists(tenantID, key string) bool {
	e.t.Helper()
	ok, err := e.store.Exists(e.ctx, tenancy.TenantBucket(tenantID), key)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

func (e *logoEnv) rows(tenantID string) int {
	e.t.Helper()
	list, err := e.svc.ListLogos(e.ctx, tenantID)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(list)
}

func TestLogoUploadReplaceRemove(t *testing.T) {
	t.Parallel()
	e := newLogoEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	first := testPNG(t, 40, 20)

	l, err := e.svc.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, first)
	if err != nil {
		t.Fatal(err)
	}
	if l.ContentType != "image/png" || l.Width != 40 || l.Height != 20 || l.Size != int64(len(first)) ||
		len(l.SHA256) != 64 || l.ObjectKey != "logos/main/"+l.SHA256+".png" || l.CreatedAt.IsZero() {
		t.Errorf("uploaded %+v", l)
	}
	if !e.exists(acme.ID, l.ObjectKey) {
		t.Fatalf("object %s not in %s", l.ObjectKey, tenancy.TenantBucket(acme.ID))
	}
	got, b, err := e.svc.GetLogo(e.ctx, acme.ID, tenancy.LogoMain)
	if err != nil || !bytes.Equal(b, first) || got.SHA256 != l.SHA256 {
		t.Fatalf("get: %+v, %d bytes, %v", got, len(b), err)
	}

	// Uploading the same bytes again keeps the object.
	if again, err := e.svc.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, first); err != nil || again.ObjectKey != l.ObjectKey || !e.exists(acme.ID, l.ObjectKey) {
		t.Fatalf("same bytes again: %+v, %v", again, err)
	}

	// Replacing removes the old object once the row points to the new one.
	second := testPNG(t, 10, 10)
	r, err := e.svc.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, second)
	if err != nil {
		t.Fatal(err)
	}
	if r.ObjectKey == l.ObjectKey || !e.exists(acme.ID, r.ObjectKey) || e.exists(acme.ID, l.ObjectKey) {
		t.Errorf("replace: new %s present %v, old %s present %v", r.ObjectKey, e.exists(acme.ID, r.ObjectKey), l.ObjectKey, e.exists(acme.ID, l.ObjectKey))
	}
	if _, b, _ := e.svc.GetLogo(e.ctx, acme.ID, tenancy.LogoMain); !bytes.Equal(b, second) {
		t.Errorf("get after replace returned the old bytes")
	}

	icon, err := e.svc.UploadLogo(e.ctx, acme.ID, tenancy.LogoIcon, []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle r="8"/></svg>`))
	if err != nil {
		t.Fatal(err)
	}
	if icon.ContentType != "image/svg+xml" || !strings.HasSuffix(icon.ObjectKey, ".svg") || icon.Width != 16 {
		t.Errorf("icon %+v", icon)
	}
	list, err := e.svc.ListLogos(e.ctx, acme.ID)
	if err != nil || len(list) != 2 || list[0].Kind != tenancy.LogoMain || list[1].Kind != tenancy.LogoIcon {
		t.Fatalf("list: %+v, %v", list, err)
	}

	// Removing deletes the row and the object.
	if _, err := e.svc.RemoveLogo(e.ctx, acme.ID, tenancy.LogoMain); err != nil {
		t.Fatal(err)
	}
	if e.exists(acme.ID, r.ObjectKey) || e.rows(acme.ID) != 1 {
		t.Errorf("after remove: object present %v, %d rows", e.exists(acme.ID, r.ObjectKey), e.rows(acme.ID))
	}
	if _, _, err := e.svc.GetLogo(e.ctx, acme.ID, tenancy.LogoMain); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("get removed: %v", err)
	}
	if _, err := e.svc.RemoveLogo(e.ctx, acme.ID, tenancy.LogoMain); tenancy.ErrorCode(err) != tenancy.ENOTFOUND || err.Error() != "no main logo" {
		t.Errorf("remove again: %v", err)
	}
}

func TestLogoBadInput(t *testing.T) {
	t.Parallel()
	e := newLogoEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	for _, tt := range []struct {
		tenant string
		kind   tenancy.LogoKind
		data   []byte
		code   string
	}{
		{acme.ID, "banner", testPNG(t, 2, 2), tenancy.EINVALID},
		{"nope", tenancy.LogoMain, testPNG(t, 2, 2), tenancy.EINVALID},
		{acme.ID, tenancy.LogoMain, []byte("GIF89a"), tenancy.EINVALID},
		{acme.ID, tenancy.LogoMain, []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), tenancy.EINVALID},
	} {
		if _, err := e.svc.UploadLogo(e.ctx, tt.tenant, tt.kind, tt.data); tenancy.ErrorCode(err) != tt.code {
			t.Errorf("upload %s %s: %v, want %s", tt.tenant, tt.kind, err, tt.code)
		}
	}
	if e.rows(acme.ID) != 0 {
		t.Errorf("a refused upload left a row")
	}
}

// A row that cannot be written takes its object away with it.
func TestLogoUploadUndoneWhenTheRowFails(t *testing.T) {
	t.Parallel()
	e := newLogoEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	old, err := e.svc.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, testPNG(t, 3, 3))
	if err != nil {
		t.Fatal(err)
	}

	fail := errors.New("database gone")
	postgres.SetLogoBeforeCommit(e.svc, func(context.Context) error { return fail })
	data := testPNG(t, 4, 4)
	if _, err := e.svc.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, data); !errors.Is(err, fail) {
		t.Fatalf("upload: %v, want the hook's error", err)
	}
	postgres.SetLogoBeforeCommit(e.svc, nil)
	newKey := "logos/main/" + sha(data) + ".png"
	if e.exists(acme.ID, newKey) {
		t.Errorf("object of the failed upload left behind")
	}
	if !e.exists(acme.ID, old.ObjectKey) {
		t.Errorf("the current logo's object was removed")
	}
	if l, _, err := e.svc.GetLogo(e.ctx, acme.ID, tenancy.LogoMain); err != nil || l.ObjectKey != old.ObjectKey {
		t.Errorf("current logo after a failed upload: %+v, %v", l, err)
	}

	// A context cancelled while the row is written: the object goes too.
	ctx, cancel := context.WithCancel(e.ctx)
	postgres.SetLogoBeforeCommit(e.svc, func(context.Context) error { cancel(); return ctx.Err() })
	data = testPNG(t, 5, 5)
	if _, err := e.svc.UploadLogo(ctx, acme.ID, tenancy.LogoIcon, data); !errors.Is(err, context.Canceled) {
		t.Fatalf("upload with cancelled context: %v", err)
	}
	if e.exists(acme.ID, "logos/icon/"+sha(data)+".png") || e.rows(acme.ID) != 1 {
		t.Errorf("cancelled upload left its object or row")
	}

	// Failing again with the same bytes as the current logo keeps its object.
	postgres.SetLogoBeforeCommit(e.svc, func(context.Context) error { return fail })
	if _, err := e.svc.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, testPNG(t, 3, 3)); !errors.Is(err, fail) {
		t.Fatal(err)
	}
	if !e.exists(acme.ID, old.ObjectKey) {
		t.Errorf("a failed re-upload of the same bytes removed the current object")
	}
}

// With object storage down, uploading fails fast, says why and writes no row.
func TestLogoStorageUnreachable(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	acme := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	svc := postgres.NewLogoService(db, blobtest.Unreachable(t))
	start := time.Now()
	_, err := svc.UploadLogo(context.Background(), acme.ID, tenancy.LogoMain, testPNG(t, 2, 2))
	if !errors.Is(err, blob.ErrUnavailable) || !strings.Contains(err.Error(), "upload main logo: ") || !strings.Contains(err.Error(), "object storage is unreachable at 127.0.0.1:1") {
		t.Errorf("upload: %v", err)
	}
	if time.Since(start) > 15*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	if list, err := svc.ListLogos(context.Background(), acme.ID); err != nil || len(list) != 0 {
		t.Errorf("rows after a failed upload: %v, %v", list, err)
	}
}

// One tenant's logo is never read through another.
func TestLogoIsolation(t *testing.T) {
	t.Parallel()
	e := newLogoEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	beta := mustCreateTenant(t, e.db, "beta", tenancy.StrategySchema)
	l, err := e.svc.UploadLogo(e.ctx, acme.ID, tenancy.LogoMain, testPNG(t, 6, 6))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.GetLogo(e.ctx, beta.ID, tenancy.LogoMain); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("beta reads acme's logo: %v", err)
	}
	if list, _ := e.svc.ListLogos(e.ctx, beta.ID); len(list) != 0 {
		t.Errorf("beta lists %d logos", len(list))
	}
	if _, err := e.svc.RemoveLogo(e.ctx, beta.ID, tenancy.LogoMain); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("beta removes acme's logo: %v", err)
	}
	if e.exists(beta.ID, l.ObjectKey) || !e.exists(acme.ID, l.ObjectKey) {
		t.Errorf("object in the wrong bucket")
	}
	// Row-level security: beta's context sees no row of acme's.
	asTenant(t, e.db, beta.ID, func(tx pgx.Tx) {
		if n := count(t, tx, `SELECT count(*) FROM tenants.tenant_logos`); n != 0 {
			t.Errorf("beta sees %d logo rows", n)
		}
		mustRefuse(t, tx, `INSERT INTO tenants.tenant_logos (tenant_id, kind, object_key, content_type, size_bytes, width, height, sha256)
			VALUES ($1, 'main', 'x', 'image/png', 1, 1, 1, $2)`, acme.ID, strings.Repeat("a", 64))
	})
}

// Every change is announced on ChangeChannel, and the cache hears it.
func TestLogoCache(t *testing.T) {
	t.Parallel()
	e := newLogoEnv(t)
	acme := mustCreateTenant(t, e.db, "acme", tenancy.StrategyRLS)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	// Two processes: one changes logos, the other serves them from memory.
	writer := postgres.NewLogoService(e.db, e.store)
	tc := postgres.NewTenantCache(e.db, slog.Default())
	cache := postgres.NewLogoService(e.db, e.store).Cached(tc)
	go tc.Listen(ctx)
	select {
	case <-tc.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("cache not listening")
	}
	if l, err := cache.Logo(ctx, acme.ID, tenancy.LogoMain); err != nil || l != nil {
		t.Fatalf("no logo yet: %+v, %v", l, err)
	}
	up, err := writer.UploadLogo(ctx, acme.ID, tenancy.LogoMain, testPNG(t, 7, 7))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		l, _ := cache.Logo(ctx, acme.ID, tenancy.LogoMain)
		return l != nil && l.SHA256 == up.SHA256
	})
	_, b, err := cache.GetLogo(ctx, acme.ID, tenancy.LogoMain)
	if err != nil || sha(b) != up.SHA256 {
		t.Errorf("cache get: %v", err)
	}
	if _, err := writer.RemoveLogo(ctx, acme.ID, tenancy.LogoMain); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { l, _ := cache.Logo(ctx, acme.ID, tenancy.LogoMain); return l == nil })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
