package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// Mail is put in the outbox by the service whose change causes it, in the
// same transaction (queueMail and its kin, below): the change and its mail
// commit together or not at all. MailOutbox hands the rows to the sender.

// Links of the mails, on the tenant's portal. The secret ones carry a
// one-time token.
const (
	signInPath  = "/"
	billingPath = "/billing"
)

func resetPath(token string) string  { return "/password/reset?token=" + url.QueryEscape(token) }
func setPath(token string) string    { return "/password/set?token=" + url.QueryEscape(token) }
func acceptPath(token string) string { return "/invitations/accept?token=" + url.QueryEscape(token) }

// userVars are a recipient's values in a mail: greeted by name, or by
// email when the account has none.
func userVars(email, name string) map[string]string {
	if name == "" {
		name = email
	}
	return map[string]string{"USER_NAME": name, "USER_EMAIL": email}
}

// MailChannel is the LISTEN/NOTIFY channel on which every transaction that
// queues mail (or makes it due again) says so. The notice is delivered when
// the transaction commits, so the senders, which sleep until they hear one,
// never look for mail that is not there yet, nor poll for it.
const MailChannel = "nself_mail_queued"

// notifyMail wakes the senders of every process once tx commits.
func notifyMail(ctx context.Context, tx pgx.Tx) error {
	if err := announce(ctx, tx, MailChannel, ""); err != nil {
		return fmt.Errorf("announce queued mail: %w", err)
	}
	return nil
}

// queueMail records a mail in the outbox. tx is in the mail's tenant's
// context.
func queueMail(ctx context.Context, tx pgx.Tx, m *tenancy.Mail) error {
	var invitation any
	if m.InvitationID != "" {
		invitation = m.InvitationID
	}
	vars := m.Vars
	if vars == nil {
		vars = map[string]string{}
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO tenants.tenant_mail_outbox (tenant_id, template, recipient, vars, link, invitation_id)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		m.TenantID, m.Template, m.To, vars, m.Link, invitation); err != nil {
		return fmt.Errorf("queue %s mail: %w", m.Template, err)
	}
	return notifyMail(ctx, tx)
}

// queueWelcome records the mails a new account of the tenant receives: the
// welcome, whose button signs in, and, for an account without a password,
// the link that sets one (setToken). tx is in the tenant's context.
func queueWelcome(ctx context.Context, tx pgx.Tx, tenantID string, u *tenancy.User, setToken string) error {
	if err := queueMail(ctx, tx, &tenancy.Mail{TenantID: tenantID, Template: "welcome", To: u.Email,
		Vars: userVars(u.Email, u.Name), Link: signInPath}); err != nil {
		return err
	}
	if setToken == "" {
		return nil
	}
	return queueMail(ctx, tx, &tenancy.Mail{TenantID: tenantID, Template: "password_set", To: u.Email,
		Vars: userVars(u.Email, u.Name), Link: setPath(setToken)})
}

// queueOwnerMail records a mail of template to each owner of the tenant,
// and returns how many. tx is in the tenant's context. The owners are read
// first and each mail queued with INSERT … VALUES: Citus runs an INSERT …
// SELECT into a table under row-level security as a COPY, which it
// refuses.
func queueOwnerMail(ctx context.Context, tx pgx.Tx, tenantID, template, link string) (int64, error) {
	rows, err := tx.Query(ctx, `
		SELECT u.email, coalesce(u.name, '')
		FROM tenants.tenant_members m
		JOIN auth.users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
		WHERE m.tenant_id = $1 AND m.role = 'owner'
		ORDER BY u.email`, tenantID)
	if err != nil {
		return 0, fmt.Errorf("queue %s mail: %w", template, err)
	}
	type owner struct{ email, name string }
	owners, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (owner, error) {
		var o owner
		return o, r.Scan(&o.email, &o.name)
	})
	if err != nil {
		return 0, fmt.Errorf("queue %s mail: %w", template, err)
	}
	for _, o := range owners {
		if err := queueMail(ctx, tx, &tenancy.Mail{TenantID: tenantID, Template: template, To: o.email,
			Vars: userVars(o.email, o.name), Link: link}); err != nil {
			return 0, err
		}
	}
	return int64(len(owners)), nil
}

// mailKept is how long sent and given-up mail stays listed.
const mailKept = 30 * 24 * time.Hour

// MailOutbox implements tenancy.Outbox. Finding the due mail reads across
// tenants, on the platform path; each claim and mark is then written in
// its tenant's context by the application role, like any tenant data.
type MailOutbox struct {
	db *DB
}

var _ tenancy.Outbox = (*MailOutbox)(nil)

// NewMailOutbox returns the outbox in db.
func NewMailOutbox(db *DB) *MailOutbox { return &MailOutbox{db: db} }

const mailColumns = `o.id, o.tenant_id, t.slug, t.name, o.template, o.recipient, o.vars, o.link,
	coalesce(o.invitation_id::text, ''), o.created_at, o.attempts, o.next_attempt_at, o.subject,
	o.last_error, o.sent_at, o.failed_at, coalesce(o.claim::text, '')`

func scanMail(row pgx.Row, extra ...any) (*tenancy.Mail, error) {
	m := &tenancy.Mail{}
	err := row.Scan(append([]any{&m.ID, &m.TenantID, &m.TenantSlug, &m.TenantName, &m.Template, &m.To, &m.Vars, &m.Link,
		&m.InvitationID, &m.CreatedAt, &m.Attempts, &m.NextAttemptAt, &m.Subject, &m.LastError, &m.SentAt, &m.FailedAt, &m.Claim}, extra...)...)
	return m, err
}

// Claim takes up to limit due mails. The tenants with due mail are found
// first, oldest due first; each tenant's mail is then claimed in a
// transaction of one statement that locks the rows it takes and skips
// those another sender has locked, and pushes them hold into the future:
// no other sender takes them meanwhile, and if this one dies they are due
// again once hold has passed. The same statement forgets the tenant's
// mail sent or given up long ago.
func (o *MailOutbox) Claim(ctx context.Context, limit int, hold time.Duration) ([]*tenancy.Mail, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := o.db.Admin.Query(ctx, `
		SELECT tenant_id FROM tenants.tenant_mail_outbox
		WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
		GROUP BY tenant_id
		ORDER BY min(next_attempt_at)
		LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("find due mail: %w", err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find due mail: %w", err)
	}
	var out []*tenancy.Mail
	for _, tenantID := range tenants {
		if len(out) >= limit {
			break
		}
		err := writeInTenant(ctx, o.db.App, tenantID, func(rows pgx.Rows) error {
			for rows.Next() {
				m, err := scanMail(rows)
				if err != nil {
					return err
				}
				out = append(out, m)
			}
			return nil
		}, `
			WITH due AS (
				SELECT id FROM tenants.tenant_mail_outbox
				WHERE tenant_id = $1 AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
				ORDER BY next_attempt_at, created_at
				LIMIT $2
				FOR UPDATE SKIP LOCKED
			), forgotten AS (
				DELETE FROM tenants.tenant_mail_outbox
				WHERE tenant_id = $1 AND coalesce(sent_at, failed_at) < now() - $4::interval
			)
			UPDATE tenants.tenant_mail_outbox o
			SET claim = $5, attempts = o.attempts + 1,
			    next_attempt_at = now() + make_interval(secs => $3)
			FROM due, tenants.tenants t
			WHERE o.tenant_id = $1 AND o.id = due.id AND t.id = o.tenant_id
			RETURNING `+mailColumns,
			// The claim is made here: a distributed PostgreSQL runs no
			// volatile function in an UPDATE.
			tenantID, limit-len(out), hold.Seconds(), interval(mailKept), uuid.NewString())
		if err != nil {
			return out, fmt.Errorf("claim mail: %w", err)
		}
	}
	return out, nil
}

// NextDue returns when the earliest mail not sent nor given up is due,
// claimed mail included (its claim's end): a sender that has sent what is
// due sleeps until then, or until a notice on MailChannel. It returns the
// zero time when no mail waits.
func (o *MailOutbox) NextDue(ctx context.Context) (time.Time, error) {
	var next *time.Time
	if err := o.db.Admin.QueryRow(ctx, `
		SELECT min(next_attempt_at) FROM tenants.tenant_mail_outbox
		WHERE sent_at IS NULL AND failed_at IS NULL`).Scan(&next); err != nil {
		return time.Time{}, fmt.Errorf("find when mail is next due: %w", err)
	}
	if next == nil {
		return time.Time{}, nil
	}
	return *next, nil
}

// Forget removes, in every tenant, the mail sent or given up more than
// mailKept ago, and returns how many it removed. Claim forgets only the
// old mail of tenants with mail due; a quiet tenant's is forgotten here.
func (o *MailOutbox) Forget(ctx context.Context) (int, error) {
	rows, err := o.db.Admin.Query(ctx, `
		SELECT DISTINCT tenant_id FROM tenants.tenant_mail_outbox
		WHERE coalesce(sent_at, failed_at) < now() - $1::interval`, interval(mailKept))
	if err != nil {
		return 0, fmt.Errorf("find old mail: %w", err)
	}
	tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("find old mail: %w", err)
	}
	n := 0
	for _, tenantID := range tenants {
		err := writeInTenant(ctx, o.db.App, tenantID, func(rows pgx.Rows) error {
			for rows.Next() {
				n++
			}
			return nil
		}, `
			DELETE FROM tenants.tenant_mail_outbox
			WHERE tenant_id = $1 AND coalesce(sent_at, failed_at) < now() - $2::interval
			RETURNING true`, tenantID, interval(mailKept))
		if err != nil {
			return n, fmt.Errorf("forget old mail: %w", err)
		}
	}
	return n, nil
}

// Sent marks a claimed mail sent, and forgets its link, which may be a
// secret.
func (o *MailOutbox) Sent(ctx context.Context, m *tenancy.Mail) (bool, error) {
	ok := false
	err := writeInTenant(ctx, o.db.App, m.TenantID, func(rows pgx.Rows) error {
		ok = rows.Next()
		return nil
	}, `
		UPDATE tenants.tenant_mail_outbox
		SET sent_at = now(), claim = NULL, link = '', subject = $4, last_error = ''
		WHERE tenant_id = $1 AND id = $2 AND claim = $3
		RETURNING true`, m.TenantID, m.ID, m.Claim, m.Subject)
	if err != nil {
		return false, fmt.Errorf("mark mail sent: %w", err)
	}
	return ok, nil
}

// Failed records a failed attempt of a claimed mail. A secret link is
// forgotten when the mail is given up: a token nobody will be sent should
// not wait in a table.
func (o *MailOutbox) Failed(ctx context.Context, m *tenancy.Mail, reason string, wait time.Duration, giveUp bool) error {
	err := execInTenant(ctx, o.db.App, m.TenantID, `
		UPDATE tenants.tenant_mail_outbox
		SET claim = NULL, last_error = left($4, 500), subject = $5,
		    next_attempt_at = now() + make_interval(secs => $6),
		    failed_at = CASE WHEN $7 THEN $9::timestamptz END,
		    link = CASE WHEN $7 AND $8 THEN '' ELSE link END
		WHERE tenant_id = $1 AND id = $2 AND claim = $3`,
		m.TenantID, m.ID, m.Claim, reason, m.Subject, wait.Seconds(), giveUp, tenancy.CarriesSecretLink(m.Template), o.db.Now())
	if err != nil {
		return fmt.Errorf("record failed mail: %w", err)
	}
	return nil
}

// Release hands claimed mails back untried: the attempt the claim counted
// did not happen.
func (o *MailOutbox) Release(ctx context.Context, mails []*tenancy.Mail, wait time.Duration) error {
	for _, m := range mails {
		if err := execInTenant(ctx, o.db.App, m.TenantID, `
			UPDATE tenants.tenant_mail_outbox
			SET claim = NULL, attempts = greatest(attempts - 1, 0), next_attempt_at = now() + make_interval(secs => $4)
			WHERE tenant_id = $1 AND id = $2 AND claim = $3`,
			m.TenantID, m.ID, m.Claim, wait.Seconds()); err != nil {
			return fmt.Errorf("release mail: %w", err)
		}
	}
	return nil
}

// List lists mail across tenants, for the console and the CLI, on the
// platform path. Links are left out: they may be secrets.
func (o *MailOutbox) List(ctx context.Context, f tenancy.MailFilter) ([]*tenancy.Mail, int, error) {
	if f.TenantID != "" && !tenancy.IsUUID(f.TenantID) {
		return nil, 0, tenancy.Errorf(tenancy.EINVALID, "tenant id %s is not a uuid", tenancy.Quote(f.TenantID))
	}
	limit := any(nil)
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := o.db.Admin.Query(ctx, `
		SELECT `+mailColumns+`, count(*) OVER ()
		FROM tenants.tenant_mail_outbox o
		JOIN tenants.tenants t ON t.id = o.tenant_id
		WHERE (NOT $1 OR (o.sent_at IS NULL AND (o.last_error <> '' OR o.failed_at IS NOT NULL)))
		  AND ($2 = '' OR o.tenant_id = nullif($2, '')::uuid)
		ORDER BY o.created_at DESC, o.id
		LIMIT $3 OFFSET $4`, f.Undelivered, f.TenantID, limit, f.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list mail: %w", err)
	}
	total := 0
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*tenancy.Mail, error) {
		m, err := scanMail(r, &total)
		m.Link = ""
		return m, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list mail: %w", err)
	}
	return out, total, nil
}

// Retry makes a mail not sent yet due now, its attempts counted anew: one
// given up after an outage, say. A mail a sender holds is left to it.
func (o *MailOutbox) Retry(ctx context.Context, tenantID, id string) (*tenancy.Mail, error) {
	notFound := tenancy.Errorf(tenancy.ENOTFOUND, "no mail %s waiting to be sent", tenancy.Quote(id))
	if !tenancy.IsUUID(id) || !tenancy.IsUUID(tenantID) {
		return nil, notFound
	}
	var m *tenancy.Mail
	err := inTenant(ctx, o.db.Admin, tenantID, "", func(tx pgx.Tx) error {
		var err error
		m, err = scanMail(tx.QueryRow(ctx, `
			UPDATE tenants.tenant_mail_outbox o
			SET failed_at = NULL, attempts = 0, next_attempt_at = now()
			FROM tenants.tenants t
			WHERE o.tenant_id = $1 AND o.id = $2 AND o.sent_at IS NULL AND o.claim IS NULL AND t.id = o.tenant_id
			RETURNING `+mailColumns, tenantID, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound
		} else if err != nil {
			return err
		}
		if tenancy.CarriesSecretLink(m.Template) && m.Link == "" {
			return tenancy.Errorf(tenancy.EINVALID, "this %s mail was given up and its link discarded: send a new one (resend the invitation, or ask the person to request a new link)", m.Template)
		}
		if err := notifyMail(ctx, tx); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "mail.retry", m.To, m.Template+" mail to be sent again")
	})
	if err != nil {
		return nil, translate(err)
	}
	m.Link = ""
	return m, nil
}
