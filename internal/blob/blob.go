// Package blob keeps objects (tenants' logos) in MinIO, or any S3-compatible
// store, through minio-go. Each tenant has a bucket of its own, named by
// tenancy.TenantBucket and made when first written to.
package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/lifecycle"

	"github.com/nself/nself/internal/tenancy"
)

// ErrUnavailable is wrapped by the errors of calls that could not reach
// the store; they are tenancy.EUNAVAILABLE errors naming file storage.
var ErrUnavailable = errors.New("object storage is unreachable")

// Config says where the store is.
type Config struct {
	Endpoint  string // host:port, without scheme
	AccessKey string
	SecretKey string
	UseSSL    bool
	// Timeout bounds each call, retries included; 10 seconds when zero.
	Timeout time.Duration
}

// Store implements tenancy.BlobStore.
type Store struct {
	client   *minio.Client
	endpoint string
	timeout  time.Duration
	http     *http.Client // for MinIO's health check, beside the S3 API

	mu      sync.Mutex
	buckets map[string]bool // known to exist
}

var _ tenancy.BlobStore = (*Store)(nil)

// New returns a store for cfg. It does not connect: the first call does.
func New(cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("MINIO_ENDPOINT is not set: logos need object storage")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	// A store that does not answer should fail a call in seconds, not
	// after minio-go's default ten retries with back-off.
	dialer := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return stallConn{Conn: c, timeout: cfg.Timeout}, nil
		},
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		ForceAttemptHTTP2:     true,
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.UseSSL,
		Region:     "us-east-1",
		Transport:  tr,
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("MINIO_ENDPOINT %q: %w", cfg.Endpoint, err)
	}
	return &Store{client: c, endpoint: cfg.Endpoint, timeout: cfg.Timeout,
		http: &http.Client{Transport: tr, Timeout: cfg.Timeout}, buckets: map[string]bool{}}, nil
}

// stallConn fails a read or a write that makes no progress for timeout.
// Streams (an export's upload, an object read into an archive) may last
// longer than a call's timeout, but a store that stops answering in the
// middle of one must not hold it forever.
type stallConn struct {
	net.Conn
	timeout time.Duration
}

func (c stallConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(b)
}

func (c stallConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

// Client is the underlying minio-go client, for benchmarks and tests.
func (s *Store) Client() *minio.Client { return s.client }

// wrap names the store in an error, and marks a store that could not be
// reached, did not answer in time or said it is unavailable, so that
// callers say so (503, "file storage is unavailable") rather than fail
// with an internal error.
func (s *Store) wrap(op, bucket, key string, err error) error {
	if unavailable(err) {
		return tenancy.Unavailable(tenancy.ServiceStorage,
			fmt.Errorf("%s %s/%s: %w at %s: %v", op, bucket, key, ErrUnavailable, s.endpoint, err))
	}
	return fmt.Errorf("%s %s/%s at %s: %w", op, bucket, key, s.endpoint, err)
}

// unavailable tells a failure to reach the store from the store's answer.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller left
	}
	if minio.IsNetworkOrHostDown(err, false) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errLoading) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	switch minio.ToErrorResponse(err).StatusCode {
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		// Starting, stopping or overloaded (SlowDown, XMinioServerNotInitialized).
		return true
	}
	return false
}

func code(err error) string { return minio.ToErrorResponse(err).Code }

// EnsureBucket makes the bucket unless it exists.
func (s *Store) EnsureBucket(ctx context.Context, bucket string) error {
	s.mu.Lock()
	known := s.buckets[bucket]
	s.mu.Unlock()
	if known {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"})
	if err != nil && code(err) != "BucketAlreadyOwnedByYou" && code(err) != "BucketAlreadyExists" {
		return s.wrap("make bucket", bucket, "", err)
	}
	s.mu.Lock()
	s.buckets[bucket] = true
	s.mu.Unlock()
	return nil
}

// Put stores data under key, making the bucket first if needed.
func (s *Store) Put(ctx context.Context, bucket, key string, data []byte, contentType string) error {
	if err := s.EnsureBucket(ctx, bucket); err != nil {
		return err
	}
	put := func() error {
		ctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		_, err := s.client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{ContentType: contentType, DisableMultipart: true})
		return err
	}
	err := put()
	if err != nil && code(err) == "NoSuchBucket" {
		// Removed behind this process's back: make it again.
		s.mu.Lock()
		delete(s.buckets, bucket)
		s.mu.Unlock()
		if err := s.EnsureBucket(ctx, bucket); err != nil {
			return err
		}
		err = put()
	}
	if err != nil {
		return s.wrap("put", bucket, key, err)
	}
	return nil
}

// Get returns an object's bytes, or ENOTFOUND.
func (s *Store) Get(ctx context.Context, bucket, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	obj, err := s.client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get", bucket, key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	switch c := code(err); {
	case err == nil:
		return b, nil
	case c == "NoSuchKey" || c == "NoSuchBucket":
		return nil, tenancy.Errorf(tenancy.ENOTFOUND, "object %s not found", tenancy.Quote(key))
	}
	return nil, s.wrap("get", bucket, key, err)
}

// Remove removes an object; a missing object or bucket is no error.
func (s *Store) Remove(ctx context.Context, bucket, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	if err != nil && code(err) != "NoSuchBucket" && code(err) != "NoSuchKey" {
		return s.wrap("remove", bucket, key, err)
	}
	return nil
}

// Exists reports whether an object exists.
func (s *Store) Exists(ctx context.Context, bucket, key string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	switch c := code(err); {
	case err == nil:
		return true, nil
	case c == "NoSuchKey" || c == "NoSuchBucket":
		return false, nil
	}
	return false, s.wrap("stat", bucket, key, err)
}

// Stat describes an object, or answers ENOTFOUND.
func (s *Store) Stat(ctx context.Context, bucket, key string) (tenancy.ObjectInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	st, err := s.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	switch c := code(err); {
	case err == nil:
		return tenancy.ObjectInfo{Key: key, Size: st.Size, ContentType: st.ContentType, Modified: st.LastModified}, nil
	case c == "NoSuchKey" || c == "NoSuchBucket":
		return tenancy.ObjectInfo{}, tenancy.Errorf(tenancy.ENOTFOUND, "object %s not found", tenancy.Quote(key))
	}
	return tenancy.ObjectInfo{}, s.wrap("stat", bucket, key, err)
}

// Size is the total size of the objects in a bucket; 0 for a bucket that
// does not exist.
func (s *Store) Size(ctx context.Context, bucket string) (int64, error) {
	return s.sizeUnder(ctx, bucket, "")
}

func (s *Store) sizeUnder(ctx context.Context, bucket, prefix string) (int64, error) {
	var total int64
	err := s.ListObjects(ctx, bucket, prefix, func(o tenancy.ObjectInfo) error {
		total += o.Size
		return nil
	})
	return total, err
}

// TenantSize is what a tenant stores: its bucket, and the archives of its
// exports while they are kept (an owner could otherwise store any amount
// by exporting again and again).
func (s *Store) TenantSize(ctx context.Context, tenantID string) (int64, error) {
	own, err := s.Size(ctx, tenancy.TenantBucket(tenantID))
	if err != nil {
		return 0, err
	}
	archives, err := s.sizeUnder(ctx, tenancy.ExportBucket, tenancy.ExportPrefix(tenantID))
	if err != nil {
		return 0, err
	}
	return own + archives, nil
}

var _ tenancy.ObjectStreamer = (*Store)(nil)

// ListObjects calls fn for every object in bucket under prefix, in key
// order. A missing bucket holds no objects.
func (s *Store) ListObjects(ctx context.Context, bucket, prefix string, fn func(tenancy.ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing when fn fails
	for o := range s.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			if code(o.Err) == "NoSuchBucket" {
				return nil
			}
			return s.wrap("list", bucket, prefix, o.Err)
		}
		// The listing does not carry the content type; OpenObject does.
		if err := fn(tenancy.ObjectInfo{Key: o.Key, Size: o.Size, Modified: o.LastModified}); err != nil {
			return err
		}
	}
	return nil
}

// OpenObject opens an object for reading as a stream. It is bounded by ctx,
// and fails when the store stalls for the call timeout: a large object may
// take longer than that to read.
func (s *Store) OpenObject(ctx context.Context, bucket, key string) (io.ReadCloser, tenancy.ObjectInfo, error) {
	obj, err := s.client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, tenancy.ObjectInfo{}, s.wrap("get", bucket, key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		if c := code(err); c == "NoSuchKey" || c == "NoSuchBucket" {
			return nil, tenancy.ObjectInfo{}, tenancy.Errorf(tenancy.ENOTFOUND, "object %s not found", tenancy.Quote(key))
		}
		return nil, tenancy.ObjectInfo{}, s.wrap("get", bucket, key, err)
	}
	return obj, tenancy.ObjectInfo{Key: key, Size: st.Size, ContentType: st.ContentType}, nil
}

// PutObjectStream stores size bytes read from r under key, making the
// bucket first if needed. Large objects go up in parts of 16 MiB, one at a
// time, so memory stays bounded.
func (s *Store) PutObjectStream(ctx context.Context, bucket, key string, r io.Reader, size int64, contentType string) error {
	if err := s.EnsureBucket(ctx, bucket); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, bucket, key, r, size, minio.PutObjectOptions{
		ContentType: contentType, PartSize: 16 << 20, NumThreads: 1,
		DisableMultipart: size >= 0 && size < 16<<20,
	})
	if err != nil {
		return s.wrap("put", bucket, key, err)
	}
	return nil
}

// RemoveBucket removes a bucket that holds nothing; a missing bucket is no
// error.
func (s *Store) RemoveBucket(ctx context.Context, bucket string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// A MinIO that has just started may make the bucket again, empty,
	// while it loads its buckets: the removal counts once the store has
	// loaded them and the bucket is not among them. Until then it fails as
	// unavailable, to be tried again. A bucket the load made again before
	// it ended is removed once more: no load is running now to make it.
	for range 2 {
		err := s.client.RemoveBucket(ctx, bucket)
		s.mu.Lock()
		delete(s.buckets, bucket)
		s.mu.Unlock()
		if err != nil && code(err) != "NoSuchBucket" {
			return s.wrap("remove bucket", bucket, "", err)
		}
		if err := s.bucketsLoaded(ctx); err != nil {
			return s.wrap("remove bucket", bucket, "", err)
		}
		exists, err := s.client.BucketExists(ctx, bucket)
		if err != nil {
			return s.wrap("remove bucket", bucket, "", err)
		}
		if !exists {
			return nil
		}
	}
	return s.wrap("remove bucket", bucket, "", errors.New("the bucket is still there after its removal"))
}

// errLoading is MinIO's answer while it is still loading its buckets after
// a start.
var errLoading = errors.New("the store is still loading its buckets after a start (503 Service Unavailable)")

// bucketsLoaded asks MinIO whether it has loaded its buckets since it
// started. Until then a bucket removed may come back: the load heals each
// bucket it listed at the start, and makes again, empty, one that is gone
// from the disk. MinIO answers its cluster health check with 503 until
// the load is over; a store without that check (any other S3) answers
// something else, taken as loaded.
func (s *Store) bucketsLoaded(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.client.EndpointURL().JoinPath("/minio/health/cluster").String(), nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return errLoading
	}
	return nil
}

// RemoveTenantFiles removes a tenant's bucket with everything in it, then
// its export archives, and returns how many objects it removed.
func (s *Store) RemoveTenantFiles(ctx context.Context, tenantID string) (int, error) {
	bucket := tenancy.TenantBucket(tenantID)
	n, err := s.RemoveAll(ctx, bucket, "")
	if err != nil {
		return n, err
	}
	if err := s.RemoveBucket(ctx, bucket); err != nil {
		return n, err
	}
	m, err := s.RemoveAll(ctx, tenancy.ExportBucket, tenancy.ExportPrefix(tenantID))
	return n + m, err
}

// RemoveAll removes every object in bucket under prefix, and the
// unfinished uploads there, and returns how many objects it removed. A
// missing bucket holds nothing. Objects are removed a thousand at a time,
// each batch within the call timeout.
func (s *Store) RemoveAll(ctx context.Context, bucket, prefix string) (int, error) {
	var keys []string
	if err := s.ListObjects(ctx, bucket, prefix, func(o tenancy.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		return 0, err
	}
	removed := 0
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		n, err := s.removeBatch(ctx, bucket, batch)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	for u := range s.client.ListIncompleteUploads(ctx, bucket, prefix, true) {
		if u.Err != nil {
			if code(u.Err) == "NoSuchBucket" {
				break
			}
			return removed, s.wrap("list uploads", bucket, prefix, u.Err)
		}
		if err := s.AbortUploads(ctx, bucket, u.Key); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func (s *Store) removeBatch(ctx context.Context, bucket string, keys []string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	objects := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		objects <- minio.ObjectInfo{Key: k}
	}
	close(objects)
	failed := 0
	var first error
	for e := range s.client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		if e.Err == nil || code(e.Err) == "NoSuchKey" || code(e.Err) == "NoSuchBucket" {
			continue
		}
		failed++
		if first == nil {
			first = s.wrap("remove", bucket, e.ObjectName, e.Err)
		}
	}
	return len(keys) - failed, first
}

// AbortUploads abandons the unfinished multipart uploads of an object, such
// as those of a process killed while it uploaded: their parts are held by
// the store, out of sight, until then.
func (s *Store) AbortUploads(ctx context.Context, bucket, key string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.client.RemoveIncompleteUpload(ctx, bucket, key)
	if err != nil && code(err) != "NoSuchBucket" && code(err) != "NoSuchUpload" {
		return s.wrap("abort uploads", bucket, key, err)
	}
	return nil
}

// ExpireObjects asks the store to remove the bucket's objects the given
// number of days after they were written, making the bucket first: a
// safety net under the program's own removal, for objects (such as export
// archives) that must not outlive their use.
func (s *Store) ExpireObjects(ctx context.Context, bucket string, days int) error {
	if err := s.EnsureBucket(ctx, bucket); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cfg := lifecycle.NewConfiguration()
	cfg.Rules = []lifecycle.Rule{{
		ID:         "expire",
		Status:     "Enabled",
		Expiration: lifecycle.Expiration{Days: lifecycle.ExpirationDays(days)},
	}}
	if err := s.client.SetBucketLifecycle(ctx, bucket, cfg); err != nil {
		return s.wrap("set lifecycle", bucket, "", err)
	}
	return nil
}
