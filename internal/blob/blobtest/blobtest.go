// Package blobtest connects tests to the MinIO that scripts/services.sh
// starts. A missing MinIO fails the test rather than skipping it.
package blobtest

import (
	"context"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/nself/nself/internal/blob"
)

// Config is the store's settings from the environment
// (eval "$(scripts/services.sh env)").
func Config(t testing.TB) blob.Config {
	t.Helper()
	cfg := blob.Config{
		Endpoint:  os.Getenv("MINIO_ENDPOINT"),
		AccessKey: os.Getenv("MINIO_ACCESS_KEY"),
		SecretKey: os.Getenv("MINIO_SECRET_KEY"),
		UseSSL:    os.Getenv("MINIO_USE_SSL") == "true",
	}
	if cfg.Endpoint == "" {
		t.Fatal(`MINIO_ENDPOINT is not set: run eval "$(scripts/services.sh env)" (scripts/services.sh start minio starts MinIO)`)
	}
	return cfg
}

// New returns a store on the test MinIO.
func New(t testing.TB) *blob.Store {
	t.Helper()
	s, err := blob.New(Config(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Env is the MinIO settings as KEY=VALUE lines, for running the binary.
func Env(t testing.TB) []string {
	cfg := Config(t)
	ssl := "false"
	if cfg.UseSSL {
		ssl = "true"
	}
	return []string{"MINIO_ENDPOINT=" + cfg.Endpoint, "MINIO_ACCESS_KEY=" + cfg.AccessKey,
		"MINIO_SECRET_KEY=" + cfg.SecretKey, "MINIO_USE_SSL=" + ssl}
}

// Unreachable is a store at an address nothing listens on.
func Unreachable(t testing.TB) *blob.Store {
	t.Helper()
	cfg := Config(t)
	cfg.Endpoint = "127.0.0.1:1"
	s, err := blob.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Tenant returns a new tenant id whose files, its bucket and its export
// archives, are removed from s when the test ends.
func Tenant(t testing.TB, s *blob.Store) string {
	t.Helper()
	id := uuid.NewString()
	t.Cleanup(func() { s.RemoveTenantFiles(context.Background(), id) })
	return id
}
