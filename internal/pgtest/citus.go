package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// citus is the Citus cluster the tests run on: superuser URLs of the
// coordinator and of each worker (in the database nself, which
// scripts/services.sh set up).
type citus struct {
	coordinator string
	workers     []string
}

var (
	citusOnce sync.Once
	citusC    *citus
	citusErr  error
)

// citusCluster returns the cluster named by NSELF_CITUS_SUPERUSER_URL, or
// nil when the tests run on a single PostgreSQL. A cluster that cannot be
// reached panics: a missing service is a failure, never a skip.
func citusCluster() *citus {
	raw := os.Getenv("NSELF_CITUS_SUPERUSER_URL")
	if raw == "" {
		return nil
	}
	citusOnce.Do(func() { citusC, citusErr = discover(raw) })
	if citusErr != nil {
		panic(fmt.Sprintf("Citus cluster at NSELF_CITUS_SUPERUSER_URL: %v (start it with scripts/services.sh start citus)", citusErr))
	}
	return citusC
}

// IsCitus reports whether the tests run on the Citus cluster.
func IsCitus() bool { return citusCluster() != nil }

// CitusWorkers returns superuser URLs of the workers' copies of a test
// database, for tests that look at shards directly; nil on a single
// PostgreSQL.
func CitusWorkers(u URLs) []string {
	c := citusCluster()
	if c == nil {
		return nil
	}
	name := databaseOf(u.Admin)
	var out []string
	for _, w := range c.workers {
		out = append(out, withDatabase(w, name))
	}
	return out
}

// CitusWorkerURL is the URL of a worker's copy of the database in raw
// (a test database URL of any role): same role, the worker's address.
func CitusWorkerURL(raw, worker string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	w, err := url.Parse(worker)
	if err != nil {
		panic(err)
	}
	u.Host = w.Host
	return u.String()
}

func discover(raw string) (*citus, error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND isactive ORDER BY nodeport`)
	if err != nil {
		return nil, err
	}
	c := &citus{coordinator: raw}
	for rows.Next() {
		var host string
		var port int
		if err := rows.Scan(&host, &port); err != nil {
			return nil, err
		}
		u, _ := url.Parse(raw)
		u.Host = net.JoinHostPort(host, strconv.Itoa(port))
		c.workers = append(c.workers, u.String())
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(c.workers) == 0 {
		return nil, errors.New("no workers registered on the coordinator")
	}
	return c, nil
}

func databaseOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return u.Path[1:]
}

// exec runs statements as the superuser in database db of a node.
func exec(ctx context.Context, node, db string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, withDatabase(node, db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// quiet ends the sessions in a database on a node (Citus's maintenance
// daemon is one), which CREATE DATABASE … TEMPLATE and RENAME need.
func quiet(ctx context.Context, node, db string) error {
	return exec(ctx, node, "postgres", fmt.Sprintf(
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND pid <> pg_backend_pid()`, db))
}

// retry repeats fn while the database is busy with sessions of others
// (55006): a maintenance daemon may come back between quiet and the
// command.
func retry(ctx context.Context, node, busy string, fn func() error) error {
	for i := 0; ; i++ {
		if busy != "" {
			if err := quiet(ctx, node, busy); err != nil {
				return err
			}
		}
		err := fn()
		var pg *pgconn.PgError
		if err == nil || i == 50 || !errors.As(err, &pg) || pg.Code != "55006" {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createDatabase creates a database on every node: a copy of a template
// made here (options "TEMPLATE x"), or a new one with the citus extension
// and, on the coordinator, the workers registered, as an operator would
// prepare it.
func (c *citus) createDatabase(ctx context.Context, name, options string) error {
	var tpl string
	if _, err := fmt.Sscanf(options, "TEMPLATE %s", &tpl); err != nil {
		tpl = ""
	}
	// The nodes make their copies at once: a test waits for the slowest
	// node, not for the three in turn.
	if err := onEachNode(append([]string{c.coordinator}, c.workers...), func(n string) error {
		create := fmt.Sprintf(`CREATE DATABASE %s OWNER nself_owner %s`, name, options)
		if err := retry(ctx, n, tpl, func() error { return exec(ctx, n, "postgres", create) }); err != nil {
			return err
		}
		return exec(ctx, n, "postgres", fmt.Sprintf(`ALTER DATABASE %s SET citus.enable_unsafe_triggers = on`, name))
	}); err != nil {
		return err
	}
	if tpl != "" {
		return nil
	}
	for _, n := range c.workers {
		if err := exec(ctx, n, name, `CREATE EXTENSION citus`); err != nil {
			return err
		}
	}
	stmts := []string{`CREATE EXTENSION IF NOT EXISTS citus`}
	cu, _ := url.Parse(c.coordinator)
	host, port, _ := net.SplitHostPort(cu.Host)
	stmts = append(stmts, fmt.Sprintf(`SELECT citus_set_coordinator_host('%s', %s)`, host, port))
	for _, w := range c.workers {
		wu, _ := url.Parse(w)
		h, p, _ := net.SplitHostPort(wu.Host)
		stmts = append(stmts, fmt.Sprintf(`SELECT citus_add_node('%s', %s) WHERE NOT EXISTS (SELECT FROM pg_dist_node WHERE nodeport = %s)`, h, p, p))
	}
	// Roles made before this database had workers are not yet Citus's
	// objects in it (see scripts/services.sh).
	stmts = append(stmts, `INSERT INTO pg_catalog.pg_dist_object (classid, objid, objsubid)
		SELECT 'pg_authid'::regclass, oid, 0 FROM pg_roles WHERE rolname IN ('nself_owner', 'nself_app', 'nself_backup')
		ON CONFLICT DO NOTHING`)
	// Registering a worker opens a connection to it, which a loaded
	// machine sometimes fails at once; the statements are safe to repeat.
	for i := 0; ; i++ {
		err := exec(ctx, c.coordinator, name, stmts...)
		if err == nil || i == 4 || !strings.Contains(err.Error(), "failure on connection") {
			return err
		}
		time.Sleep(time.Second)
	}
}

// renameDatabase renames a database on every node.
func (c *citus) renameDatabase(ctx context.Context, from, to string) error {
	for _, n := range append([]string{c.coordinator}, c.workers...) {
		stmt := fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, from, to)
		if err := retry(ctx, n, from, func() error { return exec(ctx, n, "postgres", stmt) }); err != nil {
			return err
		}
	}
	return nil
}

// dropDatabase drops a database on every node, coordinator first, ending
// the sessions (the coordinator's cached connections to the workers too).
func (c *citus) dropDatabase(ctx context.Context, name string) error {
	// FORCE ends the sessions there are, but a worker's maintenance daemon
	// or a connection the coordinator was still opening may come in before
	// the drop: it is tried again. The workers drop theirs at once.
	drop := func(n string) error {
		stmt := fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)
		return retry(ctx, n, "", func() error { return exec(ctx, n, "postgres", stmt) })
	}
	if err := drop(c.coordinator); err != nil {
		return err
	}
	return onEachNode(c.workers, drop)
}

// onEachNode runs fn for every node at once and returns the first error.
func onEachNode(nodes []string, fn func(node string) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
