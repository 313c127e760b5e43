package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/archive"
	"github.com/nself/nself/internal/tenancy"
)

// ExportJobService implements tenancy.ExportJobService: exports requested
// in the portal, built in the background of the serving process. The job's
// row (tenants.tenant_exports, in the tenant's context on the application
// role) carries its progress; the finished archive goes to the exports
// bucket under the tenant's id, and only the owner who asked may fetch it,
// until it expires.
//
// A process may die while it builds (killed, out of memory, its machine
// gone). Its jobs must then stop holding the tenant's one place, and what
// they wrote must not stay behind:
//   - on disk, the tables' spools and the archive are files without a name
//     (archive.OpenSpool), which the kernel frees with the process;
//   - in the database, each job names its process's instance, and the
//     process holds a session advisory lock on that instance on a
//     connection of its own for as long as it lives. A running job whose
//     lock is free, or whose row has not been touched for Stale (the
//     heartbeat of a process cut off from the database), was left by a
//     dead process: any process fails it (at start, every RecoverEvery and
//     when the tenant asks for a new export) and removes what its upload
//     left in the store.
type ExportJobService struct {
	db      *DB
	exports *ExportService
	blobs   tenancy.ObjectStreamer
	Log     *slog.Logger
	// TTL is how long a finished archive may be downloaded.
	TTL time.Duration
	// Stale is how long a running job may go without a sign of life
	// before it counts as dead, and how long a job may make no progress
	// before it is stopped (its store or database stopped answering).
	Stale time.Duration
	// Every is the least time between two progress writes.
	Every time.Duration
	// RecoverEvery is how often Start looks for jobs of dead processes.
	RecoverEvery time.Duration
	// Wake, when set, speaks when a job starts in any process (a notice on
	// ExportChannel) and when the notices' listener connects again: Start
	// then looks only while some job may be running, and a server with no
	// export asks the database nothing. Without it, Start looks every
	// RecoverEvery.
	Wake <-chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the jobs
	// running counts this process's jobs: its lock must stay held only
	// while it has some.
	running atomic.Int32
	loop    sync.WaitGroup // Start's
	expiry  sync.Once
	// slots bounds the exports this process builds at once, whatever the
	// tenants: each holds a snapshot transaction, a connection and disk.
	slots chan struct{}

	// lockMu guards instance and lockConn, the connection that holds the
	// advisory lock saying this process is alive.
	lockMu   sync.Mutex
	instance int32
	lockConn *pgx.Conn
}

// maxConcurrentExports is how many exports one process builds at once;
// others wait their turn, marked running.
const maxConcurrentExports = 2

// ExportChannel is the LISTEN/NOTIFY channel on which a job's start is
// announced, when its transaction commits: the other processes then watch
// for its process dying until no job runs.
const ExportChannel = "nself_export_started"

// exportLockClass is the first key of the advisory lock (exportLockClass,
// instance) a process holds while it may build exports.
const exportLockClass int32 = 1853056376

// deadExport is the condition on a tenant_exports row of a running job
// whose process is gone: its instance's lock is free, or it has shown no
// sign of life for the interval in the parameter named stale. Jobs
// without an instance were written before instances were recorded.
func deadExport(stale, live string) string {
	return `state = 'running' AND (updated_at < now() - ` + stale + `::interval OR (instance IS NOT NULL AND instance <> ALL (` + live + `::int[])))`
}

// liveInstances reads which instance numbers live processes hold, from the
// locks of the server the application connects to. It is a statement of
// its own: on Citus the locks are the coordinator's, and a query of the
// distributed export table with a subquery on pg_locks per row would run
// on the workers (and is refused there).
func liveInstances(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) ([]int32, error) {
	var live []int32
	err := q.QueryRow(ctx, `
		SELECT coalesce(array_agg(l.objid::int), '{}') FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = `+fmt.Sprint(exportLockClass)+`::oid`).Scan(&live)
	return live, err
}

// exportStopped is the failure a job of a dead process shows.
const exportStopped = "the export stopped when its server restarted or lost its database; request it again"

// errExportStalled stops a job that made no progress for Stale.
var errExportStalled = errors.New("the export made no progress")

// expirer is a store that can remove old objects by itself.
type expirer interface {
	ExpireObjects(ctx context.Context, bucket string, days int) error
}

// uploadAborter is a store that can drop an object's unfinished uploads.
type uploadAborter interface {
	AbortUploads(ctx context.Context, bucket, key string) error
}

var _ tenancy.ExportJobService = (*ExportJobService)(nil)

// NewExportJobService returns the service; Close stops its jobs.
func NewExportJobService(exports *ExportService) *ExportJobService {
	ctx, cancel := context.WithCancel(context.Background())
	return &ExportJobService{db: exports.db, exports: exports, blobs: exports.blobs, Log: slog.Default(),
		TTL: 24 * time.Hour, Stale: 5 * time.Minute, Every: 500 * time.Millisecond, RecoverEvery: time.Minute,
		ctx: ctx, cancel: cancel, slots: make(chan struct{}, maxConcurrentExports), instance: newInstance()}
}

// newInstance picks an instance number: random, so that processes need not
// agree on one, and positive, as the column requires.
func newInstance() int32 { return rand.Int32N(math.MaxInt32) + 1 }

// Start marks this process alive, fails the jobs dead processes left, and
// keeps doing both every RecoverEvery until Close: with Wake, only while
// a job may be running.
func (s *ExportJobService) Start(ctx context.Context) error {
	if _, err := s.holdInstance(ctx); err != nil {
		return fmt.Errorf("exports: %w", err)
	}
	_, running, err := s.recoverJobs(ctx)
	if err != nil {
		return fmt.Errorf("exports: %w", err)
	}
	s.loop.Add(1)
	go func() {
		defer s.loop.Done()
		// A process without jobs needs no lock until it starts one, and
		// StartExport takes it then. With Wake, exports of other processes
		// are watched from when one starts until none runs.
		Watch(s.ctx, s.RecoverEvery, s.Wake, running > 0, func() {
			if s.Wake == nil || s.running.Load() > 0 {
				if _, err := s.holdInstance(s.ctx); err != nil && s.ctx.Err() == nil {
					s.Log.Warn("export: cannot mark this process alive", "err", err)
				}
			}
		}, func() bool {
			_, running, err := s.recoverJobs(s.ctx)
			if err != nil && s.ctx.Err() == nil {
				s.Log.Warn("export: jobs of stopped processes not recovered", "err", err)
			}
			return err != nil || running > 0
		})
	}()
	return nil
}

// Close cancels running jobs (they end as failed), waits for them, and
// lets go of this process's lock.
func (s *ExportJobService) Close() {
	s.cancel()
	s.wg.Wait()
	s.loop.Wait()
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lockConn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Unlock before closing: the server frees a closed session's locks
		// only once its backend has ended, a moment later, and another
		// process asking at once would still see this one alive.
		s.lockConn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		s.lockConn.Close(ctx)
		s.lockConn = nil
	}
}

// Wait waits for the running jobs to end; for tests.
func (s *ExportJobService) Wait() { s.wg.Wait() }

// holdInstance makes sure this process holds its instance's lock, on a
// connection of its own (a pooled one would hand the lock to whoever uses
// it next), and returns the instance. A connection that was lost (the
// database restarted) is made again; the jobs it covered may have been
// failed meanwhile, and end so.
func (s *ExportJobService) holdInstance(ctx context.Context) (int32, error) {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if s.lockConn != nil {
		if err := s.lockConn.Ping(ctx); err == nil {
			return s.instance, nil
		}
		s.lockConn.Close(ctx)
		s.lockConn = nil
		s.Log.Warn("export: the connection marking this process alive was lost; connecting again")
	}
	conn, err := pgx.ConnectConfig(ctx, s.db.App.Config().ConnConfig.Copy())
	if err != nil {
		return 0, fmt.Errorf("connect to mark this process alive: %w", err)
	}
	for range 8 {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, exportLockClass, s.instance).Scan(&ok); err != nil {
			conn.Close(ctx)
			return 0, fmt.Errorf("mark this process alive: %w", err)
		}
		if ok {
			s.lockConn = conn
			return s.instance, nil
		}
		s.instance = newInstance() // another live process has this one
	}
	conn.Close(ctx)
	return 0, errors.New("mark this process alive: no free instance number")
}

// Recover fails the running jobs of processes that are gone, in every
// tenant, and removes what their uploads left in the store. It returns
// how many it failed.
func (s *ExportJobService) Recover(ctx context.Context) (int, error) {
	n, _, err := s.recoverJobs(ctx)
	return n, err
}

// recoverJobs is Recover, and also says how many jobs still run (in live
// processes), which are to be watched.
func (s *ExportJobService) recoverJobs(ctx context.Context) (failed, running int, err error) {
	live, err := liveInstances(ctx, s.db.Admin)
	if err != nil {
		return 0, 0, fmt.Errorf("find stopped exports: %w", err)
	}
	rows, err := s.db.Admin.Query(ctx, `
		SELECT tenant_id, id, `+deadExport("$1", "$2")+`
		FROM tenants.tenant_exports WHERE state = 'running'`, interval(s.Stale), live)
	if err != nil {
		return 0, 0, fmt.Errorf("find stopped exports: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (exportRef, error) {
		var x exportRef
		err := r.Scan(&x.tenant, &x.id, &x.dead)
		return x, err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("find stopped exports: %w", err)
	}
	var dead []exportRef
	for _, j := range jobs {
		if j.dead {
			dead = append(dead, j)
		} else {
			running++
		}
	}
	n, err := s.failDead(ctx, dead)
	// A job not failed came back to life (its process to its lock).
	return n, running + len(dead) - n, err
}

// exportRef is a running job, and whether its process is gone.
type exportRef struct {
	tenant, id string
	dead       bool
}

// failDead fails the jobs found dead, each only if it still is.
func (s *ExportJobService) failDead(ctx context.Context, dead []exportRef) (int, error) {
	n := 0
	for _, d := range dead {
		// Written in the tenant's context, and only if still dead: its
		// process may have come back to its lock meanwhile.
		failed := false
		live, err := liveInstances(ctx, s.db.Admin)
		if err != nil {
			return n, fmt.Errorf("fail stopped export %s of tenant %s: %w", d.id, d.tenant, err)
		}
		err = writeInTenant(ctx, s.db.App, d.tenant, func(rows pgx.Rows) error {
			failed = rows.Next()
			return nil
		}, `UPDATE tenants.tenant_exports SET state = 'failed', failure = $4, finished_at = now(), updated_at = now()
			WHERE tenant_id = $1 AND id = $2 AND `+deadExport("$3", "$5")+` RETURNING id`,
			d.tenant, d.id, interval(s.Stale), exportStopped, live)
		if err != nil {
			return n, fmt.Errorf("fail stopped export %s of tenant %s: %w", d.id, d.tenant, err)
		}
		if failed {
			n++
			s.Log.Warn("export: failed a job whose server stopped", "tenant", d.tenant, "export", d.id)
			s.discardArchive(ctx, d.tenant, d.id)
		}
	}
	return n, nil
}

// discardArchive removes what a job that did not finish may have put in
// the store: the parts of an unfinished upload, or a whole archive whose
// job could not be marked ready.
func (s *ExportJobService) discardArchive(ctx context.Context, tenantID, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	key := tenancy.ExportKey(tenantID, id)
	if a, ok := s.blobs.(uploadAborter); ok {
		if err := a.AbortUploads(ctx, tenancy.ExportBucket, key); err != nil {
			s.Log.Warn("export: unfinished upload left behind", "tenant", tenantID, "export", id, "err", err)
		}
	}
	if err := s.blobs.Remove(ctx, tenancy.ExportBucket, key); err != nil {
		s.Log.Warn("export: archive left behind", "tenant", tenantID, "export", id, "err", err)
	}
}

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

// StartExport records a running job and builds its archive in the
// background.
func (s *ExportJobService) StartExport(ctx context.Context, tenantID, userID string) (*tenancy.ExportJob, error) {
	instance, err := s.holdInstance(ctx)
	if err != nil {
		return nil, fmt.Errorf("start export: %w", err)
	}
	var job *tenancy.ExportJob
	var expired, dead []string
	err = inTenant(ctx, s.db.App, tenantID, userID, func(tx pgx.Tx) error {
		// A job whose process died is failed, so that it no longer holds
		// the tenant's one place.
		live, err := liveInstances(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			UPDATE tenants.tenant_exports
			SET state = 'failed', failure = $3, finished_at = now(), updated_at = now()
			WHERE tenant_id = $1 AND `+deadExport("$2", "$4")+` RETURNING id`,
			tenantID, interval(s.Stale), exportStopped, live)
		if err != nil {
			return err
		}
		if dead, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		// Archives past their time are removed now, the rows kept as
		// history.
		rows, err = tx.Query(ctx, `
			UPDATE tenants.tenant_exports SET state = 'expired', object_key = NULL
			WHERE tenant_id = $1 AND state = 'ready' AND expires_at <= now()
			RETURNING id`, tenantID)
		if err != nil {
			return err
		}
		if expired, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		// Archives are storage: a tenant at its plan's limit gets no new
		// one, or exporting again and again would store without bound.
		plan, maxGB, used, err := storageInUse(ctx, tx, tenantID, "")
		if err != nil {
			return err
		}
		if err := tenancy.CheckExportRoom(plan, maxGB, used); err != nil {
			return err
		}
		job, err = scanExportJob(tx.QueryRow(ctx, `
			INSERT INTO tenants.tenant_exports (tenant_id, requested_by, instance) VALUES ($1, $2, $3)
			RETURNING `+exportJobColumns, tenantID, userID, instance))
		if err != nil {
			return err
		}
		// The other processes watch the job until it ends, to fail it if
		// this process dies.
		return announce(ctx, tx, ExportChannel, "")
	})
	if err != nil {
		return nil, fmt.Errorf("start export: %w", translate(err))
	}
	for _, id := range dead {
		s.discardArchive(ctx, tenantID, id)
	}
	for _, id := range expired {
		if err := s.blobs.Remove(ctx, tenancy.ExportBucket, tenancy.ExportKey(tenantID, id)); err != nil {
			s.Log.Warn("export: expired archive left behind", "tenant", tenantID, "export", id, "err", err)
		}
	}
	s.wg.Add(1)
	s.running.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.running.Add(-1)
		s.run(job)
	}()
	return job, nil
}

// activity is when a job last made progress; a job waiting for a slot
// counts as making progress.
type activity struct {
	last    atomic.Int64 // unix nanoseconds
	waiting atomic.Bool
}

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *activity) idle() time.Duration {
	if a.waiting.Load() {
		return 0
	}
	return time.Since(time.Unix(0, a.last.Load()))
}

// touchWriter and touchReader note progress as bytes go through.
type touchWriter struct {
	w io.Writer
	a *activity
}

func (t touchWriter) Write(p []byte) (int, error) { t.a.touch(); return t.w.Write(p) }

type touchReader struct {
	r io.Reader
	a *activity
}

func (t touchReader) Read(p []byte) (int, error) { t.a.touch(); return t.r.Read(p) }

// run builds the archive in a nameless file, uploads it and marks the job
// ready, or failed with a message the owner may read.
func (s *ExportJobService) run(job *tenancy.ExportJob) {
	ctx, stop := context.WithCancelCause(s.ctx)
	life := &activity{}
	life.touch()
	beat := make(chan struct{})
	go func() {
		defer close(beat)
		s.heartbeat(ctx, stop, job, life)
	}()
	defer func() { stop(nil); <-beat }()

	err := s.waitTurn(ctx, life)
	if err == nil {
		defer func() { <-s.slots }()
		err = s.build(ctx, job, life)
	}
	if err == nil {
		return
	}
	msg := tenancy.ErrorMessage(err)
	switch {
	case errors.Is(context.Cause(ctx), errExportStalled):
		s.Log.Error("export stalled", "tenant", job.TenantID, "export", job.ID, "err", err)
		msg = "the export stopped: it made no progress for " + s.Stale.String() + " (storage or the database stopped answering); request it again"
	case s.ctx.Err() != nil:
		msg = "the export stopped when its server shut down; request it again"
	case tenancy.ErrorCode(err) == tenancy.EINTERNAL:
		s.Log.Error("export failed", "tenant", job.TenantID, "export", job.ID, "err", err)
		msg = "the export failed; try again later"
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	err = execInTenant(wctx, s.db.App, job.TenantID, `
			UPDATE tenants.tenant_exports SET state = 'failed', failure = $3, finished_at = now(), updated_at = now()
			WHERE tenant_id = $1 AND id = $2 AND state = 'running'`, job.TenantID, job.ID, msg)
	if err != nil {
		s.Log.Error("export: cannot mark the job failed", "tenant", job.TenantID, "export", job.ID, "err", err)
	}
}

// heartbeat shows the job alive in its row while it makes progress, and
// stops it once it has made none for Stale: an export stuck on a store or
// database that stopped answering would otherwise hold the tenant's one
// place for as long as the process lives.
func (s *ExportJobService) heartbeat(ctx context.Context, stop context.CancelCauseFunc, job *tenancy.ExportJob, life *activity) {
	t := time.NewTicker(max(s.Stale/5, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if life.idle() > s.Stale {
			stop(errExportStalled)
			return
		}
		err := execInTenant(ctx, s.db.App, job.TenantID, `
				UPDATE tenants.tenant_exports SET updated_at = now()
				WHERE tenant_id = $1 AND id = $2 AND state = 'running'`, job.TenantID, job.ID)
		if err != nil && ctx.Err() == nil {
			s.Log.Warn("export: heartbeat not saved", "tenant", job.TenantID, "export", job.ID, "err", err)
		}
	}
}

// waitTurn waits for one of the process's export slots.
func (s *ExportJobService) waitTurn(ctx context.Context, life *activity) error {
	life.waiting.Store(true)
	defer func() { life.touch(); life.waiting.Store(false) }()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *ExportJobService) build(ctx context.Context, job *tenancy.ExportJob, life *activity) error {
	f, err := archive.OpenSpool(s.exports.TempDir, "nself-export-*.tar.gz")
	if err != nil {
		return err
	}
	defer f.Close()
	var last time.Time
	progress := func(p tenancy.ExportProgress) {
		life.touch()
		if time.Since(last) < s.Every {
			return
		}
		last = time.Now()
		if err := s.report(ctx, job, p); err != nil {
			s.Log.Warn("export: progress not saved", "tenant", job.TenantID, "export", job.ID, "err", err)
		}
	}
	m, err := s.exports.Export(ctx, job.TenantID, touchWriter{f, life}, progress)
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
	key := tenancy.ExportKey(job.TenantID, job.ID)
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
	if err := s.blobs.PutObjectStream(ctx, tenancy.ExportBucket, key, touchReader{f, life}, size, "application/gzip"); err != nil {
		s.discardArchive(ctx, job.TenantID, job.ID)
		return err
	}
	var p tenancy.ExportProgress
	p.Tables, p.TablesDone = len(m.Tables), len(m.Tables)
	for _, t := range m.Tables {
		p.Rows += t.Rows
	}
	p.RowsDone, p.Objects, p.ObjectsDone = p.Rows, len(m.Objects), len(m.Objects)
	// Only a job still running becomes ready: one failed meanwhile (its
	// process taken for dead while cut off from the database) stays
	// failed, and its archive goes.
	marked := false
	err = writeInTenant(ctx, s.db.App, job.TenantID, func(rows pgx.Rows) error {
		marked = rows.Next()
		return nil
	}, `
			UPDATE tenants.tenant_exports
			SET state = 'ready', object_key = $3, size_bytes = $4, finished_at = now(), updated_at = now(),
			    expires_at = now() + $5::interval,
			    tables_total = $6, tables_done = $6, rows_total = $7, rows_done = $7, objects_total = $8, objects_done = $8
			WHERE tenant_id = $1 AND id = $2 AND state = 'running'
			RETURNING id`, job.TenantID, job.ID, key, size, interval(s.TTL),
		p.Tables, p.Rows, p.Objects)
	if err == nil && !marked {
		err = tenancy.Errorf(tenancy.ECONFLICT, exportStopped)
	}
	if err != nil {
		s.discardArchive(ctx, job.TenantID, job.ID)
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
	r, _, err := s.blobs.OpenObject(ctx, tenancy.ExportBucket, tenancy.ExportKey(tenantID, job.ID))
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("open export: %w", err)
	}
	return job, r, nil
}
