package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// ExportJobService implements tenancy.ExportJobService: exports requested
// in the portal, built in the background of the serving process. The job's
// row (tenants.tenant_exports, in the tenant's context on the application
// role) carries its progress; the finished archive goes to the exports
// bucket under the tenant's id, and only the owner who asked may fetch it,
// until it expires.
type ExportJobService struct {
	db      *DB
	exports *ExportService
	blobs   tenancy.ObjectStreamer
	Log     *slog.Logger
	// TTL is how long a finished archive may be downloaded.
	TTL time.Duration
	// Stale is how long a running job may go without progress before it
	// counts as dead (its process stopped) and another may start.
	Stale time.Duration
	// Every is the least time between two progress writes.
	Every time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	expiry sync.Once
	// slots bounds the exports this process builds at once, whatever the
	// tenants: each holds a snapshot transaction, a connection and disk.
	slots chan struct{}
}

// maxConcurrentExports is how many exports one process builds at once;
// others wait their turn, marked running.
const maxConcurrentExports = 2

// expirer is a store that can remove old objects by itself.
type expirer interface {
	ExpireObjects(ctx context.Context, bucket string, days int) error
}

var _ tenancy.ExportJobService = (*ExportJobService)(nil)

// NewExportJobService returns the service; Close stops its jobs.
func NewExportJobService(exports *ExportService) *ExportJobService {
	ctx, cancel := context.WithCancel(context.Background())
	return &ExportJobService{db: exports.db, exports: exports, blobs: exports.blobs, Log: slog.Default(),
		TTL: 24 * time.Hour, Stale: 5 * time.Minute, Every: 500 * time.Millisecond, ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, maxConcurrentExports)}
}

// Close cancels running jobs (they end as failed) and waits for them.
func (s *ExportJobService) Close() {
	s.cancel()
	s.wg.Wait()
}

// Wait waits for the running jobs to end; for tests.
func (s *ExportJobService) Wait() { s.wg.Wait() }

const exportJobColumns = `tenant_id, id, requested_by, state, tables_total, tables_done, rows_total, rows_done,
	objects_total, objects_done, size_bytes, coalesce(failure, ''), created_at, finished_at, expires_at`

func scanExportJob(row pgx.Row) (*tenancy.ExportJob, error) {
	var j tenancy.ExportJob
	p := &j.Progress
	err := row.Scan(&j.TenantID, &j.ID, &j.RequestedBy, &j.State, &p.Tables, &p.TablesDone, &p.Rows, &p.RowsDone,
		&p.Objects, &p.ObjectsDone, &j.Size, &j.Failure, &j.CreatedAt, &j.FinishedAt, &j.ExpiresAt)
	if err != nil {
		return nil, err
	}
	return &j, nil
}

func exportNotFound() error { return tenancy.Errorf(tenancy.ENOTFOUND, "no such export") }

func exportKey(tenantID, id string) string { return tenantID + "/" + id + ".tar.gz" }

// StartExport records a running job and builds its archive in the
// background.
func (s *ExportJobService) StartExport(ctx context.Context, tenantID, userID string) (*tenancy.ExportJob, error) {
	var job *tenancy.ExportJob
	var expired []string
	err := inTenant(ctx, s.db.App, tenantID, userID, func(tx pgx.Tx) error {
		// A job whose process died is failed, so that it no longer holds
		// the tenant's one place.
		if _, err := tx.Exec(ctx, `
			UPDATE tenants.tenant_exports
			SET state = 'failed', failure = 'the export stopped (the server restarted); request it again', finished_at = now()
			WHERE tenant_id = $1 AND state = 'running' AND updated_at < now() - $2::interval`,
			tenantID, interval(s.Stale)); err != nil {
			return err
		}
		// Archives past their time are removed now, the rows kept as
		// history.
		rows, err := tx.Query(ctx, `
			UPDATE tenants.tenant_exports SET state = 'expired', object_key = NULL
			WHERE tenant_id = $1 AND state = 'ready' AND expires_at <= now()
			RETURNING id`, tenantID)
		if err != nil {
			return err
		}
		if expired, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		job, err = scanExportJob(tx.QueryRow(ctx, `
			INSERT INTO tenants.tenant_exports (tenant_id, requested_by) VALUES ($1, $2)
			RETURNING `+exportJobColumns, tenantID, userID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("start export: %w", translate(err))
	}
	for _, id := range expired {
		if err := s.blobs.Remove(ctx, tenancy.ExportBucket, exportKey(tenantID, id)); err != nil {
			s.Log.Warn("export: expired archive left behind", "tenant", tenantID, "export", id, "err", err)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(job)
	}()
	return job, nil
}

// run builds the archive in a temporary file, uploads it and marks the job
// ready, or failed with a message the owner may read.
func (s *ExportJobService) run(job *tenancy.ExportJob) {
	ctx := s.ctx
	err := s.waitTurn(ctx, job)
	if err == nil {
		defer func() { <-s.slots }()
		err = s.build(ctx, job)
	}
	if err == nil {
		return
	}
	msg := tenancy.ErrorMessage(err)
	if tenancy.ErrorCode(err) == tenancy.EINTERNAL {
		s.Log.Error("export failed", "tenant", job.TenantID, "export", job.ID, "err", err)
		msg = "the export failed; try again later"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	err = execInTenant(ctx, s.db.App, job.TenantID, `
			UPDATE tenants.tenant_exports SET state = 'failed', failure = $3, finished_at = now(), updated_at = now()
			WHERE tenant_id = $1 AND id = $2`, job.TenantID, job.ID, msg)
	if err != nil {
		s.Log.Error("export: cannot mark the job failed", "tenant", job.TenantID, "export", job.ID, "err", err)
	}
}

// waitTurn waits for one of the process's export slots. A job waiting
// keeps showing signs of life, so that it is not taken for one whose
// process died.
func (s *ExportJobService) waitTurn(ctx context.Context, job *tenancy.ExportJob) error {
	t := time.NewTicker(s.Stale / 3)
	defer t.Stop()
	for {
		select {
		case s.slots <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			err := execInTenant(ctx, s.db.App, job.TenantID, `
					UPDATE tenants.tenant_exports SET updated_at = now()
					WHERE tenant_id = $1 AND id = $2 AND state = 'running'`, job.TenantID, job.ID)
			if err != nil {
				s.Log.Warn("export: waiting job not refreshed", "tenant", job.TenantID, "export", job.ID, "err", err)
			}
		}
	}
}

func (s *ExportJobService) build(ctx context.Context, job *tenancy.ExportJob) error {
	f, err := os.CreateTemp(s.exports.TempDir, "nself-export-*.tar.gz")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var last time.Time
	progress := func(p tenancy.ExportProgress) {
		if time.Since(last) < s.Every {
			return
		}
		last = time.Now()
		if err := s.report(ctx, job, p); err != nil {
			s.Log.Warn("export: progress not saved", "tenant", job.TenantID, "export", job.ID, "err", err)
		}
	}
	m, err := s.exports.Export(ctx, job.TenantID, f, progress)
	if err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	key := exportKey(job.TenantID, job.ID)
	// Archives hold every member's data: besides their removal when the
	// tenant's next export starts, the store removes any left a day after
	// they expire.
	s.expiry.Do(func() {
		if e, ok := s.blobs.(expirer); ok {
			if err := e.ExpireObjects(ctx, tenancy.ExportBucket, int(s.TTL.Hours()/24)+1); err != nil {
				s.Log.Warn("export: archives will not expire in the store", "err", err)
			}
		}
	})
	if err := s.blobs.PutObjectStream(ctx, tenancy.ExportBucket, key, f, size, "application/gzip"); err != nil {
		return err
	}
	var p tenancy.ExportProgress
	p.Tables, p.TablesDone = len(m.Tables), len(m.Tables)
	for _, t := range m.Tables {
		p.Rows += t.Rows
	}
	p.RowsDone, p.Objects, p.ObjectsDone = p.Rows, len(m.Objects), len(m.Objects)
	err = execInTenant(ctx, s.db.App, job.TenantID, `
			UPDATE tenants.tenant_exports
			SET state = 'ready', object_key = $3, size_bytes = $4, finished_at = now(), updated_at = now(),
			    expires_at = now() + $5::interval,
			    tables_total = $6, tables_done = $6, rows_total = $7, rows_done = $7, objects_total = $8, objects_done = $8
			WHERE tenant_id = $1 AND id = $2`, job.TenantID, job.ID, key, size, interval(s.TTL),
		p.Tables, p.Rows, p.Objects)
	if err != nil {
		_ = s.blobs.Remove(context.WithoutCancel(ctx), tenancy.ExportBucket, key)
		return err
	}
	return nil
}

func (s *ExportJobService) report(ctx context.Context, job *tenancy.ExportJob, p tenancy.ExportProgress) error {
	return execInTenant(ctx, s.db.App, job.TenantID, `
			UPDATE tenants.tenant_exports
			SET tables_total = $3, tables_done = $4, rows_total = $5, rows_done = $6,
			    objects_total = $7, objects_done = $8, size_bytes = $9, updated_at = now()
			WHERE tenant_id = $1 AND id = $2 AND state = 'running'`, job.TenantID, job.ID, p.Tables, p.TablesDone, p.Rows, p.RowsDone, p.Objects, p.ObjectsDone, p.Bytes)
}

// GetExport returns the job if the user requested it in this tenant.
func (s *ExportJobService) GetExport(ctx context.Context, tenantID, userID, id string) (*tenancy.ExportJob, error) {
	if !tenancy.IsUUID(id) || !tenancy.IsUUID(userID) {
		return nil, exportNotFound()
	}
	var job *tenancy.ExportJob
	err := readInTenant(ctx, s.db.App, tenantID, userID, func(rows pgx.Rows) error {
		if !rows.Next() {
			return exportNotFound()
		}
		var err error
		job, err = scanExportJob(rows)
		return err
	}, `SELECT `+exportJobColumns+` FROM tenants.tenant_exports
		WHERE tenant_id = $1 AND id = $2 AND requested_by = $3`, tenantID, id, userID)
	if err != nil {
		return nil, translate(err)
	}
	return job, nil
}

// LatestExport returns the user's newest job in the tenant, or nil.
func (s *ExportJobService) LatestExport(ctx context.Context, tenantID, userID string) (*tenancy.ExportJob, error) {
	if !tenancy.IsUUID(userID) {
		return nil, nil
	}
	var job *tenancy.ExportJob
	err := readInTenant(ctx, s.db.App, tenantID, userID, func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		var err error
		job, err = scanExportJob(rows)
		return err
	}, `SELECT `+exportJobColumns+` FROM tenants.tenant_exports
		WHERE tenant_id = $1 AND requested_by = $2
		ORDER BY created_at DESC LIMIT 1`, tenantID, userID)
	if err != nil {
		return nil, translate(err)
	}
	return job, nil
}

// OpenExport opens the archive of a ready job the user requested, while it
// has not expired.
func (s *ExportJobService) OpenExport(ctx context.Context, tenantID, userID, id string) (*tenancy.ExportJob, io.ReadCloser, error) {
	job, err := s.GetExport(ctx, tenantID, userID, id)
	if err != nil {
		return nil, nil, err
	}
	switch job.StateAt(s.db.Now()) {
	case tenancy.ExportReady:
	case tenancy.ExportRunning:
		return nil, nil, tenancy.Errorf(tenancy.ECONFLICT, "the export is not finished yet")
	case tenancy.ExportExpired:
		return nil, nil, tenancy.Errorf(tenancy.ENOTFOUND, "this export has expired; request a new one")
	default:
		return nil, nil, exportNotFound()
	}
	r, _, err := s.blobs.OpenObject(ctx, tenancy.ExportBucket, exportKey(tenantID, job.ID))
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("open export: %w", err)
	}
	return job, r, nil
}
