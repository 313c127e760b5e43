package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// ObjectSweeper removes objects no row refers to from tenants' buckets.
//
// An object is written before the row that refers to it (a logo's bytes,
// then its row), so a process that dies between the two, or a removal
// that fails after a commit, leaves an object nothing refers to: counted
// in the tenant's storage, never shown, never removed by anything else.
// The sweeper removes those older than Grace; a younger one may belong to
// an upload whose row is on its way.
//
// The store is never called inside a transaction: the bucket is listed
// first, the rows are read in a short read-only transaction, and each
// orphan is looked at again just before it is removed, so one written
// again since the listing (the same logo uploaded again) stays.
type ObjectSweeper struct {
	db    *DB
	blobs sweepStore
	// Grace is how old an object without a row must be to be removed.
	Grace time.Duration
	Log   *slog.Logger
}

// sweepStore is the object storage the sweeper needs.
type sweepStore interface {
	tenancy.ObjectStreamer
	Stat(ctx context.Context, bucket, key string) (tenancy.ObjectInfo, error)
}

// NewObjectSweeper returns a sweeper with a grace of one hour.
func NewObjectSweeper(db *DB, blobs sweepStore) *ObjectSweeper {
	return &ObjectSweeper{db: db, blobs: blobs, Grace: time.Hour, Log: slog.Default()}
}

// Sweep sweeps the bucket of every tenant that is not deleted and returns
// how many objects it removed. A tenant that fails is logged and the
// others are still swept.
func (s *ObjectSweeper) Sweep(ctx context.Context) (int, error) {
	rows, err := s.db.Admin.Query(ctx, `SELECT id FROM tenants.tenants WHERE status <> 'deleted' ORDER BY created_at`)
	if err != nil {
		return 0, fmt.Errorf("sweep objects: list tenants: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("sweep objects: list tenants: %w", err)
	}
	n := 0
	for _, id := range ids {
		removed, err := s.SweepTenant(ctx, id)
		n += len(removed)
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			s.Log.Error("sweep objects", "tenant", id, "err", err)
		}
	}
	return n, nil
}

// SweepTenant removes the objects of the tenant's bucket that no row
// refers to and that are older than Grace, and returns their keys.
func (s *ObjectSweeper) SweepTenant(ctx context.Context, tenantID string) ([]string, error) {
	bucket := tenancy.TenantBucket(tenantID)
	cutoff := time.Now().Add(-s.Grace)
	var old []tenancy.ObjectInfo
	err := s.blobs.ListObjects(ctx, bucket, "", func(o tenancy.ObjectInfo) error {
		if o.Modified.Before(cutoff) {
			old = append(old, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sweep objects of tenant %s: %w", tenantID, err)
	}
	if len(old) == 0 {
		return nil, nil
	}
	// Read after the listing: a row committed before the listing saw its
	// object is seen here.
	refs, err := s.references(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("sweep objects of tenant %s: %w", tenantID, err)
	}
	var removed []string
	for _, o := range tenancy.Orphans(old, refs, cutoff) {
		now, err := s.blobs.Stat(ctx, bucket, o.Key)
		switch {
		case tenancy.ErrorCode(err) == tenancy.ENOTFOUND:
			continue
		case err != nil:
			return removed, fmt.Errorf("sweep objects of tenant %s: %w", tenantID, err)
		case !now.Modified.Before(cutoff):
			continue // written again since the listing
		}
		if err := s.blobs.Remove(ctx, bucket, o.Key); err != nil {
			return removed, fmt.Errorf("sweep objects of tenant %s: %w", tenantID, err)
		}
		s.Log.Info("removed an object no row refers to", "tenant", tenantID, "key", o.Key, "size", o.Size, "written", o.Modified)
		removed = append(removed, o.Key)
	}
	return removed, nil
}

// references reads the keys the tenant's rows refer to, as the owner (which
// may read every tenant table) in the tenant's context.
func (s *ObjectSweeper) references(ctx context.Context, tenantID string) (map[string]bool, error) {
	t, err := findTenant(ctx, s.db.Admin, tenantID, false)
	if err != nil {
		return nil, err
	}
	dataSchema := SharedSchema
	if t.SchemaName != "" {
		dataSchema = t.SchemaName
	}
	refs := map[string]bool{}
	tx, err := s.db.Admin.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := setTenant(ctx, tx, t.ID, ""); err != nil {
		return nil, err
	}
	if err := referencedObjects(ctx, tx, t.ID, dataSchema, refs); err != nil {
		return nil, err
	}
	return refs, tx.Commit(ctx)
}
