package postgres_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/nself/nself/internal/benchtest"
	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// BenchmarkLogoUpload compares an upload of a 1 MB PNG through the service
// (check, hash, put, row, notify, removing the replaced object) with a
// plain minio-go PutObject of the same bytes, reporting the median and
// the 99th percentile of each:
//
//	go test -run '^$' -bench LogoUpload -benchtime 200x ./internal/postgres/
//
// web's BenchmarkLogoUpload measures the same upload through the portal.
func BenchmarkLogoUpload(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	store := blobtest.New(b)
	c, err := postgres.NewTenantService(db, tenancy.ModeHybrid).CreateTenant(ctx, tenancy.NewTenant{Name: "Acme", Slug: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	acme := c.Tenant
	bucket := tenancy.TenantBucket(acme.ID)
	if err := store.EnsureBucket(ctx, bucket); err != nil {
		b.Fatal(err)
	}
	svc := postgres.NewLogoService(db, store)
	data := benchtest.PNG(b, 1<<20)
	b.Run("service", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var lat benchtest.Latencies
		for i := 0; b.Loop(); i++ {
			// New bytes each time, so every upload replaces the last one
			// and removes its object.
			benchtest.SetPNGSerial(data, i)
			lat.Time(func() {
				if _, err := svc.UploadLogo(ctx, acme.ID, tenancy.LogoMain, data); err != nil {
					b.Fatal(err)
				}
			})
		}
		lat.Report(b)
	})
	b.Run("putobject", func(b *testing.B) {
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
