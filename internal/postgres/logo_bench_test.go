package postgres_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// benchPNG is a 1 MB PNG: a real 64×64 image padded after its end (the
// check reads headers only), its last bytes set from i so each is new.
func benchPNG(b *testing.B, i int) []byte {
	out := make([]byte, 1<<20)
	copy(out, testPNG(b, 64, 64))
	binary.BigEndian.PutUint32(out[len(out)-4:], uint32(i))
	return out
}

// BenchmarkLogoUpload compares an upload through the service (check, hash,
// put, row, notify, removing the replaced object) with a plain PutObject of
// the same bytes:
//
//	go test -run '^$' -bench LogoUpload -benchtime 200x ./internal/postgres/
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
	b.Run("service", func(b *testing.B) {
		b.SetBytes(1 << 20)
		for i := 0; b.Loop(); i++ {
			// New bytes each time, so every upload replaces the last one
			// and removes its object.
			if _, err := svc.UploadLogo(ctx, acme.ID, tenancy.LogoMain, benchPNG(b, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("putobject", func(b *testing.B) {
		b.SetBytes(1 << 20)
		data := benchPNG(b, 0)
		for b.Loop() {
			if _, err := store.Client().PutObject(ctx, bucket, "bench/plain.png", bytes.NewReader(data), int64(len(data)),
				minio.PutObjectOptions{ContentType: "image/png"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
