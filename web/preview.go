package web

import (
	"bytes"
	"compress/flate"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nself/nself/internal/notify"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// A preview frame's request carries the draft it shows, sealed: the
// editor's preview answer puts the unsaved values into the frame's
// address, compressed and signed with a key derived from the server's
// secret, and whichever server process the frame's request reaches checks
// the signature and renders the draft again through the same code that
// renders what saving produces. No process keeps anything between the two
// requests, so previews work behind a load balancer.
//
// A sealed draft names its tenant and expires, so it shows nothing on
// another tenant's portal nor long after; and its size is bounded twice:
// the address (the server reads at most 64 KiB of request head) and what
// it inflates to.

// previewDraft is what a preview frame shows.
type previewDraft struct {
	Tenant  string `json:"t"`
	Expires int64  `json:"x"`
	// Surface is what the frame draws: "signin", "dashboard" or
	// "email:NAME".
	Surface string `json:"s"`
	// Logo is "dark" to show the dark logo, on a dark bar.
	Logo string `json:"l,omitempty"`
	// Colors is the palette to draw with; zero for the tenant's own.
	Colors *tenancy.Palette `json:"c,omitempty"`
	// Settings are the settings shown (company name, tagline, contact),
	// by key; nil for the tenant's own.
	Settings map[string]string `json:"st,omitempty"`
	// Subject and HTML are an email template's unsaved values; with
	// neither, the email's saved version is shown.
	Subject string `json:"su,omitempty"`
	HTML    string `json:"h,omitempty"`
	Draft   bool   `json:"d,omitempty"`
}

const (
	previewTTL = 30 * time.Minute
	// maxPreviewToken bounds a sealed draft in an address, well within
	// the server's 64 KiB request head.
	maxPreviewToken = 48 << 10
	// maxPreviewJSON bounds what a sealed draft inflates to: an email's
	// largest subject and body, and room for the rest.
	maxPreviewJSON = 2*tenancy.MaxEmailBody + 64<<10
)

// errPreviewTooLarge is said in place of a preview whose draft cannot be
// carried to the frame.
var errPreviewTooLarge = tenancy.Errorf(tenancy.EINVALID,
	"This draft is too large to preview. Save it, and the preview shows the saved version.")

// errPreviewExpired is said by a frame whose draft does not open.
var errPreviewExpired = tenancy.Errorf(tenancy.ENOTFOUND, "This preview has expired: change a field to see it again.")

func (s *Server) previewKeys() [][]byte {
	keys := [][]byte{derive(s.Config.SessionKey, "preview-draft")}
	if len(s.Config.PreviousSessionKey) > 0 {
		keys = append(keys, derive(s.Config.PreviousSessionKey, "preview-draft"))
	}
	return keys
}

// sealPreview makes the token of a draft for the tenant.
func (s *Server) sealPreview(tenantID string, d previewDraft) (string, error) {
	d.Tenant, d.Expires = tenantID, time.Now().Add(previewTTL).Unix()
	raw, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.BestCompression)
	zw.Write(raw)
	zw.Close()
	payload := base64.RawURLEncoding.EncodeToString(buf.Bytes())
	m := hmac.New(sha256.New, s.previewKeys()[0])
	m.Write([]byte(payload))
	token := payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	if len(token) > maxPreviewToken {
		return "", errPreviewTooLarge
	}
	return token, nil
}

// openPreview checks a token's size, signature, tenant and age, and
// returns its draft.
func (s *Server) openPreview(tenantID, token string) (previewDraft, error) {
	var d previewDraft
	payload, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > maxPreviewToken {
		return d, errPreviewExpired
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return d, errPreviewExpired
	}
	valid := false
	for _, k := range s.previewKeys() {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(payload))
		if hmac.Equal(m.Sum(nil), got) {
			valid = true
			break
		}
	}
	if !valid {
		return d, errPreviewExpired
	}
	packed, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return d, errPreviewExpired
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(packed)), maxPreviewJSON+1))
	if err != nil || len(raw) > maxPreviewJSON {
		return d, errPreviewExpired
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, errPreviewExpired
	}
	if d.Tenant != tenantID || time.Now().Unix() > d.Expires {
		return previewDraft{}, errPreviewExpired
	}
	return d, nil
}

// previewSurfaces are what the branding preview can draw, in the order
// its switch offers them: the sign-in page, the dashboard, each email.
func previewSurfaces() []views.SurfaceOption {
	out := []views.SurfaceOption{{Value: "signin", Label: "Sign-in page"}, {Value: "dashboard", Label: "Dashboard, signed in"}}
	for _, n := range tenancy.EmailTemplateNames {
		out = append(out, views.SurfaceOption{Value: "email:" + n, Label: emailTitles[n] + " email", Email: true})
	}
	return out
}

// previewControls reads the preview switch's values: an unknown surface
// is the sign-in page.
func previewControls(get func(string) string) (surface, logo string) {
	surface, logo = get("surface"), get("logo")
	ok := false
	for _, o := range previewSurfaces() {
		ok = ok || o.Value == surface
	}
	if !ok {
		surface = "signin"
	}
	if logo != "dark" {
		logo = "main"
	}
	return surface, logo
}

// draftSettings are the settings a draft shows, as the Composer takes
// them.
func draftSettings(m map[string]string) []*tenancy.Setting {
	var out []*tenancy.Setting
	for k, v := range m {
		if v != "" {
			out = append(out, &tenancy.Setting{Key: k, Value: v})
		}
	}
	return out
}

// previewEmail composes the email a draft shows, through the composer
// real mail goes through: the draft's template (or the saved one) and the
// draft's colors and settings (or the tenant's own).
func (s *Server) previewEmail(r *http.Request, name string, d previewDraft) (tenancy.Message, error) {
	ctx := r.Context()
	t := TenantFrom(ctx)
	var tpl *tenancy.EmailTemplate
	if d.Draft {
		tpl = &tenancy.EmailTemplate{Name: name, Subject: d.Subject, HTML: d.HTML}
		if err := tenancy.ValidateEmailTemplate(*tpl); err != nil {
			return tenancy.Message{}, err
		}
	} else {
		var err error
		if tpl, err = s.Mail.Template(ctx, t.ID, name); err != nil {
			return tenancy.Message{}, err
		}
	}
	var bd *notify.BrandDraft
	if d.Colors != nil {
		bd = &notify.BrandDraft{Look: &tenancy.Look{Palette: *d.Colors, CompanyName: d.Settings["branding.company_name"]},
			Settings: draftSettings(d.Settings)}
	}
	return s.Mail.SampleWith(ctx, t, tpl, "", bd)
}

// writePreviewEmail answers a preview frame with an email's HTML body,
// under previewPolicy.
func writePreviewEmail(w http.ResponseWriter, msg tenancy.Message) {
	h := w.Header()
	h.Set("Content-Security-Policy", previewPolicy)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.Write([]byte(msg.HTML))
}

// previewPage draws the sign-in page or the dashboard with a draft's
// colors, settings and logo, through the pages' own components.
func (s *Server) previewPage(w http.ResponseWriter, r *http.Request, d previewDraft) error {
	ctx := r.Context()
	t := TenantFrom(ctx)
	name := d.Settings["branding.company_name"]
	if tenancy.ValidateName("name", name) != nil {
		name = t.Name
	}
	q := url.Values{"preview": {"1"}}
	if d.Colors != nil {
		for _, k := range previewKeys {
			q.Set(k, d.Colors.Color(k))
		}
	}
	if d.Logo == "dark" {
		q.Set("bar", "dark")
	}
	brand := views.Brand{Name: name, Initial: initial(name), StyleURL: "/brand.css?" + q.Encode(),
		Contact: tenancy.ContactFrom(d.Settings), LogoURL: s.logoURL(ctx, t)}
	if d.Logo == "dark" {
		if u := s.logoURLOf(ctx, t, tenancy.LogoDark); u != "" {
			brand.LogoURL = u
		}
	}
	h := w.Header()
	h.Set("Content-Security-Policy", signInPreviewPolicy)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Cache-Control", "no-store")
	if d.Surface == "dashboard" {
		dash, err := s.dashboard(r)
		if err != nil {
			return err
		}
		p := s.page(r, "Dashboard")
		p.Brand, p.SignOutURL, p.CSRF = brand, "", ""
		p.Framed = true
		render(w, r, http.StatusOK, views.DashboardPage(p, dash))
		return nil
	}
	p := s.page(r, "Sign in")
	p.UserEmail, p.Role, p.SignOutURL, p.Nav, p.CSRF = "", "", "", nil, ""
	p.Brand, p.Framed = brand, true
	render(w, r, http.StatusOK, views.SignIn(p, views.Form{}, "/signin"))
	return nil
}
