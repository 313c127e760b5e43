package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// A call made under WithQueryTimeout ends at its deadline however long
// the database would take, and the error says the database did not
// answer. Without the timeout the same call runs to its end.
func TestQueryTimeout(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	ctx := tenancy.WithQueryTimeout(context.Background(), time.Second)
	for name, call := range map[string]func() error{
		"query": func() error { _, err := db.App.Exec(ctx, `SELECT pg_sleep(3)`); return err },
		"transaction": func() error {
			tx, err := db.Admin.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(context.Background())
			_, err = tx.Exec(ctx, `SELECT pg_sleep(3)`)
			return err
		},
	} {
		start := time.Now()
		err := call()
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("%s: took %s, the timeout is 1s", name, d)
		}
		if u := db.Outage(err); tenancy.ErrorCode(u) != tenancy.EUNAVAILABLE || u.(*tenancy.Error).Service != tenancy.ServiceDatabase {
			t.Errorf("%s: %v is not the database unavailable", name, err)
		}
	}
	// Each call has its own deadline: many short calls are fine, longer
	// together than one deadline.
	for range 5 {
		if _, err := db.App.Exec(ctx, `SELECT pg_sleep(0.3)`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.App.Exec(context.Background(), `SELECT pg_sleep(0.5)`); err != nil {
		t.Errorf("without a query timeout: %v", err)
	}
	if db.Outage(tenancy.Errorf(tenancy.EINVALID, "bad")) != nil || db.Outage(context.Canceled) != nil {
		t.Error("Outage claims errors that are not the database's")
	}
}

// The tenant's Stripe customer is stored once: the first id stored stays,
// whichever of several requests at once gets there first, and every one
// of them gets that id back.
func TestSetCustomerFirstWins(t *testing.T) {
	t.Parallel()
	db := mustOpenDB(t)
	acme := mustCreateTenant(t, db, "acme", tenancy.StrategyRLS)
	svc := postgres.NewBillingService(db)
	ctx := context.Background()
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			id, err := svc.SetCustomer(ctx, acme.ID, "cus_"+string(rune('a'+i)))
			if err != nil {
				t.Error(err)
			}
			got[i] = id
		})
	}
	wg.Wait()
	stored, err := svc.BillingTenant(ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range got {
		if id != stored.StripeCustomerID || id == "" {
			t.Errorf("request %d got %q, stored %q", i, id, stored.StripeCustomerID)
		}
	}
	if id, err := svc.SetCustomer(ctx, acme.ID, "cus_later"); err != nil || id != stored.StripeCustomerID {
		t.Errorf("later: %q %v", id, err)
	}
}
