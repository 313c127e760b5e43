package blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/tenancy"
)

func TestStoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := blobtest.New(t)
	bucket := tenancy.TenantBucket(blobtest.Tenant(t, s))
	if len(bucket) != 43 {
		t.Errorf("bucket name %q has %d characters", bucket, len(bucket))
	}
	// The bucket does not exist yet: Put makes it.
	if err := s.Put(ctx, bucket, "logos/main/a.png", []byte("first"), "image/png"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, bucket, "logos/main/a.png")
	if err != nil || string(got) != "first" {
		t.Fatalf("get = %q, %v", got, err)
	}
	info, err := s.Client().StatObject(ctx, bucket, "logos/main/a.png", minioStat)
	if err != nil || info.ContentType != "image/png" || info.Size != 5 {
		t.Errorf("stat = %+v, %v", info, err)
	}
	if err := s.Put(ctx, bucket, "logos/main/a.png", []byte("second"), "image/png"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, bucket, "logos/main/a.png"); string(got) != "second" {
		t.Errorf("after overwrite: %q", got)
	}
	if err := s.Remove(ctx, bucket, "logos/main/a.png"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, bucket, "logos/main/a.png"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("get after remove: %v, want not found", err)
	}
	if ok, err := s.Exists(ctx, bucket, "logos/main/a.png"); ok || err != nil {
		t.Errorf("exists after remove: %v, %v", ok, err)
	}
	// Removing again, or from a bucket that was never made, is no error.
	if err := s.Remove(ctx, bucket, "logos/main/a.png"); err != nil {
		t.Errorf("remove again: %v", err)
	}
	other := tenancy.TenantBucket(blobtest.Tenant(t, s))
	if err := s.Remove(ctx, other, "x"); err != nil {
		t.Errorf("remove from missing bucket: %v", err)
	}
	if _, err := s.Get(ctx, other, "x"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("get from missing bucket: %v, want not found", err)
	}
	if err := s.EnsureBucket(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx, other); err != nil {
		t.Errorf("ensure twice: %v", err)
	}
}

// A bucket removed behind the store's back is made again on the next Put.
func TestStoreRemakesBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := blobtest.New(t)
	bucket := tenancy.TenantBucket(blobtest.Tenant(t, s))
	if err := s.EnsureBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if err := s.Client().RemoveBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, bucket, "k", []byte("v"), "text/plain"); err != nil {
		t.Fatalf("put after bucket removed: %v", err)
	}
}

// An unreachable store fails fast, with an error that says so.
func TestStoreUnreachable(t *testing.T) {
	t.Parallel()
	s := blobtest.Unreachable(t)
	start := time.Now()
	err := s.Put(context.Background(), tenancy.TenantBucket(uuid.NewString()), "k", []byte("v"), "text/plain")
	if !errors.Is(err, blob.ErrUnavailable) || !strings.Contains(err.Error(), "object storage is unreachable at 127.0.0.1:1") {
		t.Errorf("put: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %s to fail", d)
	}
	if _, err := s.Get(context.Background(), "tenant-x", "k"); !errors.Is(err, blob.ErrUnavailable) {
		t.Errorf("get: %v, want ErrUnavailable", err)
	}
}

// A store that accepts connections and never answers fails each call
// within its timeout, as file storage unavailable.
func TestStoreNeverAnswers(t *testing.T) {
	t.Parallel()
	hole := faulttest.NewBlackhole(t)
	cfg := blobtest.Config(t)
	cfg.Endpoint, cfg.Timeout = hole.Addr(), time.Second
	s, err := blob.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Get(context.Background(), tenancy.TenantBucket(uuid.NewString()), "k")
	var te *tenancy.Error
	if !errors.As(err, &te) || te.Code != tenancy.EUNAVAILABLE || te.Service != tenancy.ServiceStorage || !errors.Is(err, blob.ErrUnavailable) {
		t.Errorf("get: %v, want file storage unavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("failed after %s; the timeout is 1s", d)
	}
}

// A store that stops answering in the middle of a stream fails it once
// nothing has moved for the call timeout, although a stream as a whole
// may last longer than that.
func TestStreamStallFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := blobtest.Config(t)
	direct := blobtest.New(t)
	proxy := faulttest.NewProxy(t, cfg.Endpoint)
	cfg.Endpoint, cfg.Timeout = proxy.Addr(), time.Second
	s, err := blob.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bucket := tenancy.TenantBucket(blobtest.Tenant(t, direct))
	data := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB
	if err := direct.Put(ctx, bucket, "big", data, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	r, _, err := s.OpenObject(ctx, bucket, "big")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 1<<10)); err != nil {
		t.Fatal(err)
	}
	proxy.Freeze()
	defer proxy.Restore()
	start := time.Now()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, r); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the stream ended without an error")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("failed after %s; the timeout is 1s", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the stream still waits 15 s after the store stopped answering")
	}
}

func TestNewNeedsEndpoint(t *testing.T) {
	if _, err := blob.New(blob.Config{}); err == nil || !strings.Contains(err.Error(), "MINIO_ENDPOINT is not set") {
		t.Errorf("New without endpoint: %v", err)
	}
}

var minioStat = minio.StatObjectOptions{}

func TestExpireObjects(t *testing.T) {
	t.Parallel()
	s := blobtest.New(t)
	ctx := context.Background()
	bucket := "test-expire-" + uuid.NewString()[:8]
	if err := s.ExpireObjects(ctx, bucket, 2); err != nil {
		t.Fatal(err)
	}
	cfg, err := s.Client().GetBucketLifecycle(ctx, bucket)
	if err != nil || len(cfg.Rules) != 1 || cfg.Rules[0].Expiration.Days != 2 {
		t.Fatalf("lifecycle = %+v, %v", cfg, err)
	}
	s.Client().RemoveBucket(ctx, bucket)
}

// Size is what a tenant stores: every object of its bucket, and nothing for
// a bucket not made yet.
func TestSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := blobtest.New(t)
	bucket := tenancy.TenantBucket(blobtest.Tenant(t, s))
	if n, err := s.Size(ctx, bucket); err != nil || n != 0 {
		t.Fatalf("missing bucket: %d, %v", n, err)
	}
	for key, body := range map[string]string{"logos/main/a.png": "12345", "logos/icon/b.png": "123", "c": "1"} {
		if err := s.Put(ctx, bucket, key, []byte(body), "image/png"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Size(ctx, bucket); err != nil || n != 9 {
		t.Errorf("size = %d, %v; want 9", n, err)
	}
}

// A tenant's export archives count as its storage, and no other tenant's.
func TestTenantSizeCountsExportArchives(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := blobtest.New(t)
	tenant, other := blobtest.Tenant(t, s), blobtest.Tenant(t, s)
	put := func(bucket, key string, n int) {
		t.Helper()
		if err := s.Put(ctx, bucket, key, []byte(strings.Repeat("x", n)), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	put(tenancy.TenantBucket(tenant), "logos/main/a.png", 5)
	put(tenancy.ExportBucket, tenancy.ExportKey(tenant, uuid.NewString()), 100)
	put(tenancy.ExportBucket, tenancy.ExportKey(tenant, uuid.NewString()), 20)
	put(tenancy.ExportBucket, tenancy.ExportKey(other, uuid.NewString()), 1000)
	if n, err := s.TenantSize(ctx, tenant); err != nil || n != 125 {
		t.Errorf("tenant size = %d, %v; want 125", n, err)
	}
	if n, err := s.TenantSize(ctx, uuid.NewString()); err != nil || n != 0 {
		t.Errorf("a tenant with nothing: %d, %v", n, err)
	}
}

func TestStatAndAbortUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := blobtest.New(t)
	bucket := "test-abort-" + uuid.NewString()[:8]
	if err := s.Put(ctx, bucket, "a", []byte("abc"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, bucket, "a")
	if err != nil || info.Size != 3 || time.Since(info.Modified) > time.Minute || info.Modified.After(time.Now().Add(time.Minute)) {
		t.Fatalf("stat = %+v, %v", info, err)
	}
	if _, err := s.Stat(ctx, bucket, "missing"); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("stat of a missing object: %v", err)
	}
	// A multipart upload left unfinished, as by a process killed midway.
	core := minio.Core{Client: s.Client()}
	id, err := core.NewMultipartUpload(ctx, bucket, "big", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.PutObjectPart(ctx, bucket, "big", id, 1, strings.NewReader("part"), 4, minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		res, err := core.ListMultipartUploads(ctx, bucket, "big", "", "", "", 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Uploads)
	}
	if pending() != 1 {
		t.Fatal("no unfinished upload to abort")
	}
	if err := s.AbortUploads(ctx, bucket, "big"); err != nil {
		t.Fatal(err)
	}
	if n := pending(); n != 0 {
		t.Errorf("%d unfinished uploads left", n)
	}
	if err := s.AbortUploads(ctx, "test-missing-"+uuid.NewString()[:8], "x"); err != nil {
		t.Errorf("abort in a missing bucket: %v", err)
	}
	s.Remove(ctx, bucket, "a")
	s.Client().RemoveBucket(ctx, bucket)
}

// A bucket removed while MinIO is still loading its buckets after a start
// stays removed. The load heals every bucket it listed at the start and
// makes again, empty, one gone from the disk; so the removal waits until
// the load is over. Many buckets make the load last, and the bucket
// removed sorts last, so that it is loaded last.
func TestRemoveBucketWhileTheStoreLoadsItsBuckets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := faulttest.StartMinIO(t)
	s, err := blob.New(blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 80 {
		if err := s.EnsureBucket(ctx, fmt.Sprintf("filler-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	const bucket = "zz-removed"
	if err := s.Put(ctx, bucket, "k", []byte("v"), "text/plain"); err != nil {
		t.Fatal(err)
	}

	m.Restart(t)
	refused := 0
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := s.RemoveAll(ctx, bucket, "")
		if err == nil {
			err = s.RemoveBucket(ctx, bucket)
		}
		if err == nil {
			break
		}
		if tenancy.ErrorCode(err) != tenancy.EUNAVAILABLE {
			t.Fatalf("remove: %v, want done or file storage unavailable", err)
		}
		refused++
		if time.Now().After(deadline) {
			t.Fatalf("remove: still refused after 30s: %v", err)
		}
	}
	if refused == 0 {
		t.Error("the store had loaded its buckets before the first removal: the test needs more of them to check anything")
	}
	// Once the load is over, a bucket it healed would be here.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + m.Endpoint + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the store did not load its buckets in 30s")
		}
	}
	if ok, err := s.Client().BucketExists(ctx, bucket); ok || err != nil {
		t.Errorf("after the removal the bucket exists: %v, %v", ok, err)
	}
}

// A bucket the load makes again after its removal, where the load ends
// before the removal's check, is removed once more. Here a proxy in front
// of the test MinIO makes the bucket again, as the load's heal would, the
// first time it is removed; the store has loaded its buckets.
func TestRemoveBucketMadeAgainAsTheLoadEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	direct := blobtest.New(t)
	bucket := tenancy.TenantBucket(blobtest.Tenant(t, direct))
	if err := direct.EnsureBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	cfg := blobtest.Config(t)
	target := &url.URL{Scheme: "http", Host: cfg.Endpoint}
	var removals atomic.Int32
	front := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the request is signed for the proxy's address
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method == http.MethodDelete && resp.StatusCode == http.StatusNoContent && removals.Add(1) == 1 {
				return direct.Client().MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
			}
			return nil
		},
	})
	t.Cleanup(front.Close)
	cfg.Endpoint = strings.TrimPrefix(front.URL, "http://")
	s, err := blob.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveBucket(ctx, bucket); err != nil || removals.Load() != 2 {
		t.Fatalf("remove: %v after %d removal(s), want done after 2", err, removals.Load())
	}
	if ok, err := direct.Client().BucketExists(ctx, bucket); ok || err != nil {
		t.Errorf("after the removal the bucket exists: %v, %v", ok, err)
	}
}
