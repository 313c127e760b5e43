package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// StorageRemover removes what deleted tenants kept in object storage: the
// tenant's bucket with its logos, and the archives of its exports in the
// exports bucket.
//
// Deleting a tenant records, in its transaction, that its files must go
// (tenants.storage_removals); the files are removed after the commit, as
// no call to the store is made inside a transaction. A removal that fails
// (the store is down) keeps its record, with the error, and RemovePending
// (run by `nself serve`) tries it again until it succeeds. Removing twice
// is no error, so the CLI, the console and every server process may all
// try.
type StorageRemover struct {
	db    *DB
	blobs removalStore
	Log   *slog.Logger
	// Wake, when set, speaks when a removal is recorded or fails in any
	// process (a notice on StorageChannel), and when the notices' listener
	// connects again: the retries then look only while a removal may be
	// pending, and a server with none asks the database nothing.
	Wake <-chan struct{}
}

// StorageChannel is the LISTEN/NOTIFY channel on which a recorded
// removal, or a failed attempt at one, is announced.
const StorageChannel = "nself_storage_removal"

// removalStore is the object storage the remover needs.
type removalStore interface {
	ListObjects(ctx context.Context, bucket, prefix string, fn func(tenancy.ObjectInfo) error) error
	// RemoveTenantFiles removes a tenant's bucket and export archives and
	// returns how many objects it removed.
	RemoveTenantFiles(ctx context.Context, tenantID string) (int, error)
}

var _ tenancy.StorageRemover = (*StorageRemover)(nil)

// NewStorageRemover returns a remover on db and blobs.
func NewStorageRemover(db *DB, blobs removalStore) *StorageRemover {
	return &StorageRemover{db: db, blobs: blobs, Log: slog.Default()}
}

// recordStorageRemoval notes, in the transaction that deletes the tenant,
// that its files must be removed.
func recordStorageRemoval(ctx context.Context, tx pgx.Tx, tenantID string) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO tenants.storage_removals (deleted_tenant) VALUES ($1)
		ON CONFLICT (deleted_tenant) DO NOTHING`, tenantID); err != nil {
		return err
	}
	return announce(ctx, tx, StorageChannel, "")
}

// RemoveTenantStorage removes the files of a deleted tenant (by slug or
// id) now and returns how many objects it removed. A tenant that is not
// deleted is refused: its files are in use.
func (r *StorageRemover) RemoveTenantStorage(ctx context.Context, ref string) (int, error) {
	t, err := findTenant(ctx, r.db.Admin, ref, false)
	if err != nil {
		return 0, err
	}
	if t.Status != tenancy.StatusDeleted {
		return 0, tenancy.Errorf(tenancy.ECONFLICT, "tenant %s is not deleted: its files are in use (nself tenant delete %s removes them with it)", t.Slug, t.Slug)
	}
	// Recorded first (a tenant deleted before removals were recorded has
	// no record), so that a failure now is tried again later.
	if _, err := r.db.Admin.Exec(ctx, `
		INSERT INTO tenants.storage_removals (deleted_tenant) VALUES ($1)
		ON CONFLICT (deleted_tenant) DO NOTHING`, t.ID); err != nil {
		return 0, fmt.Errorf("remove the files of tenant %s: %w", t.Slug, err)
	}
	n, err := r.remove(ctx, t.ID, t.Slug)
	if err != nil {
		return n, fmt.Errorf("remove the files of tenant %s: %w", t.Slug, err)
	}
	return n, nil
}

// RemovePending tries every recorded removal and returns how many tenants'
// files are now gone, and how many removals are left. It stops at the
// first store that cannot be reached: the others would fail the same way.
func (r *StorageRemover) RemovePending(ctx context.Context) (done, left int, err error) {
	rows, err := r.db.Admin.Query(ctx, `
		SELECT s.deleted_tenant::text, coalesce(t.slug, '')
		FROM tenants.storage_removals s
		LEFT JOIN tenants.tenants t ON t.id = s.deleted_tenant
		WHERE t.id IS NULL OR t.status = 'deleted'
		ORDER BY s.requested_at`)
	if err != nil {
		return 0, 0, fmt.Errorf("removals of deleted tenants' files: %w", err)
	}
	type pending struct{ id, slug string }
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pending, error) {
		var p pending
		err := row.Scan(&p.id, &p.slug)
		return p, err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("removals of deleted tenants' files: %w", err)
	}
	for _, p := range list {
		n, err := r.remove(ctx, p.id, p.slug)
		if err != nil {
			if ctx.Err() != nil || tenancy.ErrorCode(err) == tenancy.EUNAVAILABLE {
				return done, len(list) - done, err
			}
			r.Log.Error("remove the files of a deleted tenant", "tenant", p.id, "slug", p.slug, "err", err)
			continue
		}
		r.Log.Info("removed the files of a deleted tenant", "tenant", p.id, "slug", p.slug, "objects", n)
		done++
	}
	return done, len(list) - done, nil
}

// remove removes the tenant's files and then its record, or notes the
// failure on the record.
func (r *StorageRemover) remove(ctx context.Context, tenantID, slug string) (int, error) {
	n, err := r.blobs.RemoveTenantFiles(ctx, tenantID)
	if err != nil {
		msg := oneLine(err.Error())
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		// Noted even when ctx has ended, which may be why it failed.
		note, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		// Every process tries again: this one may be a CLI that ends now.
		if _, uerr := r.db.Admin.Exec(note, `
			WITH noted AS (
				UPDATE tenants.storage_removals
				SET attempts = attempts + 1, last_attempt_at = now(), last_error = $2
				WHERE deleted_tenant = $1
				RETURNING true
			)
			SELECT pg_notify($3, '') FROM noted`, tenantID, msg, StorageChannel); uerr != nil {
			r.Log.Warn("the failed removal of a deleted tenant's files was not noted", "tenant", tenantID, "err", uerr)
		}
		return n, err
	}
	err = inTx(ctx, r.db.Admin, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM tenants.storage_removals WHERE deleted_tenant = $1`, tenantID)
		if err != nil || tag.RowsAffected() == 0 || slug == "" {
			return err // done by another process, or the tenant was purged with its log
		}
		if err := setTenant(ctx, tx, tenantID, ""); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "tenant.storage_remove", slug,
			fmt.Sprintf("%d object(s), the bucket and export archives removed", n))
	})
	return n, err
}

// purgeStorageFix is how an operator removes a deleted tenant's files now.
func purgeStorageFix(slug string) string {
	return "nself serve removes them (tried again every --storage-retry); or now: nself tenant purge-storage " + slug
}

// Pending reports the deleted tenants whose files are not removed yet: the
// removals recorded and not done, with their last error. It reads the
// database only, so it answers while the store is down. (Doctor's
// findings about object storage are asked for only where the store is
// configured: without it there are no files to remove.)
func (r *StorageRemover) Pending(ctx context.Context) ([]Finding, error) {
	rows, err := r.db.Admin.Query(ctx, `
		SELECT s.deleted_tenant::text, coalesce(t.slug, ''), s.requested_at, s.attempts, coalesce(s.last_error, '')
		FROM tenants.storage_removals s
		LEFT JOIN tenants.tenants t ON t.id = s.deleted_tenant
		ORDER BY s.requested_at`)
	if err != nil {
		return nil, fmt.Errorf("doctor: removals of deleted tenants' files: %w", err)
	}
	var out []Finding
	for rows.Next() {
		var id, slug, lastErr string
		var since time.Time
		var attempts int
		if err := rows.Scan(&id, &slug, &since, &attempts, &lastErr); err != nil {
			rows.Close()
			return nil, err
		}
		ref := slug
		if ref == "" {
			ref = id
		}
		problem := fmt.Sprintf("is deleted but its files are still in object storage (bucket %s, export archives): removal pending since %s",
			tenancy.TenantBucket(id), since.UTC().Format(time.RFC3339))
		if attempts > 0 {
			problem += fmt.Sprintf(", %d failed attempt(s), last: %s", attempts, lastErr)
		}
		out = append(out, Finding{Table: "tenant " + ref, Problem: problem, Fix: purgeStorageFix(ref)})
	}
	rows.Close()
	return out, rows.Err()
}

// errFound stops a listing at its first object.
var errFound = errors.New("found")

// Leftovers looks in object storage for files of deleted tenants whose
// removal is not pending: an object written after the removal (an upload
// that was under way when the tenant was deleted), or files of a tenant
// deleted before removals were recorded. Each deleted tenant costs two
// listings that stop at the first object.
func (r *StorageRemover) Leftovers(ctx context.Context) ([]Finding, error) {
	rows, err := r.db.Admin.Query(ctx, `
		SELECT t.id::text, t.slug FROM tenants.tenants t
		WHERE t.status = 'deleted'
		  AND NOT EXISTS (SELECT 1 FROM tenants.storage_removals s WHERE s.deleted_tenant = t.id)
		ORDER BY t.slug`)
	if err != nil {
		return nil, fmt.Errorf("doctor: deleted tenants: %w", err)
	}
	type deleted struct{ id, slug string }
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (deleted, error) {
		var d deleted
		err := row.Scan(&d.id, &d.slug)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("doctor: deleted tenants: %w", err)
	}
	var out []Finding
	for _, d := range list {
		for _, where := range []struct{ bucket, prefix string }{
			{tenancy.TenantBucket(d.id), ""},
			{tenancy.ExportBucket, tenancy.ExportPrefix(d.id)},
		} {
			var first string
			err := r.blobs.ListObjects(ctx, where.bucket, where.prefix, func(o tenancy.ObjectInfo) error {
				first = o.Key
				return errFound
			})
			if err != nil && !errors.Is(err, errFound) {
				return out, fmt.Errorf("doctor: files of deleted tenant %s: %w", d.slug, err)
			}
			if first != "" {
				out = append(out, Finding{Table: "tenant " + d.slug,
					Problem: fmt.Sprintf("is deleted but object %s is still in bucket %s", tenancy.Quote(first), where.bucket),
					Fix:     "nself tenant purge-storage " + d.slug})
				break
			}
		}
	}
	return out, nil
}
