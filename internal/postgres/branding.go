package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// BrandingService implements tenancy.BrandingService on the application
// role: brand colors and settings in tenants.tenant_settings, themes in
// tenants.tenant_themes. Every change is announced on ChangeChannel.
type BrandingService struct {
	db *DB
}

var _ tenancy.BrandingService = (*BrandingService)(nil)

// NewBrandingService returns a BrandingService using db.
func NewBrandingService(db *DB) *BrandingService { return &BrandingService{db: db} }

// brandKeys are the settings holding the brand colors, in the order of
// tenancy.Brand's fields.
var brandKeys = tenancy.BrandKeys()

// Brand returns the tenant's brand colors; unset ones are empty.
func (s *BrandingService) Brand(ctx context.Context, tenantID string) (tenancy.Brand, error) {
	var b tenancy.Brand
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			*brandField(&b, k) = v
		}
		return nil
	}, `SELECT key, value FROM tenants.tenant_settings WHERE tenant_id = $1 AND key = ANY($2)`, tenantID, brandKeys)
	if err != nil {
		return b, fmt.Errorf("read brand: %w", translate(err))
	}
	return b, nil
}

func brandField(b *tenancy.Brand, key string) *string {
	switch key {
	case brandKeys[0]:
		return &b.Primary
	case brandKeys[1]:
		return &b.Secondary
	default:
		return &b.Accent
	}
}

// SetBrand changes the brand colors u names, all or none, and returns
// what changed.
func (s *BrandingService) SetBrand(ctx context.Context, tenantID string, u tenancy.BrandUpdate) ([]tenancy.BrandChange, error) {
	type upd struct {
		field, key string
		to         *string
	}
	var ups []upd
	for i, to := range []*string{u.Primary, u.Secondary, u.Accent} {
		if to == nil {
			continue
		}
		field := brandKeys[i][len("branding."):]
		v := ""
		if *to != "" {
			var err error
			if v, err = tenancy.ParseColor(field, *to); err != nil {
				return nil, err
			}
		}
		ups = append(ups, upd{field, brandKeys[i], &v})
	}
	if len(ups) == 0 {
		return nil, tenancy.Errorf(tenancy.EINVALID, "no brand color given")
	}
	var changes []tenancy.BrandChange
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		for _, up := range ups {
			var from string
			err := tx.QueryRow(ctx, `SELECT value FROM tenants.tenant_settings WHERE tenant_id = $1 AND key = $2 FOR UPDATE`,
				tenantID, up.key).Scan(&from)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if from == *up.to {
				continue
			}
			if err := putSetting(ctx, tx, tenantID, up.key, *up.to); err != nil {
				return err
			}
			changes = append(changes, tenancy.BrandChange{Field: up.field, From: from, To: *up.to})
		}
		if len(changes) == 0 {
			return nil
		}
		parts := make([]string, len(changes))
		for i, c := range changes {
			parts[i] = tenancy.Changed(brandFieldName(c.Field), c.From, c.To)
		}
		if err := recordAudit(ctx, tx, tenantID, "branding.update", "brand colors", strings.Join(parts, ", ")); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("set brand: %w", translate(err))
	}
	return changes, nil
}

// brandFieldName names a brand color as people do: "primary color".
func brandFieldName(field string) string {
	return strings.TrimSuffix(strings.ReplaceAll(field, "_", " "), " color") + " color"
}

// putSetting stores a setting, or removes it when value is empty.
func putSetting(ctx context.Context, tx pgx.Tx, tenantID, key, value string) error {
	if value == "" {
		_, err := tx.Exec(ctx, `DELETE FROM tenants.tenant_settings WHERE tenant_id = $1 AND key = $2`, tenantID, key)
		return err
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO tenants.tenant_settings (tenant_id, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, tenantID, key, value)
	return err
}

// Setting returns one setting, or ENOTFOUND.
func (s *BrandingService) Setting(ctx context.Context, tenantID, key string) (*tenancy.Setting, error) {
	if err := tenancy.ValidateSettingKey(key); err != nil {
		return nil, err
	}
	var out *tenancy.Setting
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectExactlyOneRow(rows, scanSetting)
		return err
	}, `SELECT key, value, updated_at FROM tenants.tenant_settings WHERE tenant_id = $1 AND key = $2`, tenantID, key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenancy.FieldErrorf(tenancy.ENOTFOUND, "key", "setting %s is not set", tenancy.Quote(key))
	}
	if err != nil {
		return nil, fmt.Errorf("read setting %s: %w", key, translate(err))
	}
	return out, nil
}

func scanSetting(r pgx.CollectableRow) (*tenancy.Setting, error) {
	var st tenancy.Setting
	err := r.Scan(&st.Key, &st.Value, &st.UpdatedAt)
	return &st, err
}

// ListSettings lists the tenant's settings by key.
func (s *BrandingService) ListSettings(ctx context.Context, tenantID string) ([]*tenancy.Setting, error) {
	var out []*tenancy.Setting
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectRows(rows, scanSetting)
		return err
	}, `SELECT key, value, updated_at FROM tenants.tenant_settings WHERE tenant_id = $1 ORDER BY key`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list settings: %w", translate(err))
	}
	return out, nil
}

// SetSetting validates and stores one setting.
func (s *BrandingService) SetSetting(ctx context.Context, tenantID, key, value string) (*tenancy.Setting, error) {
	v, err := tenancy.NormalizeSetting(key, value)
	if err != nil {
		return nil, err
	}
	st := &tenancy.Setting{Key: key, Value: v}
	err = changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var from string
		err := tx.QueryRow(ctx, `SELECT value FROM tenants.tenant_settings WHERE tenant_id = $1 AND key = $2 FOR UPDATE`,
			tenantID, key).Scan(&from)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO tenants.tenant_settings (tenant_id, key, value) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
			RETURNING updated_at`, tenantID, key, v).Scan(&st.UpdatedAt); err != nil {
			return err
		}
		if from != v {
			if err := recordAudit(ctx, tx, tenantID, "setting.set", key, tenancy.SettingChanged(key, from, v)); err != nil {
				return err
			}
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("set setting %s: %w", key, translate(err))
	}
	return st, nil
}

// DeleteSetting removes a setting, or answers ENOTFOUND.
func (s *BrandingService) DeleteSetting(ctx context.Context, tenantID, key string) error {
	if err := tenancy.ValidateSettingKey(key); err != nil {
		return err
	}
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var from string
		err := tx.QueryRow(ctx, `DELETE FROM tenants.tenant_settings WHERE tenant_id = $1 AND key = $2 RETURNING value`,
			tenantID, key).Scan(&from)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenancy.FieldErrorf(tenancy.ENOTFOUND, "key", "setting %s is not set", tenancy.Quote(key))
		} else if err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, tenantID, "setting.delete", key, tenancy.SettingChanged(key, from, "")); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return fmt.Errorf("delete setting %s: %w", key, translate(err))
	}
	return nil
}

const themeColumns = `tenant_id, id, name, primary_color, secondary_color, background_color, text_color, active, created_at, updated_at`

func scanTheme(r pgx.CollectableRow) (*tenancy.Theme, error) {
	var t tenancy.Theme
	err := r.Scan(&t.TenantID, &t.ID, &t.Name, &t.Primary, &t.Secondary, &t.Background, &t.Text, &t.Active, &t.CreatedAt, &t.UpdatedAt)
	return &t, err
}

// CreateTheme stores a new, inactive theme; its id is the slug of its name.
func (s *BrandingService) CreateTheme(ctx context.Context, tenantID string, n tenancy.NewTheme) (*tenancy.Theme, error) {
	t, err := n.Validate()
	if err != nil {
		return nil, err
	}
	var created *tenancy.Theme
	err = changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			INSERT INTO tenants.tenant_themes (tenant_id, id, name, primary_color, secondary_color, background_color, text_color)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			RETURNING `+themeColumns, tenantID, t.ID, t.Name, t.Primary, t.Secondary, t.Background, t.Text)
		if err != nil {
			return err
		}
		if created, err = pgx.CollectExactlyOneRow(rows, scanTheme); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, tenantID, "theme.create", created.ID, themeSummary(created)); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		if duplicate(err, "tenant_themes_pkey") {
			return nil, tenancy.FieldErrorf(tenancy.ECONFLICT, "name", "a theme with the id %s already exists", tenancy.Quote(t.ID))
		}
		return nil, fmt.Errorf("create theme %s: %w", tenancy.Quote(n.Name), translate(err))
	}
	return created, nil
}

// themeSummary describes a theme's name and colors.
func themeSummary(t *tenancy.Theme) string {
	return fmt.Sprintf("name: %s, primary color: %s, secondary color: %s, background color: %s, text color: %s",
		t.Name, t.Primary, t.Secondary, t.Background, t.Text)
}

// ListThemes lists the tenant's themes by id.
func (s *BrandingService) ListThemes(ctx context.Context, tenantID string) ([]*tenancy.Theme, error) {
	var out []*tenancy.Theme
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		var err error
		out, err = pgx.CollectRows(rows, scanTheme)
		return err
	}, `SELECT `+themeColumns+` FROM tenants.tenant_themes WHERE tenant_id = $1 ORDER BY id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list themes: %w", translate(err))
	}
	return out, nil
}

// lockThemes reads the tenant's themes for update, so two changes to them
// run one after the other.
func lockThemes(ctx context.Context, tx pgx.Tx, tenantID string) ([]*tenancy.Theme, error) {
	rows, err := tx.Query(ctx, `SELECT `+themeColumns+` FROM tenants.tenant_themes WHERE tenant_id = $1 ORDER BY id FOR UPDATE`, tenantID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanTheme)
}

// ActivateTheme makes the theme ref names (its id, its name, or an
// unambiguous prefix of its id: tenancy.MatchTheme) the active one.
func (s *BrandingService) ActivateTheme(ctx context.Context, tenantID, ref string) (*tenancy.Theme, error) {
	var t *tenancy.Theme
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		themes, err := lockThemes(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if t, err = tenancy.MatchTheme(themes, ref); err != nil {
			return err
		}
		if t.Active {
			return nil
		}
		was := ""
		for _, th := range themes {
			if th.Active {
				was = th.ID
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants.tenant_themes SET active = false, updated_at = now() WHERE tenant_id = $1 AND active`, tenantID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants.tenant_themes SET active = true, updated_at = now() WHERE tenant_id = $1 AND id = $2`, tenantID, t.ID); err != nil {
			return err
		}
		t.Active = true
		if err := recordAudit(ctx, tx, tenantID, "theme.activate", t.ID, tenancy.Changed("active theme", was, t.ID)); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("activate theme %s: %w", tenancy.Quote(ref), translate(err))
	}
	return t, nil
}

// UpdateTheme changes a theme's name and colors; its id stays.
func (s *BrandingService) UpdateTheme(ctx context.Context, tenantID, id string, n tenancy.NewTheme) (*tenancy.Theme, error) {
	v, err := n.Validate()
	if err != nil {
		return nil, err
	}
	var t *tenancy.Theme
	err = changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		themes, err := lockThemes(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		old, err := tenancy.ExactTheme(themes, id)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			UPDATE tenants.tenant_themes
			SET name = $3, primary_color = $4, secondary_color = $5, background_color = $6, text_color = $7, updated_at = now()
			WHERE tenant_id = $1 AND id = $2
			RETURNING `+themeColumns, tenantID, old.ID, v.Name, v.Primary, v.Secondary, v.Background, v.Text)
		if err != nil {
			return err
		}
		if t, err = pgx.CollectExactlyOneRow(rows, scanTheme); err != nil {
			return err
		}
		var parts []string
		for _, c := range [][3]string{
			{"name", old.Name, t.Name}, {"primary color", old.Primary, t.Primary}, {"secondary color", old.Secondary, t.Secondary},
			{"background color", old.Background, t.Background}, {"text color", old.Text, t.Text},
		} {
			if c[1] != c[2] {
				parts = append(parts, tenancy.Changed(c[0], c[1], c[2]))
			}
		}
		if len(parts) == 0 {
			return nil
		}
		if err := recordAudit(ctx, tx, tenantID, "theme.update", t.ID, strings.Join(parts, ", ")); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("update theme %s: %w", tenancy.Quote(id), translate(err))
	}
	return t, nil
}

// DeactivateTheme makes the active theme inactive; the brand colors then
// apply. It names the theme, so a page left open on an older state does
// not switch off a theme activated since.
func (s *BrandingService) DeactivateTheme(ctx context.Context, tenantID, id string) (*tenancy.Theme, error) {
	var t *tenancy.Theme
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		themes, err := lockThemes(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if t, err = tenancy.ExactTheme(themes, id); err != nil {
			return err
		}
		if !t.Active {
			return tenancy.FieldErrorf(tenancy.ECONFLICT, "theme", "theme %s is not the active one", tenancy.Quote(t.Name))
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants.tenant_themes SET active = false, updated_at = now() WHERE tenant_id = $1 AND id = $2`, tenantID, t.ID); err != nil {
			return err
		}
		t.Active = false
		if err := recordAudit(ctx, tx, tenantID, "theme.deactivate", t.ID, tenancy.Changed("active theme", t.ID, "")); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("deactivate theme %s: %w", tenancy.Quote(id), translate(err))
	}
	return t, nil
}

// DeleteTheme deletes a theme, the active one too: the brand colors then
// apply. The theme returned is as it was, Active included.
func (s *BrandingService) DeleteTheme(ctx context.Context, tenantID, id string) (*tenancy.Theme, error) {
	var t *tenancy.Theme
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		themes, err := lockThemes(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if t, err = tenancy.ExactTheme(themes, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tenants.tenant_themes WHERE tenant_id = $1 AND id = $2`, tenantID, t.ID); err != nil {
			return err
		}
		summary := themeSummary(t)
		if t.Active {
			summary = tenancy.Changed("active theme", t.ID, "") + "; " + summary
		}
		if err := recordAudit(ctx, tx, tenantID, "theme.delete", t.ID, summary); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, fmt.Errorf("delete theme %s: %w", tenancy.Quote(id), translate(err))
	}
	return t, nil
}

// Look reads the tenant's look from the database: brand colors, the
// company name and the active theme, in one query.
func (s *BrandingService) Look(ctx context.Context, tenantID string) (*tenancy.Look, error) {
	var b tenancy.Brand
	var company string
	var theme *tenancy.Theme
	contact := map[string]string{}
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			var k string
			var v []string
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			switch {
			case k == "theme" && len(v) == 6:
				theme = &tenancy.Theme{Primary: v[0], Secondary: v[1], Background: v[2], Text: v[3], ID: v[4], Name: v[5], Active: true}
			case k == "branding.company_name" && len(v) == 1:
				company = v[0]
			case slices.Contains(tenancy.ContactKeys, k) && len(v) == 1:
				contact[k] = v[0]
			case len(v) == 1:
				*brandField(&b, k) = v[0]
			}
		}
		return nil
	}, `
		SELECT key, ARRAY[value] FROM tenants.tenant_settings
		WHERE tenant_id = $1 AND key = ANY($2)
		UNION ALL
		SELECT 'theme', ARRAY[primary_color, secondary_color, background_color, text_color, id, name]
		FROM tenants.tenant_themes WHERE tenant_id = $1 AND active`,
		tenantID, slices.Concat([]string{"branding.company_name"}, brandKeys, tenancy.ContactKeys))
	if err != nil {
		return nil, fmt.Errorf("read look: %w", translate(err))
	}
	l := tenancy.ResolveLook(b, theme, company)
	l.Contact = tenancy.ContactFrom(contact)
	return l, nil
}

// SetSettings stores several settings in one transaction, after checking
// every value: bad input leaves every setting as it was. An empty value
// removes its setting.
func (s *BrandingService) SetSettings(ctx context.Context, tenantID string, values map[string]string) error {
	keys := slices.Sorted(maps.Keys(values))
	norm := map[string]string{}
	for _, k := range keys {
		if values[k] == "" {
			if err := tenancy.ValidateSettingKey(k); err != nil {
				return err
			}
			continue
		}
		v, err := tenancy.NormalizeSetting(k, values[k])
		if err != nil {
			return err
		}
		norm[k] = v
	}
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		changed := false
		for _, k := range keys {
			var from string
			err := tx.QueryRow(ctx, `SELECT value FROM tenants.tenant_settings WHERE tenant_id = $1 AND key = $2 FOR UPDATE`,
				tenantID, k).Scan(&from)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			to, set := norm[k]
			if from == to {
				continue
			}
			action := "setting.set"
			if set {
				_, err = tx.Exec(ctx, `
					INSERT INTO tenants.tenant_settings (tenant_id, key, value) VALUES ($1, $2, $3)
					ON CONFLICT (tenant_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, tenantID, k, to)
			} else {
				action = "setting.delete"
				_, err = tx.Exec(ctx, `DELETE FROM tenants.tenant_settings WHERE tenant_id = $1 AND key = $2`, tenantID, k)
			}
			if err != nil {
				return err
			}
			if err := recordAudit(ctx, tx, tenantID, action, k, tenancy.SettingChanged(k, from, to)); err != nil {
				return err
			}
			changed = true
		}
		if !changed {
			return nil
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return fmt.Errorf("set settings: %w", translate(err))
	}
	return nil
}

// BrandCache is a BrandingService whose Look is answered from memory,
// kept by a tenantMemo.
type BrandCache struct {
	*BrandingService
	looks *tenantMemo[*tenancy.Look]
}

// Cached returns s with Look served from memory, invalidated through tc.
func (s *BrandingService) Cached(tc *TenantCache) *BrandCache {
	return &BrandCache{BrandingService: s, looks: newTenantMemo[*tenancy.Look](tc)}
}

// forget drops one tenant's look, or every look for "".
func (c *BrandCache) forget(tenantID string) { c.looks.forget(tenantID) }

// Look returns the tenant's look from memory, or reads and remembers it.
// The look returned is shared: callers must not change it.
func (c *BrandCache) Look(ctx context.Context, tenantID string) (*tenancy.Look, error) {
	return c.looks.get(ctx, tenantID, c.BrandingService.Look)
}

// The changes below drop the look in this process at once, so the page
// after a save already shows it; other processes drop theirs on the
// notification.

// SetBrand changes brand colors; see BrandingService.SetBrand.
func (c *BrandCache) SetBrand(ctx context.Context, tenantID string, u tenancy.BrandUpdate) ([]tenancy.BrandChange, error) {
	defer c.forget(tenantID)
	return c.BrandingService.SetBrand(ctx, tenantID, u)
}

// SetSetting stores a setting; see BrandingService.SetSetting.
func (c *BrandCache) SetSetting(ctx context.Context, tenantID, key, value string) (*tenancy.Setting, error) {
	defer c.forget(tenantID)
	return c.BrandingService.SetSetting(ctx, tenantID, key, value)
}

// DeleteSetting removes a setting; see BrandingService.DeleteSetting.
func (c *BrandCache) DeleteSetting(ctx context.Context, tenantID, key string) error {
	defer c.forget(tenantID)
	return c.BrandingService.DeleteSetting(ctx, tenantID, key)
}

// SetSettings stores settings; see BrandingService.SetSettings.
func (c *BrandCache) SetSettings(ctx context.Context, tenantID string, values map[string]string) error {
	defer c.forget(tenantID)
	return c.BrandingService.SetSettings(ctx, tenantID, values)
}

// ActivateTheme switches themes; see BrandingService.ActivateTheme.
func (c *BrandCache) ActivateTheme(ctx context.Context, tenantID, ref string) (*tenancy.Theme, error) {
	defer c.forget(tenantID)
	return c.BrandingService.ActivateTheme(ctx, tenantID, ref)
}

// UpdateTheme changes a theme, perhaps the active one; see
// BrandingService.UpdateTheme.
func (c *BrandCache) UpdateTheme(ctx context.Context, tenantID, id string, n tenancy.NewTheme) (*tenancy.Theme, error) {
	defer c.forget(tenantID)
	return c.BrandingService.UpdateTheme(ctx, tenantID, id, n)
}

// DeactivateTheme switches the active theme off; see
// BrandingService.DeactivateTheme.
func (c *BrandCache) DeactivateTheme(ctx context.Context, tenantID, id string) (*tenancy.Theme, error) {
	defer c.forget(tenantID)
	return c.BrandingService.DeactivateTheme(ctx, tenantID, id)
}

// DeleteTheme deletes a theme, perhaps the active one; see
// BrandingService.DeleteTheme.
func (c *BrandCache) DeleteTheme(ctx context.Context, tenantID, id string) (*tenancy.Theme, error) {
	defer c.forget(tenantID)
	return c.BrandingService.DeleteTheme(ctx, tenantID, id)
}
