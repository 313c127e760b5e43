package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// Meter counts a tenant's API requests against its plan's monthly limit,
// in O(1) per request and without a database round trip for most of them.
//
// Processes are granted requests in blocks: a grant adds the block to the
// month's reserved count in billing_usage_counters, in one statement that
// never lets reserved pass the limit, and the process then admits requests
// from its block in memory. However many processes serve a tenant, no more
// requests than the limit are admitted in a month. Blocks shrink as the
// limit nears (an eighth of what is left, at most MaxBlock), so the
// requests one process holds back from the others stay few; a block idle
// for IdleRelease is handed back, and so is every block on Close.
//
// What the requests consumed (used) and the server time they took are
// added to the counters every flush (the interval given to Run), all
// tenants' in one transaction: no request writes them. A crash loses the
// counts of at most one flush interval, and the unused part of the blocks
// it held (at most MaxBlock requests per tenant), which then count as
// consumed until the month ends. It never admits more than the limit.
type Meter struct {
	db  *DB
	log *slog.Logger
	// MaxBlock bounds the requests granted to this process at once.
	MaxBlock int64
	// IdleRelease hands back a block no request has drawn on for this long.
	IdleRelease time.Duration
	// OnThreshold hears when this process's grant took a tenant's month to
	// 80 or 100 percent of its limit, once the owners' mail is queued.
	// Grants are serialized per tenant in the database, so exactly one
	// process hears each crossing.
	OnThreshold func(tenantID string, percent int, limit int64)

	mu      sync.RWMutex
	tenants map[string]*tenantMeter
	spill   []meterDelta // counts of ended periods, awaiting a flush
}

type tenantMeter struct {
	mu         sync.Mutex
	period     time.Time
	limit      int64
	remaining  int64 // granted to this process, not yet admitted
	reserved   int64 // the month's reserved count after the latest grant
	release    int64 // granted, to hand back at the next flush or grant
	used       int64 // admitted since the latest flush
	unreserved int64 // of used, admitted under an unlimited plan
	compute    time.Duration
	known      int64 // the month's used count at the latest flush
	// lastUse and exhaustedUntil are unix nanoseconds: a process metering
	// 100,000 tenants holds one of these for each.
	lastUse        int64
	exhaustedUntil int64
}

type meterDelta struct {
	tenantID string
	period   time.Time
	used     int64
	compute  time.Duration
	release  int64
	// reserve is what was admitted without a grant, under an unlimited
	// plan: it counts against a limit the tenant moves to this month.
	reserve int64
}

// NewMeter returns a meter writing to db.
func NewMeter(db *DB, log *slog.Logger) *Meter {
	return &Meter{db: db, log: log, MaxBlock: 256, IdleRelease: 5 * time.Second, tenants: map[string]*tenantMeter{}}
}

func (m *Meter) tenant(id string) *tenantMeter {
	m.mu.RLock()
	tm := m.tenants[id]
	m.mu.RUnlock()
	if tm != nil {
		return tm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if tm = m.tenants[id]; tm == nil {
		tm = &tenantMeter{}
		m.tenants[id] = tm
	}
	return tm
}

// Admit counts one API request of the tenant, whose plan allows limit
// requests a month (tenancy.Unlimited: no limit), and says whether it may
// go on.
func (m *Meter) Admit(ctx context.Context, tenantID string, limit int64) (tenancy.APIQuota, error) {
	now := m.db.Now()
	period := tenancy.PeriodOf(now)
	q := tenancy.APIQuota{Limit: limit, ResetDate: tenancy.PeriodEnd(now)}
	tm := m.tenant(tenantID)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if !tm.period.Equal(period) {
		m.rollover(tenantID, tm, period)
	}
	tm.lastUse = now.UnixNano()
	if tm.limit != limit {
		// A plan change: what was granted under the old limit goes back.
		tm.release += tm.remaining
		tm.remaining, tm.limit, tm.exhaustedUntil = 0, limit, 0
	}
	if limit < 0 {
		tm.used++
		tm.unreserved++
		q.Allowed, q.Current = true, tm.known+tm.used
		return q, nil
	}
	if tm.remaining == 0 {
		if now.UnixNano() < tm.exhaustedUntil {
			// Refused a moment ago: refuse again without asking the
			// database, so a tenant over its limit costs it nothing.
			q.Current = tm.reserved
			return q, nil
		}
		granted, reserved, err := m.grant(ctx, tenantID, period, limit, tm.release)
		if err != nil {
			return q, err
		}
		tm.release, tm.reserved, tm.remaining = 0, reserved, granted
		m.thresholds(ctx, tenantID, period, limit, reserved-granted, reserved)
		if granted == 0 {
			tm.exhaustedUntil = now.Add(time.Second).UnixNano()
			q.Current = reserved
			return q, nil
		}
	}
	tm.remaining--
	tm.used++
	q.Allowed, q.Current = true, tm.reserved-tm.remaining
	return q, nil
}

// AddCompute adds server time spent on one of the tenant's requests.
func (m *Meter) AddCompute(tenantID string, d time.Duration) {
	tm := m.tenant(tenantID)
	tm.mu.Lock()
	tm.compute += d
	tm.mu.Unlock()
}

// rollover starts a new period: the old one's counts wait for the next
// flush, and its blocks are void.
func (m *Meter) rollover(tenantID string, tm *tenantMeter, period time.Time) {
	if !tm.period.IsZero() && (tm.used > 0 || tm.compute > 0) {
		m.mu.Lock()
		m.spill = append(m.spill, meterDelta{tenantID: tenantID, period: tm.period, used: tm.used, compute: tm.compute, reserve: tm.unreserved})
		m.mu.Unlock()
	}
	tm.period = period
	tm.remaining, tm.reserved, tm.release, tm.used, tm.unreserved, tm.compute, tm.known = 0, 0, 0, 0, 0, 0, 0
	tm.exhaustedUntil = 0
}

// grant asks for a block of requests, handing back release first, and
// returns the block's size (0 when the month's limit is reached) and the
// month's reserved count after it.
func (m *Meter) grant(ctx context.Context, tenantID string, period time.Time, limit, release int64) (granted, reserved int64, err error) {
	err = writeInTenant(ctx, m.db.App, tenantID, func(rows pgx.Rows) error {
		if !rows.Next() {
			return fmt.Errorf("no counter row returned")
		}
		return rows.Scan(&reserved, &granted)
	}, `
		INSERT INTO public.billing_usage_counters AS c (tenant_id, period, service_name, reserved, last_grant)
		VALUES ($1, $2, 'api_requests',
		        least($3::bigint, greatest($4::bigint / 8, 1), $4::bigint),
		        least($3::bigint, greatest($4::bigint / 8, 1), $4::bigint))
		ON CONFLICT (tenant_id, period, service_name) DO UPDATE SET
		  last_grant = least($3, greatest(($4 - (c.reserved - $5)) / 8, 1), greatest($4 - (c.reserved - $5), 0)),
		  reserved = (c.reserved - $5) + least($3, greatest(($4 - (c.reserved - $5)) / 8, 1), greatest($4 - (c.reserved - $5), 0)),
		  updated_at = excluded.updated_at
		RETURNING c.reserved, c.last_grant`,
		tenantID, period, m.MaxBlock, limit, release)
	if err != nil {
		return 0, 0, fmt.Errorf("grant API requests: %w", translate(err))
	}
	return granted, reserved, nil
}

// thresholds records the 80% and 100% marks a grant crossed, once a month
// each, and queues the owners' quota mails in the same statement: a block
// handed back and granted again crosses a mark again, so the month's
// counter row records each notice, and only the process that records it
// queues the mails (and tells OnThreshold), and wakes the senders
// (MailChannel) when it commits.
func (m *Meter) thresholds(ctx context.Context, tenantID string, period time.Time, limit, before, after int64) {
	if limit <= 0 {
		return
	}
	for _, pct := range []int{80, 100} {
		mark := (limit*int64(pct) + 99) / 100
		if before >= mark || after < mark {
			continue
		}
		first := false
		err := writeInTenant(ctx, m.db.App, tenantID, func(rows pgx.Rows) error {
			first = rows.Next()
			return nil
		}, `
			WITH notice AS (
				UPDATE public.billing_usage_counters SET notified_`+fmt.Sprint(pct)+`_at = now()
				WHERE tenant_id = $1 AND period = $2 AND service_name = 'api_requests'
				  AND notified_`+fmt.Sprint(pct)+`_at IS NULL
				RETURNING tenant_id
			), queued AS (
				INSERT INTO tenants.tenant_mail_outbox (tenant_id, template, recipient, vars, link)
				SELECT m.tenant_id, 'quota_warning', u.email,
				       jsonb_build_object('USER_NAME', coalesce(nullif(u.name, ''), u.email), 'USER_EMAIL', u.email), $3
				FROM notice n
				JOIN tenants.tenant_members m ON m.tenant_id = n.tenant_id AND m.role = 'owner'
				JOIN auth.users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
			)
			SELECT true FROM notice CROSS JOIN LATERAL pg_notify($4, '')`, tenantID, period, billingPath, MailChannel)
		if err != nil {
			m.log.Warn("usage meter: record a quota notice", "tenant", tenantID, "percent", pct, "err", err)
			continue
		}
		if first {
			m.log.Info("API quota threshold: owners' mail queued", "tenant", tenantID, "percent", pct, "limit", limit)
			if m.OnThreshold != nil {
				m.OnThreshold(tenantID, pct, limit)
			}
		}
	}
}

// meters is a copy of the tenants' meters. Admit holds a tenant's lock and
// then (at a month's turn) takes m.mu: the copy lets callers lock each
// tenant with m.mu released, never nesting the locks the other way.
func (m *Meter) meters() map[string]*tenantMeter {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.tenants)
}

// DefaultFlushEvery is how often serve writes the meter's counts unless
// told otherwise (--usage-flush). Counts are not what keeps a tenant
// within its limit (the blocks granted are), so the interval bounds only
// what a crash loses and how stale the billing page's count is.
const DefaultFlushEvery = 10 * time.Second

// flushChunk bounds the tenants written in one transaction, and so how long
// it holds their counter rows from another process's grant.
const flushChunk = 500

// Flush writes the counts gathered since the last flush, and hands back
// blocks idle for IdleRelease: all tenants' counts in one transaction (per
// flushChunk tenants), one round trip. Counts that fail to be written are
// kept for the next flush.
func (m *Meter) Flush(ctx context.Context) error {
	now := m.db.Now()
	// pending pairs counts with the meter they came from (nil for an ended
	// period's), which learns the month's count once they are written.
	type pending struct {
		d  meterDelta
		tm *tenantMeter
	}
	var all []pending
	m.mu.Lock()
	for _, d := range m.spill {
		all = append(all, pending{d: d})
	}
	m.spill = nil
	m.mu.Unlock()
	for id, tm := range m.meters() {
		tm.mu.Lock()
		if tm.remaining > 0 && now.UnixNano()-tm.lastUse >= int64(m.IdleRelease) {
			tm.release += tm.remaining
			tm.remaining = 0
		}
		d := meterDelta{tenantID: id, period: tm.period, used: tm.used, compute: tm.compute, release: tm.release, reserve: tm.unreserved}
		tm.used, tm.unreserved, tm.compute, tm.release = 0, 0, 0, 0
		tm.mu.Unlock()
		if d.used > 0 || d.compute > 0 || d.release > 0 || d.reserve > 0 {
			all = append(all, pending{d, tm})
		}
	}
	// Every process locks the counter rows in the same order, so two
	// flushes never wait on each other in a cycle.
	slices.SortFunc(all, func(a, b pending) int {
		if c := strings.Compare(a.d.tenantID, b.d.tenantID); c != 0 {
			return c
		}
		return a.d.period.Compare(b.d.period)
	})
	var failed []meterDelta
	var firstErr error
	for chunk := range slices.Chunk(all, flushChunk) {
		batch := make([]meterDelta, len(chunk))
		for i, p := range chunk {
			batch[i] = p.d
		}
		used, err := m.write(ctx, batch, now)
		if err != nil {
			// One tenant's failure (a tenant deleted since its requests)
			// must not hold back the others' counts: write them one by one.
			used = make([]int64, len(batch))
			for i, d := range batch {
				u, err := m.write(ctx, batch[i:i+1], now)
				if err != nil {
					failed = append(failed, d)
					if firstErr == nil {
						firstErr = err
					}
					used[i] = -1
					continue
				}
				used[i] = u[0]
			}
		}
		for i, p := range chunk {
			if p.tm != nil && used[i] >= 0 {
				p.tm.mu.Lock()
				if p.tm.period.Equal(p.d.period) {
					p.tm.known = used[i]
				}
				p.tm.mu.Unlock()
			}
		}
	}
	if len(failed) > 0 {
		m.mu.Lock()
		m.spill = append(m.spill, failed...)
		m.mu.Unlock()
	}
	return firstErr
}

// write adds the tenants' counts to their months and days, in one
// transaction sent in one round trip, and returns each month's used count
// of API requests. Row-level security takes one tenant per statement, so
// each tenant's statements follow its own SET LOCAL.
func (m *Meter) write(ctx context.Context, deltas []meterDelta, now time.Time) ([]int64, error) {
	// Counts of a month that has ended go to its last day.
	today := now.UTC().Truncate(24 * time.Hour)
	used := make([]int64, len(deltas))
	b := &pgx.Batch{}
	for i, d := range deltas {
		set, err := setTenantSQL(d.tenantID, "")
		if err != nil {
			return nil, err
		}
		day := today
		if end := tenancy.PeriodEnd(d.period); !day.Before(end) {
			day = end.AddDate(0, 0, -1)
		}
		hours := d.compute.Hours()
		b.Queue(set)
		// Plain INSERT … VALUES statements: a distributed PostgreSQL routes
		// each to its tenant's shard, and takes no volatile call in the upsert.
		b.Queue(`
			INSERT INTO public.billing_usage_counters AS c (tenant_id, period, service_name, used, reserved)
			VALUES ($1, $2, 'api_requests', $3, $5)
			ON CONFLICT (tenant_id, period, service_name) DO UPDATE SET
			  used = c.used + excluded.used,
			  reserved = greatest(c.reserved - $4, 0) + $5,
			  updated_at = excluded.updated_at
			RETURNING used::bigint`, d.tenantID, d.period, d.used, d.release, d.reserve).QueryRow(func(r pgx.Row) error { return r.Scan(&used[i]) })
		if d.used > 0 {
			b.Queue(`
				INSERT INTO public.billing_usage_daily AS c (tenant_id, day, service_name, quantity)
				VALUES ($1, $2, 'api_requests', $3)
				ON CONFLICT (tenant_id, day, service_name) DO UPDATE SET quantity = c.quantity + excluded.quantity`,
				d.tenantID, day, d.used)
		}
		if hours > 0 {
			b.Queue(`
				INSERT INTO public.billing_usage_counters AS c (tenant_id, period, service_name, used)
				VALUES ($1, $2, 'compute_hours', $3)
				ON CONFLICT (tenant_id, period, service_name) DO UPDATE SET used = c.used + excluded.used, updated_at = excluded.updated_at`,
				d.tenantID, d.period, hours)
			b.Queue(`
				INSERT INTO public.billing_usage_daily AS c (tenant_id, day, service_name, quantity)
				VALUES ($1, $2, 'compute_hours', $3)
				ON CONFLICT (tenant_id, day, service_name) DO UPDATE SET quantity = c.quantity + excluded.quantity`,
				d.tenantID, day, hours)
		}
	}
	err := inTx(ctx, m.db.App, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		if len(deltas) == 1 {
			return nil, fmt.Errorf("write usage of tenant %s: %w", deltas[0].tenantID, translate(err))
		}
		return nil, fmt.Errorf("write usage of %d tenants: %w", len(deltas), translate(err))
	}
	return used, nil
}

// Run flushes every interval until ctx ends, then hands back every block
// and flushes once more.
func (m *Meter) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultFlushEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := m.Close(context.WithoutCancel(ctx)); err != nil {
				m.log.Error("usage meter: final flush failed; these counts are lost", "err", err)
			}
			return
		case <-t.C:
			if err := m.Flush(ctx); err != nil {
				m.log.Warn("usage meter: flush failed; retrying at the next", "err", err)
			}
		}
	}
}

// Close hands back every block this process holds and flushes.
func (m *Meter) Close(ctx context.Context) error {
	for _, tm := range m.meters() {
		tm.mu.Lock()
		tm.release += tm.remaining
		tm.remaining = 0
		tm.mu.Unlock()
	}
	return m.Flush(ctx)
}
