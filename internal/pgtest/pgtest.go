// Package pgtest gives each test a database of its own, created from the
// migrations on the real PostgreSQL that scripts/services.sh starts, and
// connected through the same two roles as production: the application role
// (bound by row-level security) and the owner.
//
// The first test to ask migrates a template database, named after a hash of
// the migrations; every test then gets a copy of it, which takes a fraction
// of a second, and drops it when done. Tests are independent and can run in
// parallel.
//
// With NSELF_CITUS_SUPERUSER_URL set (`eval "$(scripts/services.sh env
// citus)"`), the databases are on the Citus cluster instead: the template
// is built on the coordinator and every worker under one name, with the
// citus extension and the workers registered, then migrated (which
// distributes the tables), and each test's copy is made from it on every
// node, so that the coordinator's metadata finds the shards under the same
// database name on the workers.
package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/migrations"
)

// URLs are the connection strings of one test database.
type URLs struct {
	App   string // as the application role
	Admin string // as the owner
}

// New returns an open, migrated database of the test's own.
func New(t testing.TB) *postgres.DB {
	t.Helper()
	u := NewURLs(t)
	db, err := postgres.Open(context.Background(), u.App, u.Admin)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// NewURLs creates a migrated database for the test and returns how to
// reach it, for tests that start the program itself.
func NewURLs(t testing.TB) URLs {
	t.Helper()
	app, admin := baseURLs(t)
	tpl, err := template(app, admin)
	if err != nil {
		t.Fatalf("prepare template database: %v", err)
	}
	return newDatabase(t, app, admin, "TEMPLATE "+tpl)
}

// NewEmptyURLs creates an empty database for the test, owned by the owner
// role, as an operator's new database would be before the first migration.
func NewEmptyURLs(t testing.TB) URLs {
	t.Helper()
	app, admin := baseURLs(t)
	return newDatabase(t, app, admin, "")
}

func newDatabase(t testing.TB, app, admin, options string) URLs {
	t.Helper()
	name := "nself_test_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	ctx := context.Background()
	if c := citusCluster(); c != nil {
		if err := c.createDatabase(ctx, name, options); err != nil {
			t.Fatalf("create test database on Citus: %v", err)
		}
		t.Cleanup(func() {
			if err := c.dropDatabase(context.Background(), name); err != nil {
				t.Errorf("drop test database on Citus: %v", err)
			}
		})
		t.Cleanup(func() { removeFiles(t, withDatabase(admin, name)) })
		return URLs{App: withDatabase(app, name), Admin: withDatabase(admin, name)}
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect as owner: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s %s`, name, options)); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("connect to drop test database: %v", err)
			return
		}
		defer conn.Close(ctx)
		// A backend whose client just disconnected can linger for a moment,
		// and the owner may not terminate the application role's backends,
		// so the drop is retried briefly.
		for i := 0; ; i++ {
			_, err := conn.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s`, name))
			var pg *pgconn.PgError
			if err == nil || i == 100 || !errors.As(err, &pg) || pg.Code != "55006" {
				if err != nil {
					t.Errorf("drop test database: %v", err)
				}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Cleanup(func() { removeFiles(t, withDatabase(admin, name)) })
	return URLs{App: withDatabase(app, name), Admin: withDatabase(admin, name)}
}

// removeFiles removes, before the database is dropped, the files its
// tenants left in the shared object store (MINIO_ENDPOINT): their buckets
// and export archives. Left there, every test run would add buckets, and
// a store loads all of its buckets each time it starts. Ids are unique
// to a database (an import gives the tenant a new one), so no other
// test's files go. A store that cannot be reached leaves them.
func removeFiles(t testing.TB, adminURL string) {
	if os.Getenv("MINIO_ENDPOINT") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return
	}
	rows, _ := conn.Query(ctx, `SELECT id::text FROM tenants.tenants`)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	conn.Close(ctx)
	if err != nil || len(ids) == 0 {
		return // not migrated, or no tenant
	}
	store := blobtest.New(t)
	for _, id := range ids {
		if _, err := store.RemoveTenantFiles(ctx, id); err != nil {
			t.Logf("the test's files are left in object storage: %v", err)
			return
		}
	}
}

// baseURLs reads the connection settings. A missing one fails the test:
// tests never skip for want of a service.
func baseURLs(t testing.TB) (app, admin string) {
	app, admin = os.Getenv("DATABASE_URL"), os.Getenv("DATABASE_ADMIN_URL")
	if app == "" || admin == "" {
		t.Fatal("DATABASE_URL and DATABASE_ADMIN_URL must be set: start the services with `scripts/services.sh start` and run `eval \"$(scripts/services.sh env)\"`, or run `make test`")
	}
	return app, admin
}

var (
	templateMu   sync.Mutex
	templateName string
)

// template returns the name of a database migrated to the current
// migrations, creating it if needed. Test binaries of several packages run
// at once, so an advisory lock serializes the creation across processes.
func template(app, admin string) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	if templateName != "" {
		return templateName, nil
	}
	name := "nself_tpl_" + migrationsHash()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('nself_pgtest_template'))`); err != nil {
		return "", err
	}
	defer conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('nself_pgtest_template'))`)

	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if err := createTemplate(ctx, conn, app, admin, name); err != nil {
			return "", err
		}
	}
	templateName = name
	return name, nil
}

func createTemplate(ctx context.Context, conn *pgx.Conn, app, admin, name string) error {
	// Templates of older migrations are of no more use once a day old;
	// younger ones may belong to another checkout testing other migrations
	// on the same server. Each template's comment holds when it was made.
	rows, err := conn.Query(ctx, `
		SELECT datname FROM pg_database d
		WHERE datname LIKE 'nself\_tpl\_%' AND datname <> $1
		  AND coalesce(substring(shobj_description(d.oid, 'pg_database') FROM '^made (.*)$')::timestamptz, '-infinity')
		      < now() - interval '1 day'`, name)
	if err != nil {
		return err
	}
	old, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, o := range old {
		conn.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, o))
	}
	building := name + "_build"
	c := citusCluster()
	if c != nil {
		// The coordinator's list is what the workers hold too.
		for _, o := range old {
			c.dropDatabase(ctx, o)
		}
		if err := c.createDatabase(ctx, building, ""); err != nil {
			return err
		}
	} else {
		conn.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, building))
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s`, building)); err != nil {
			return err
		}
	}
	db, err := postgres.Open(ctx, withDatabase(app, building), withDatabase(admin, building))
	if err != nil {
		return err
	}
	_, err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		return err
	}
	// Renamed only once complete, so a crash never leaves a half-built
	// template under the real name.
	if _, err := conn.Exec(ctx, fmt.Sprintf(`COMMENT ON DATABASE %s IS 'made %s'`, building, time.Now().UTC().Format(time.RFC3339))); err != nil {
		return err
	}
	if c != nil {
		return c.renameDatabase(ctx, building, name)
	}
	_, err = conn.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, building, name))
	return err
}

// migrationsHash identifies the current migrations.
func migrationsHash() string {
	h := sha256.New()
	for _, fsys := range []fs.FS{migrations.Platform, migrations.Tenant} {
		fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			h.Write([]byte(p))
			h.Write(b)
			return err
		})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(fmt.Sprintf("database URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}
