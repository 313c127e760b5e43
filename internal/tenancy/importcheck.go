package tenancy

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// An archive's author controls every byte of it (the manifest's hashes
// prove it whole, not who wrote it), so an import puts its rows and objects
// through the checks the CLI and the portal apply when the same rows are
// made there: the same functions, so a rule added to a save path applies
// to imports too. A row those paths would never write is refused, and the
// import with it, before anything is written.

// LogoObjectKey is where a logo's bytes are kept in the tenant's bucket:
// its kind, its SHA-256 and the extension of its type. It is the only form
// of key the product writes.
func LogoObjectKey(kind LogoKind, sha256Hex string, img *LogoImage) string {
	return "logos/" + string(kind) + "/" + sha256Hex + img.Ext()
}

// CheckLogoObject checks an object of an archive: its key must be one the
// product writes (LogoObjectKey), for the very bytes it holds, and the
// bytes must pass the upload's checks (l.Check). It returns the logo the
// object makes, without tenant and time.
func (l LogoLimits) CheckLogoObject(key string, data []byte) (*Logo, error) {
	bad := func(format string, args ...any) error {
		return Errorf(EINVALID, "object %s "+format, append([]any{Quote(key)}, args...)...)
	}
	parts := strings.Split(key, "/")
	if len(parts) != 3 || parts[0] != "logos" {
		return nil, bad("is not a logo's key (logos/KIND/SHA256.EXT), the only objects a tenant has")
	}
	kind, err := ParseLogoKind(parts[1])
	if err != nil {
		return nil, bad("is not a logo's key: %s", ErrorMessage(err))
	}
	img, err := l.Check(data)
	if err != nil {
		return nil, bad("is refused: %s", ErrorMessage(err))
	}
	sum := sha256.Sum256(data)
	logo := &Logo{Kind: kind, ContentType: img.ContentType, Size: int64(len(data)),
		Width: img.Width, Height: img.Height, SHA256: hex.EncodeToString(sum[:])}
	logo.ObjectKey = LogoObjectKey(kind, logo.SHA256, img)
	if key != logo.ObjectKey {
		return nil, bad("is not where the product keeps these bytes (%s)", logo.ObjectKey)
	}
	return logo, nil
}

// ImportChecks are the rules imported rows are checked against.
type ImportChecks struct {
	Domains DomainRules
}

// ImportCheckedColumns are, for each table whose rows an import checks,
// the columns the check reads: an archive's file for the table must have
// them all.
var ImportCheckedColumns = map[string][]string{
	"tenants.tenant_domains":         {"domain"},
	"tenants.tenant_settings":        {"key", "value"},
	"tenants.tenant_themes":          {"id", "name", "primary_color", "secondary_color", "background_color", "text_color"},
	"tenants.tenant_email_templates": {"name", "subject", "html", "text"},
	"tenants.tenant_logos":           {"kind", "object_key", "content_type", "size_bytes", "width", "height", "sha256"},
}

// CheckRow checks one imported row of table (by column, as text) the way
// the row's save path checks what it stores, and that the row is in the
// form that path stores: a value the path would normalize (trim, lower)
// is refused too. logos are the archive's objects, checked, by key.
func (c ImportChecks) CheckRow(table string, row map[string]string, logos map[string]*Logo) error {
	differs := func(field, got, want string) error {
		return FieldErrorf(EINVALID, field, "%s %s is not in the form the product stores (%s)", field, Quote(got), Quote(want))
	}
	switch table {
	case "tenants.tenant_domains":
		name, err := c.Domains.Normalize(row["domain"])
		if err != nil {
			return err
		}
		if name != row["domain"] {
			return differs("domain", row["domain"], name)
		}
	case "tenants.tenant_settings":
		v, err := NormalizeSetting(row["key"], row["value"])
		if err != nil {
			return err
		}
		if v != row["value"] {
			return differs(row["key"], row["value"], v)
		}
	case "tenants.tenant_themes":
		t, err := NewTheme{Name: row["name"], Primary: row["primary_color"], Secondary: row["secondary_color"],
			Background: row["background_color"], Text: row["text_color"]}.Validate()
		if err != nil {
			return err
		}
		// A theme keeps its id when renamed: the id need only be one the
		// product could have made, not the one its name makes now.
		if id := row["id"]; id == "" || len(id) > ThemeIDMaxLen || SlugFromName(id) != id {
			return differs("id", id, t.ID)
		}
		for _, f := range []struct{ field, want string }{
			{"name", t.Name}, {"primary_color", t.Primary}, {"secondary_color", t.Secondary},
			{"background_color", t.Background}, {"text_color", t.Text},
		} {
			if row[f.field] != f.want {
				return differs(f.field, row[f.field], f.want)
			}
		}
	case "tenants.tenant_email_templates":
		t := EmailTemplate{Name: row["name"], Subject: row["subject"], HTML: row["html"], Text: row["text"]}
		if err := ValidateEmailTemplate(t); err != nil {
			return err
		}
		if s := strings.TrimSpace(t.Subject); s != t.Subject {
			return differs("subject", t.Subject, s)
		}
	case "tenants.tenant_logos":
		key := row["object_key"]
		l := logos[key]
		if l == nil {
			return FieldErrorf(EINVALID, "object_key", "logo %s refers to object %s, which the archive does not hold", Quote(row["kind"]), Quote(key))
		}
		for _, f := range []struct{ field, want string }{
			{"kind", string(l.Kind)}, {"content_type", l.ContentType}, {"size_bytes", strconv.FormatInt(l.Size, 10)},
			{"width", strconv.Itoa(l.Width)}, {"height", strconv.Itoa(l.Height)}, {"sha256", l.SHA256},
		} {
			if row[f.field] != f.want {
				return FieldErrorf(EINVALID, f.field, "logo %s says %s %s, but its object is %s", Quote(row["kind"]), f.field, Quote(row[f.field]), Quote(f.want))
			}
		}
	}
	return nil
}
