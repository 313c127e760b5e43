package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/emails"
	"github.com/nself/nself/internal/tenancy"
)

// EmailTemplateService implements tenancy.EmailTemplateService on the
// application role, in the tenant's context. Defaults come from the
// templates embedded in the emails package.
type EmailTemplateService struct {
	db *DB
}

var _ tenancy.EmailTemplateService = (*EmailTemplateService)(nil)

// NewEmailTemplateService returns an EmailTemplateService using db.
func NewEmailTemplateService(db *DB) *EmailTemplateService { return &EmailTemplateService{db: db} }

func defaultEmailTemplate(name string) (*tenancy.EmailTemplate, error) {
	if err := tenancy.CheckEmailTemplateName(name); err != nil {
		return nil, err
	}
	d, err := emails.Default(name)
	if err != nil {
		return nil, err
	}
	return &tenancy.EmailTemplate{Name: name, Subject: d.Subject, HTML: d.HTML, Text: d.Text}, nil
}

// Customize saves the tenant's own version of a template. Without a text
// part, one is derived from the HTML (tenancy.TextFromHTML) rather than
// the default text kept: the two parts of a mail should say the same
// thing, and a customized HTML body usually says something else than the
// default text.
func (s *EmailTemplateService) Customize(ctx context.Context, tenantID, name, subject, html, text string, actor tenancy.Actor) (*tenancy.EmailTemplate, error) {
	if err := tenancy.CheckEmailTemplateEdit(actor, name); err != nil {
		return nil, err
	}
	t := tenancy.EmailTemplate{Name: name, Subject: strings.TrimSpace(subject), HTML: html, Text: text}
	if strings.TrimSpace(t.Text) == "" {
		t.Text = tenancy.TextFromHTML(t.HTML)
	}
	if err := tenancy.ValidateEmailTemplate(t); err != nil {
		return nil, err
	}
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var from *string
		err := tx.QueryRow(ctx, `
			SELECT subject FROM tenants.tenant_email_templates WHERE tenant_id = $1 AND name = $2 FOR UPDATE`,
			tenantID, t.Name).Scan(&from)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO tenants.tenant_email_templates AS e (tenant_id, name, subject, html, text)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, name) DO UPDATE
			SET subject = excluded.subject, html = excluded.html, text = excluded.text, updated_at = excluded.updated_at
			RETURNING e.updated_at`, tenantID, t.Name, t.Subject, t.HTML, t.Text).Scan(&t.UpdatedAt); err != nil {
			return err
		}
		summary := fmt.Sprintf("subject: %s, html: %d bytes, text: %d bytes", t.Subject, len(t.HTML), len(t.Text))
		if from != nil && *from != t.Subject {
			summary = tenancy.Changed("subject", *from, t.Subject) + fmt.Sprintf(", html: %d bytes, text: %d bytes", len(t.HTML), len(t.Text))
		}
		return recordAudit(ctx, tx, tenantID, "email_template.customize", t.Name, summary)
	})
	if err != nil {
		return nil, fmt.Errorf("customize email template %s: %w", name, translate(err))
	}
	t.Customized = true
	return &t, nil
}

// Get returns the tenant's version of a template, or the default.
func (s *EmailTemplateService) Get(ctx context.Context, tenantID, name string) (*tenancy.EmailTemplate, error) {
	def, err := defaultEmailTemplate(name)
	if err != nil {
		return nil, err
	}
	list, err := s.customized(ctx, tenantID, name)
	if err != nil {
		return nil, fmt.Errorf("get email template %s: %w", name, err)
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return def, nil
}

// Reset deletes the tenant's version of a template.
func (s *EmailTemplateService) Reset(ctx context.Context, tenantID, name string, actor tenancy.Actor) (bool, error) {
	if err := tenancy.CheckEmailTemplateEdit(actor, name); err != nil {
		return false, err
	}
	var n int64
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM tenants.tenant_email_templates WHERE tenant_id = $1 AND name = $2`, tenantID, name)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		return recordAudit(ctx, tx, tenantID, "email_template.reset", name, "back to the default")
	})
	if err != nil {
		return false, fmt.Errorf("reset email template %s: %w", name, translate(err))
	}
	return n > 0, nil
}

// List returns every template the platform sends, the tenant's version
// where it has one.
func (s *EmailTemplateService) List(ctx context.Context, tenantID string) ([]*tenancy.EmailTemplate, error) {
	own, err := s.customized(ctx, tenantID, "")
	if err != nil {
		return nil, fmt.Errorf("list email templates: %w", err)
	}
	byName := make(map[string]*tenancy.EmailTemplate, len(own))
	for _, t := range own {
		byName[t.Name] = t
	}
	out := make([]*tenancy.EmailTemplate, 0, len(tenancy.EmailTemplateNames))
	for _, name := range tenancy.EmailTemplateNames {
		t, ok := byName[name]
		if !ok {
			if t, err = defaultEmailTemplate(name); err != nil {
				return nil, err
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// customized reads the tenant's own templates: the one called name, or all
// when name is "".
func (s *EmailTemplateService) customized(ctx context.Context, tenantID, name string) ([]*tenancy.EmailTemplate, error) {
	var out []*tenancy.EmailTemplate
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			t := &tenancy.EmailTemplate{Customized: true}
			if err := rows.Scan(&t.Name, &t.Subject, &t.HTML, &t.Text, &t.UpdatedAt); err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	}, `
		SELECT name, subject, html, text, updated_at FROM tenants.tenant_email_templates
		WHERE tenant_id = $1 AND ($2 = '' OR name = $2)
		ORDER BY name`, tenantID, name)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return out, translate(err)
}

// SendTest records a test of the template for one person, in the outbox
// the sender composes real mail from; the button leads where the real
// mail's does, with a stand-in for a secret.
func (s *EmailTemplateService) SendTest(ctx context.Context, tenantID, name, to, userName string) error {
	if err := tenancy.CheckEmailTemplateName(name); err != nil {
		return err
	}
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var recent int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FROM tenants.tenant_mail_outbox
			WHERE tenant_id = $1 AND recipient = $2 AND created_at > now() - $3 * interval '1 second'`,
			tenantID, to, int(tenancy.TestMailWindow.Seconds())).Scan(&recent); err != nil {
			return err
		}
		if recent >= tenancy.TestMailLimit {
			return tenancy.Errorf(tenancy.EQUOTA, "%d emails went to %s in the last %d minutes: wait a few minutes before sending another test",
				recent, to, int(tenancy.TestMailWindow.Minutes()))
		}
		return queueMail(ctx, tx, &tenancy.Mail{TenantID: tenantID, Template: name, To: to,
			Vars: tenancy.TestMailVars(to, userName), Link: tenancy.SampleLink(name)})
	})
	if err != nil {
		return fmt.Errorf("send test of %s: %w", name, translate(err))
	}
	return nil
}
