//go:build exportbench

package main

// The export benchmark (scripts/bench/export.sh): a tenant with 1,000,000
// rows and 1,000 objects exported by the built binary, its wall time and
// peak resident memory as GNU time reports them. It
// runs at two sizes, so that a memory use growing with the data would show.
// The build tag keeps it out of go test ./... and make bench.

import (
	"bytes"
	"context"
	encbin "encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/tenancy"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func TestExportBenchmark(t *testing.T) {
	rows := envInt("ROWS", 1_000_000)
	objects := envInt("OBJECTS", 1000)
	objectSize := envInt("OBJECT_SIZE", 64<<10)
	ctx := context.Background()
	urls := pgtest.NewURLs(t)
	env := blobtest.Env(t)
	if v := os.Getenv("BENCH_GODEBUG"); v != "" {
		env = append(env, "GODEBUG="+v)
	}
	c := newCLI(t, urls, env...)
	c.ok("tenant", "create", "Bench", "--slug", "bench", "--owner", "owner@bench.example")

	conn, err := pgx.Connect(ctx, urls.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var id string
	if err := conn.QueryRow(ctx, `SELECT id FROM tenants.tenants WHERE slug = 'bench'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	// seed adds n products (and so many rows) to the tenant.
	seed := func(from, to int) {
		start := time.Now()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, id); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO app.products (tenant_id, name, price)
			SELECT $1, 'Product number ' || i || ' of the benchmark tenant', (i % 10000) / 100.0
			FROM generate_series($2::int, $3::int) i`, id, from, to-1); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("seeded rows %d..%d in %s", from, to, time.Since(start).Round(time.Millisecond))
	}
	store := blobtest.New(t)
	start := time.Now()
	// Random bytes, as images are: gzip cannot shrink them.
	rnd := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, objectSize)
	for i := range objects {
		for j := 0; j+8 <= len(data); j += 8 {
			encbin.LittleEndian.PutUint64(data[j:], rnd.Uint64())
		}
		if err := store.Put(ctx, tenancy.TenantBucket(id), fmt.Sprintf("files/%04d.bin", i), data, "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stored %d objects of %d bytes in %s", objects, objectSize, time.Since(start).Round(time.Millisecond))

	dir := t.TempDir()
	seeded := 0
	run := func(label string) {
		out := filepath.Join(dir, label+".tar.gz")
		// GNU time forks the program from its own small process and reports
		// that child's peak resident set. (The child of a Go process is
		// cloned sharing the parent's memory until it execs, so its own
		// ru_maxrss would count this test's memory too.)
		cmd := exec.Command("/usr/bin/time", "-f", "maxrss_kib=%M", binary, "tenant", "export", "bench", "--output", out)
		cmd.Env = c.env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("export: %v: %s", err, stderr.String())
		}
		elapsed := time.Since(start)
		m := regexp.MustCompile(`maxrss_kib=(\d+)`).FindStringSubmatch(stderr.String())
		if m == nil {
			t.Fatalf("no peak memory in %q", stderr.String())
		}
		kib, _ := strconv.Atoi(m[1])
		info, _ := os.Stat(out)
		t.Logf("%s: %s", label, oneLine(stdout.String()))
		if os.Getenv("BENCH_GODEBUG") != "" {
			t.Logf("%s", stderr.String())
		}
		fmt.Printf("RESULT %s rows=%d objects=%d seconds=%.1f peak_rss_mib=%.1f archive_mib=%.1f\n",
			label, seeded, objects, elapsed.Seconds(), float64(kib)/1024, float64(info.Size())/(1<<20))
		os.Remove(out)
	}
	small := rows / 10
	seed(0, small)
	seeded = small
	run("small")
	seed(small, rows)
	seeded = rows
	run("full")
}
