// Package notify composes and delivers every mail the platform sends.
//
// Mail begins in the outbox (tenancy.Outbox): the service whose change
// causes a mail records it in the same transaction, with the recipient's
// own values and the path of its button. The Composer turns a recorded mail
// into a message from the tenant's template (its own version, or the
// default) and its look (colors, company name, email logo, support
// address, links on its portal); the Sender claims due mail, composes it,
// hands it to SMTP outside any transaction, and marks it sent or tries
// again later. Previews in the portal and `nself whitelabel email test` go
// through the same Composer, so they show what arrives.
package notify

import (
	"context"
	"log/slog"
	"strings"

	"github.com/nself/nself/emails"
	"github.com/nself/nself/internal/tenancy"
)

// Templates finds a tenant's version of an email template, or the default
// (tenancy.EmailTemplateService).
type Templates interface {
	Get(ctx context.Context, tenantID, name string) (*tenancy.EmailTemplate, error)
}

// Branding is what mail takes of a tenant's branding
// (tenancy.BrandingService).
type Branding interface {
	Look(ctx context.Context, tenantID string) (*tenancy.Look, error)
	ListSettings(ctx context.Context, tenantID string) ([]*tenancy.Setting, error)
}

// Logos lists a tenant's logos (tenancy.LogoService).
type Logos interface {
	ListLogos(ctx context.Context, tenantID string) ([]*tenancy.Logo, error)
}

// Composer composes the tenants' mail. Templates, Branding and Logos may
// be nil: the defaults, the platform's look and no logo stand in.
type Composer struct {
	Templates Templates
	Branding  Branding
	Logos     Logos
	// TenantURL is the address of a tenant's portal, with the configured
	// scheme, host and port; mail links are made absolute with it.
	TenantURL func(slug string) string
	Log       *slog.Logger
}

// Template is the tenant's version of the template called name, or the
// default when it has none. A version saved before the rules it breaks
// existed (a link where it leaks) is never sent: the default goes in its
// place, until the tenant saves one that passes.
func (c *Composer) Template(ctx context.Context, tenantID, name string) (*tenancy.EmailTemplate, error) {
	if c.Templates != nil {
		t, err := c.Templates.Get(ctx, tenantID, name)
		if err != nil {
			return nil, err
		}
		if !t.Customized {
			return t, nil
		}
		if err := tenancy.ValidateEmailTemplate(*t); err == nil {
			return t, nil
		} else if c.Log != nil {
			c.Log.Warn("customized email template breaks the rules; sending the default", "tenant", tenantID, "template", name, "err", err)
		}
	}
	d, err := emails.Default(name)
	if err != nil {
		return nil, err
	}
	return &tenancy.EmailTemplate{Name: name, Subject: d.Subject, HTML: d.HTML, Text: d.Text}, nil
}

// Brand are the variables every mail of the tenant shares: its name (the
// company name when set), primary color, logo (the one made for email,
// else the main one, as an absolute address: mail is read far from the
// portal) and support address (its support page, else its support email,
// else its portal). What cannot be read falls back to the platform's.
func (c *Composer) Brand(ctx context.Context, t *tenancy.Tenant) map[string]string {
	return c.brand(ctx, t, nil)
}

// BrandDraft stands in for a tenant's stored branding in a preview of
// unsaved values: the look (colors and company name) and the settings an
// owner is editing.
type BrandDraft struct {
	Look     *tenancy.Look
	Settings []*tenancy.Setting
}

func (c *Composer) brand(ctx context.Context, t *tenancy.Tenant, d *BrandDraft) map[string]string {
	portal := c.TenantURL(t.Slug)
	vars := map[string]string{"TENANT_NAME": t.Name, "PRIMARY_COLOR": tenancy.DefaultPalette.Primary, "LOGO_URL": "", "SUPPORT_URL": portal}
	look := func(l *tenancy.Look) {
		vars["PRIMARY_COLOR"] = l.Palette.Primary
		if l.CompanyName != "" {
			vars["TENANT_NAME"] = l.CompanyName
		}
	}
	switch {
	case d != nil:
		look(d.Look)
		vars["SUPPORT_URL"] = supportURL(d.Settings, portal)
	case c.Branding != nil:
		if l, err := c.Branding.Look(ctx, t.ID); err != nil {
			c.warn("read tenant look for mail", t, err)
		} else {
			look(l)
		}
		if settings, err := c.Branding.ListSettings(ctx, t.ID); err != nil {
			c.warn("read tenant settings for mail", t, err)
		} else {
			vars["SUPPORT_URL"] = supportURL(settings, portal)
		}
	}
	if c.Logos != nil {
		logos, err := c.Logos.ListLogos(ctx, t.ID)
		if err != nil {
			c.warn("read tenant logos for mail", t, err)
		}
		for _, kind := range []tenancy.LogoKind{tenancy.LogoEmail, tenancy.LogoMain} {
			if l := logoOf(logos, kind); l != nil {
				vars["LOGO_URL"] = portal + "/logo/" + string(kind) + "?v=" + l.SHA256[:16]
				break
			}
		}
	}
	// Text on a button of the primary color: black or white, as the
	// portal draws it, so that the button reads whatever the color.
	vars["PRIMARY_TEXT_COLOR"] = tenancy.OnColor(vars["PRIMARY_COLOR"])
	return vars
}

// supportURL is where a tenant's mail sends people for help: its support
// page, its support email, or its portal. The settings were validated when
// saved (an https:// address, an email).
func supportURL(settings []*tenancy.Setting, portal string) string {
	byKey := map[string]string{}
	for _, s := range settings {
		byKey[s.Key] = strings.TrimSpace(s.Value)
	}
	switch {
	case byKey["contact.support_url"] != "":
		return byKey["contact.support_url"]
	case byKey["contact.support_email"] != "":
		return "mailto:" + byKey["contact.support_email"]
	}
	return portal
}

func logoOf(logos []*tenancy.Logo, kind tenancy.LogoKind) *tenancy.Logo {
	for _, l := range logos {
		if l.Kind == kind && len(l.SHA256) >= 16 {
			return l
		}
	}
	return nil
}

func (c *Composer) warn(what string, t *tenancy.Tenant, err error) {
	if c.Log != nil {
		c.Log.Warn(what, "tenant", t.Slug, "err", err)
	}
}

// Render fills tpl for one recipient of the tenant: the tenant's variables
// first, then vars (the recipient's, and the link), which win.
func (c *Composer) Render(ctx context.Context, t *tenancy.Tenant, tpl *tenancy.EmailTemplate, to string, vars map[string]string) (tenancy.Message, error) {
	return c.render(ctx, t, tpl, to, vars, nil)
}

func (c *Composer) render(ctx context.Context, t *tenancy.Tenant, tpl *tenancy.EmailTemplate, to string, vars map[string]string, d *BrandDraft) (tenancy.Message, error) {
	all := c.brand(ctx, t, d)
	for k, v := range vars {
		all[k] = v
	}
	msg, err := tenancy.RenderEmail(tpl, to, all)
	msg.Template = tpl.Name
	msg.FromName = all["TENANT_NAME"]
	return msg, err
}

// Compose makes the message of a recorded mail: the tenant's template and
// look, the recipient's values, and the button's link on the tenant's
// portal.
func (c *Composer) Compose(ctx context.Context, m *tenancy.Mail) (tenancy.Message, error) {
	t := &tenancy.Tenant{ID: m.TenantID, Slug: m.TenantSlug, Name: m.TenantName}
	tpl, err := c.Template(ctx, t.ID, m.Template)
	if err != nil {
		return tenancy.Message{}, err
	}
	vars := map[string]string{}
	for k, v := range m.Vars {
		vars[k] = v
	}
	vars[tenancy.LinkVariable] = c.TenantURL(t.Slug) + m.Link
	return c.Render(ctx, t, tpl, m.To, vars)
}

// SampleLink is where a sample mail's button leads: the page the real mail
// links to, with a stand-in for a secret.
func SampleLink(name string) string { return tenancy.SampleLink(name) }

// Sample renders tpl (a saved template, or a draft in an editor) as the
// tenant's mail looks: its look and links, with sample people in place of
// a recipient's values.
func (c *Composer) Sample(ctx context.Context, t *tenancy.Tenant, tpl *tenancy.EmailTemplate, to string) (tenancy.Message, error) {
	return c.SampleWith(ctx, t, tpl, to, nil)
}

// SampleWith renders like Sample, with d (when not nil) in place of the
// tenant's stored branding: the preview of unsaved colors and settings.
func (c *Composer) SampleWith(ctx context.Context, t *tenancy.Tenant, tpl *tenancy.EmailTemplate, to string, d *BrandDraft) (tenancy.Message, error) {
	portal := c.TenantURL(t.Slug)
	vars := tenancy.SampleVariables(t.Name, tenancy.DefaultPalette.Primary, portal)
	for _, k := range []string{"TENANT_NAME", "PRIMARY_COLOR", "PRIMARY_TEXT_COLOR", "LOGO_URL", "SUPPORT_URL"} {
		delete(vars, k) // the tenant's own
	}
	vars[tenancy.LinkVariable] = portal + SampleLink(tpl.Name)
	return c.render(ctx, t, tpl, to, vars, d)
}
