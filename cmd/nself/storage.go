package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

// storageRemover removes deleted tenants' files; nil without MinIO
// settings (the removals stay recorded for a process that has them).
func (a *app) storageRemover(ctx context.Context) (*postgres.StorageRemover, error) {
	if a.cfg.MinioEndpoint == "" {
		return nil, nil
	}
	// Said here: the services leave a store they cannot make out.
	if _, err := a.blobStore(); err != nil {
		return nil, err
	}
	svc, err := a.services(ctx)
	if err != nil {
		return nil, err
	}
	return svc.Storage, nil
}

// removeDeletedStorage removes a just-deleted tenant's files and says what
// happened. The delete stands either way: a removal that fails is recorded
// and tried again by nself serve.
func (a *app) removeDeletedStorage(ctx context.Context, db *postgres.DB, t *tenancy.Tenant) {
	r, err := a.storageRemover(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(a.Err, "warning: the tenant's files are not removed yet (%s); nself serve removes them\n", oneLine(err.Error()))
		return
	case r == nil:
		// No object storage, no files: logos and exports are off.
		return
	}
	n, err := r.RemoveTenantStorage(ctx, t.ID)
	if err != nil {
		fmt.Fprintf(a.Err, "warning: the tenant's files are not removed yet: %s\n", oneLine(err.Error()))
		fmt.Fprintf(a.Err, "  nself serve removes them once file storage answers; or run: nself tenant purge-storage %s\n", t.Slug)
		return
	}
	fmt.Fprintf(a.Out, "  Files removed: %d object(s), bucket %s and export archives\n", n, tenancy.TenantBucket(t.ID))
}

func (a *app) tenantPurgeStorageCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "purge-storage SLUG|ID",
		Short: "Remove a deleted tenant's files from object storage now (nself serve also does, until it succeeds)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if _, err := a.database(ctx); err != nil {
				return err
			}
			r, err := a.storageRemover(ctx)
			if err != nil {
				return err
			}
			if r == nil {
				return fmt.Errorf("MINIO_ENDPOINT is not set: the files are in object storage, which this command must reach")
			}
			n, err := r.RemoveTenantStorage(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Files of deleted tenant %s removed: %d object(s), its bucket and export archives\n", args[0], n)
			return nil
		},
	}
}

// storageRetry is serve's periodic removal of deleted tenants' files whose
// removal failed when the tenant was deleted (the store was down).
type storageRetry struct {
	every time.Duration
}

func (s *storageRetry) flags(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&s.every, "storage-retry", time.Minute, "how often removals of deleted tenants' files that failed are tried again (0: never)")
}

// start retries every interval until ctx ends. Several server processes
// may all run it: removing twice is no error.
func (s *storageRetry) start(ctx context.Context, r *postgres.StorageRemover, log *slog.Logger) {
	if s.every <= 0 || r == nil {
		return
	}
	// With r.Wake: looked at when the listener first connects, then only
	// while a removal may be pending.
	go postgres.Watch(ctx, s.every, r.Wake, true, nil, func() bool {
		n, left, err := r.RemovePending(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("deleted tenants' files not removed yet", "removed", n, "err", err)
		case n > 0:
			log.Info("deleted tenants' files removed", "tenants", n)
		}
		return err != nil || left > 0
	})
}
