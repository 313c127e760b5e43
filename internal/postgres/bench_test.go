package postgres_test

// Benchmarks of the tenancy core. They measure and report; they assert
// nothing about speed, and plain `go test` runs none of them. Results, and
// the machine they were measured on, are in docs/benchmarks.md:
//
//	go test -run '^$' -bench CreateTenant -benchtime 1000x -count 6 ./internal/postgres/
//	go test -run '^$' -bench TenantQuery -benchtime 2000x -count 6 ./internal/postgres/

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func BenchmarkCreateTenantRLS(b *testing.B)    { benchCreateTenant(b, tenancy.StrategyRLS) }
func BenchmarkCreateTenantSchema(b *testing.B) { benchCreateTenant(b, tenancy.StrategySchema) }

// benchCreateTenant creates one tenant per iteration through the service,
// as `nself tenant create NAME --slug SLUG` does: no owner, default plan.
// Every run starts from an empty database of its own; the tenants pile up
// during the run, so a long run also measures a growing registry (and,
// under the schema strategy, a growing catalog).
func benchCreateTenant(b *testing.B, strategy tenancy.Strategy) {
	db := pgtest.New(b)
	svc := postgres.NewTenantService(db, tenancy.ModeHybrid)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		slug := fmt.Sprintf("bench-%d", i)
		if _, err := svc.CreateTenant(ctx, tenancy.NewTenant{Name: "Bench " + slug, Slug: slug, Strategy: strategy}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tenants/s")
}

const (
	benchTenants        = 1000
	benchUsersPerTenant = 1000
)

// tenantQuery is one tenant-scoped query in the two forms compared: as
// written under row-level security (no tenant filter: the policy adds it)
// and with an explicit tenant filter.
type tenantQuery struct {
	name string
	// implicit names no tenant; $1, if any, is the email.
	implicit string
	// explicit filters on tenant_id = $1; $2, if any, is the email; %s is
	// the table.
	explicit string
	// byEmail tells whether the query takes the email.
	byEmail bool
	// rows is how many rows the query returns: a check that the tenant
	// context really was in effect, not a measurement.
	rows int
}

var tenantQueries = []tenantQuery{
	{
		// A page of the tenant's users: reads all of the tenant's rows and
		// sorts them (no index is on email).
		name:     "list",
		implicit: `SELECT id, email, name FROM auth.users ORDER BY email LIMIT 50`,
		explicit: `SELECT id, email, name FROM %s WHERE tenant_id = $1 ORDER BY email LIMIT 50`,
		rows:     50,
	},
	{
		// Signing in: one user by email, through the unique index on
		// (tenant_id, email_lower). The stored column is what lets row-level
		// security use the index: ahead of the policy the planner may use
		// only leakproof conditions, and lower(email) is not one, while
		// email_lower = lower($1) is a plain text comparison.
		name:     "lookup",
		implicit: `SELECT id, email, name FROM auth.users WHERE email_lower = lower($1)`,
		explicit: `SELECT id, email, name FROM %s WHERE tenant_id = $1 AND email_lower = lower($2)`,
		byEmail:  true,
		rows:     1,
	},
}

// tenantAccess is one way of running a tenant's query: it runs q for the
// tenant (and email) and returns how many rows came back.
type tenantAccess struct {
	name string
	run  func(ctx context.Context, q tenantQuery, tenantID, email string) (int, error)
}

// BenchmarkTenantQuery compares the cost of row-level security on
// 1,000,000 users spread over 1,000 tenants. Each iteration picks a tenant
// (and, for a lookup, one of its users) at random, from a sequence that is
// the same for every variant:
//
//   - rls: the application role, in a transaction that sets the tenant as
//     a statement of its own, then the query with no tenant filter.
//   - rls+explicit: the same, with the query also saying tenant_id = $1,
//     as the services write it.
//   - rls-batch: like rls, with the SET LOCAL and the query sent together
//     in one round trip (a pgx batch), so it makes the round trips of
//     explicit-owner.
//   - rls-pipeline: how the services read (readInTenant): BEGIN, SET
//     LOCAL, the query with tenant_id = $1 and COMMIT sent as one pipeline,
//     a single round trip.
//   - explicit-owner+ctx: the owner, on a copy of auth.users that has no
//     row-level security, in the transaction shape of rls-batch: the
//     tenant is set (and ignored) and the query says tenant_id = $1. Only
//     the policy differs from rls-batch.
//   - explicit-owner: the same copy, in a transaction that sets nothing:
//     BEGIN; query with tenant_id = $1; COMMIT.
//   - explicit-owner-notx: the same query as a single statement, without
//     a transaction: the floor.
//
// The function itself runs once per `go test` run and -cpu value; only
// its sub-benchmarks are repeated. So the data, which takes about half a
// minute to write, is seeded once and shared by all of them.
func BenchmarkTenantQuery(b *testing.B) {
	db, tenantIDs := seedTenantUsers(b)
	emails := make([]string, benchUsersPerTenant)
	for i := range emails {
		emails[i] = fmt.Sprintf("u%d@t.example", i+1)
	}
	const norls = "public.bench_users_norls"

	args := func(q tenantQuery, explicit bool, tenantID, email string) []any {
		var a []any
		if explicit {
			a = append(a, tenantID)
		}
		if q.byEmail {
			a = append(a, email)
		}
		return a
	}
	accesses := []tenantAccess{
		{"rls", func(ctx context.Context, q tenantQuery, tenantID, email string) (int, error) {
			return inTenantTx(ctx, db, tenantID, q.implicit, args(q, false, tenantID, email))
		}},
		{"rls+explicit", func(ctx context.Context, q tenantQuery, tenantID, email string) (int, error) {
			return inTenantTx(ctx, db, tenantID, fmt.Sprintf(q.explicit, "auth.users"), args(q, true, tenantID, email))
		}},
		{"rls-batch", func(ctx context.Context, q tenantQuery, tenantID, email string) (n int, err error) {
			err = pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
				batch := &pgx.Batch{}
				batch.Queue(`SELECT tenants.set_context($1, NULL)`, tenantID)
				batch.Queue(q.implicit, args(q, false, tenantID, email)...).Query(func(rows pgx.Rows) error {
					var err error
					n, err = countRows(rows, nil)
					return err
				})
				return tx.SendBatch(ctx, batch).Close()
			})
			return n, err
		}},
		{"rls-pipeline", func(ctx context.Context, q tenantQuery, tenantID, email string) (n int, err error) {
			// How the services read: BEGIN, SET LOCAL, the query (with
			// tenant_id = $1) and COMMIT, pipelined in one round trip.
			err = postgres.ReadInTenant(ctx, db.App, tenantID, "", func(rows pgx.Rows) error {
				var err error
				n, err = countRows(rows, nil)
				return err
			}, fmt.Sprintf(q.explicit, "auth.users"), args(q, true, tenantID, email)...)
			return n, err
		}},
		{"explicit-owner+ctx", func(ctx context.Context, q tenantQuery, tenantID, email string) (n int, err error) {
			err = pgx.BeginFunc(ctx, db.Admin, func(tx pgx.Tx) error {
				batch := &pgx.Batch{}
				batch.Queue(`SELECT tenants.set_context($1, NULL)`, tenantID)
				batch.Queue(fmt.Sprintf(q.explicit, norls), args(q, true, tenantID, email)...).Query(func(rows pgx.Rows) error {
					var err error
					n, err = countRows(rows, nil)
					return err
				})
				return tx.SendBatch(ctx, batch).Close()
			})
			return n, err
		}},
		{"explicit-owner", func(ctx context.Context, q tenantQuery, tenantID, email string) (n int, err error) {
			err = pgx.BeginFunc(ctx, db.Admin, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, fmt.Sprintf(q.explicit, norls), args(q, true, tenantID, email)...)
				n, err = countRows(rows, err)
				return err
			})
			return n, err
		}},
		{"explicit-owner-notx", func(ctx context.Context, q tenantQuery, tenantID, email string) (int, error) {
			return countRows(db.Admin.Query(ctx, fmt.Sprintf(q.explicit, norls), args(q, true, tenantID, email)...))
		}},
	}

	for _, q := range tenantQueries {
		b.Run("query="+q.name, func(b *testing.B) {
			for _, a := range accesses {
				b.Run("access="+a.name, func(b *testing.B) {
					ctx := context.Background()
					run := func(tenantID, email string) {
						n, err := a.run(ctx, q, tenantID, email)
						if err != nil {
							b.Fatal(err)
						}
						if n != q.rows {
							b.Fatalf("%s for tenant %s returned %d rows, want %d", q.name, tenantID, n, q.rows)
						}
					}
					// Untimed warm-up, once for every tenant: each variant
					// starts with its table's pages as cached as the other
					// variants' were, and its statements prepared.
					for i, id := range tenantIDs {
						run(id, emails[i%len(emails)])
					}
					rng := rand.New(rand.NewPCG(1, 1))
					for b.Loop() {
						run(tenantIDs[rng.IntN(len(tenantIDs))], emails[rng.IntN(len(emails))])
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
				})
			}
		})
	}
}

// inTenantTx runs sql the way the services run tenant queries: on the
// application role, in a transaction whose first statement sets the tenant.
func inTenantTx(ctx context.Context, db *postgres.DB, tenantID, sql string, args []any) (n int, err error) {
	err = pgx.BeginFunc(ctx, db.App, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, tenantID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sql, args...)
		n, err = countRows(rows, err)
		return err
	})
	return n, err
}

// countRows reads every row into Go values, as a caller would, and counts
// them.
func countRows(rows pgx.Rows, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	var id, email, name string
	n := 0
	_, err = pgx.ForEachRow(rows, []any{&id, &email, &name}, func() error {
		n++
		return nil
	})
	return n, err
}

// seedTenantUsers returns a database of its own with benchTenants tenants
// of benchUsersPerTenant users each in auth.users, the same rows in
// public.bench_users_norls (a copy without row-level security, owned by the
// owner), and the tenants' ids.
func seedTenantUsers(b *testing.B) (*postgres.DB, []string) {
	b.Helper()
	db := pgtest.New(b)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		b.Helper()
		if _, err := db.Admin.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("seed: %s: %v", sql, err)
		}
	}

	// The registry is not under FORCE row-level security: the owner
	// writes it directly.
	rows, err := db.Admin.Query(ctx, `
		INSERT INTO tenants.tenants (slug, name)
		SELECT 'bench-' || g, 'Bench ' || g FROM generate_series(1, $1::int) g
		RETURNING id::text`, benchTenants)
	if err != nil {
		b.Fatalf("seed tenants: %v", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatalf("seed tenants: %v", err)
	}

	// Users are written as the platform writes any tenant rows: row-level
	// security stays on and each tenant's rows go in under its own
	// context. A tenant's rows end up next to each other on disk, in both
	// tables alike.
	const perTx = 100
	for start := 0; start < len(ids); start += perTx {
		err := pgx.BeginFunc(ctx, db.Admin, func(tx pgx.Tx) error {
			batch := &pgx.Batch{}
			for _, id := range ids[start:min(start+perTx, len(ids))] {
				batch.Queue(`SELECT tenants.set_context($1, NULL)`, id)
				batch.Queue(`
					INSERT INTO auth.users (tenant_id, email, name)
					SELECT $1::uuid, 'u' || g || '@t.example', 'User ' || g
					FROM generate_series(1, $2::int) g`, id, benchUsersPerTenant)
			}
			return tx.SendBatch(ctx, batch).Close()
		})
		if err != nil {
			b.Fatalf("seed users: %v", err)
		}
	}

	// LIKE ... INCLUDING ALL copies the columns, defaults, checks and
	// indexes, and neither the row-level security nor the policies. The
	// owner reads every user through the platform_read policy.
	exec(`CREATE TABLE public.bench_users_norls (LIKE auth.users INCLUDING ALL)`)
	exec(`INSERT INTO public.bench_users_norls (tenant_id, id, email, name, password_hash, last_sign_in_at, created_at, updated_at)
		SELECT tenant_id, id, email, name, password_hash, last_sign_in_at, created_at, updated_at FROM auth.users`)
	// Vacuumed now, so autovacuum does not start in the middle of a
	// measurement and every page is already marked all-visible.
	exec(`VACUUM (ANALYZE) auth.users, public.bench_users_norls`)
	return db, ids
}
