package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

func (s *Server) apiKeyRoutes(r chi.Router) {
	r.Get("/settings/api-keys", s.h(s.handleAPIKeyList))
	r.Post("/settings/api-keys", s.h(s.handleAPIKeyCreate))
	r.Post("/settings/api-keys/{prefix}/revoke", s.h(s.handleAPIKeyRevoke))
}

func (s *Server) renderAPIKeys(w http.ResponseWriter, r *http.Request, status int, f views.Form, newKey string) error {
	keys, err := s.APIKeys.ListAPIKeys(r.Context(), TenantFrom(r.Context()).ID)
	if err != nil {
		return err
	}
	rows := make([]views.APIKeyRow, 0, len(keys))
	now := time.Now()
	for _, k := range keys {
		rows = append(rows, views.APIKeyRow{Name: k.Name, Prefix: k.Prefix, Start: keyStart(k), CreatedAt: k.CreatedAt, LastUsed: k.LastUsedAt,
			LastUsedFrom: k.LastUsedFrom, Revoked: k.RevokedAt != nil, Scope: scopeWords(k.APIKeyScope),
			ExpiresAt: k.ExpiresAt, Expired: k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)})
	}
	p := s.page(r, "API keys")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.APIKeysPage(p, rows, f, newKey))
	return nil
}

// keyStart is how a key begins: nsk_, its tenant's id without dashes,
// _, then the stored prefix's part of the secret. The stored prefix
// (nsk_ and the secret's first characters) names the key in routes but is
// not how the key reads.
func keyStart(k *tenancy.APIKey) string {
	return "nsk_" + strings.ReplaceAll(k.TenantID, "-", "") + "_" + strings.TrimPrefix(k.Prefix, "nsk_")
}

// handleAPIKeyList serves GET /settings/api-keys.
func (s *Server) handleAPIKeyList(w http.ResponseWriter, r *http.Request) error {
	return s.renderAPIKeys(w, r, http.StatusOK, newKeyForm(), "")
}

// newKeyForm is the key form as first shown: read and write, both
// surfaces, no expiry.
func newKeyForm() views.Form {
	return views.Form{Values: map[string]string{"access": "read_write", "api": "1", "gateway": "1", "expires": "0"}}
}

// scopeWords says what a key may do, for its row.
func scopeWords(sc tenancy.APIKeyScope) string {
	access := "read-write"
	if sc.ReadOnly {
		access = "read-only"
	}
	switch {
	case sc.API && sc.Gateway:
		return access + ", tenant API and gateway"
	case sc.API:
		return access + ", tenant API only"
	}
	return access + ", gateway only"
}

// keyScopeOf reads the scope chosen on the key form.
func keyScopeOf(f *views.Form, now time.Time) (tenancy.APIKeyScope, bool) {
	sc := tenancy.APIKeyScope{ReadOnly: f.Value("access") == "read_only", API: f.Value("api") != "", Gateway: f.Value("gateway") != ""}
	days, err := strconv.Atoi(f.Value("expires"))
	if err != nil || days < 0 || days > 3650 {
		f.Errors["expires"] = "choose when the key expires"
		return sc, false
	}
	if days > 0 {
		at := now.Add(time.Duration(days) * 24 * time.Hour)
		sc.ExpiresAt = &at
	}
	return sc, true
}

// apiKeyForm names a new API key.
type apiKeyForm struct {
	Name    string `form:"name"`
	Access  string `form:"access"`
	API     string `form:"api"`
	Gateway string `form:"gateway"`
	Expires string `form:"expires"`
}

// handleAPIKeyCreate serves POST /settings/api-keys: the new key is shown
// on the page it answers with, once, never stored in clear.
func (s *Server) handleAPIKeyCreate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in apiKeyForm
	f := parseForm(r, &in)
	if _, scoped := r.PostForm["access"]; !scoped {
		// A form without the scope fields (a page from before they
		// existed, a script) makes a key as keys were made then.
		def := newKeyForm()
		f.Values["access"], f.Values["api"], f.Values["gateway"], f.Values["expires"] = def.Values["access"], def.Values["api"], def.Values["gateway"], def.Values["expires"]
	}
	f.Values["surfaces"] = ""
	scope, ok := keyScopeOf(&f, time.Now())
	if !ok {
		return s.renderAPIKeys(w, r, http.StatusUnprocessableEntity, f, "")
	}
	_, secret, err := s.APIKeys.CreateScopedAPIKey(ctx, TenantFrom(ctx).ID, f.Value("name"), IdentityFrom(ctx).User.ID, scope)
	if tenancy.ErrorCode(err) == tenancy.EINVALID {
		fieldError(&f, err)
		return s.renderAPIKeys(w, r, http.StatusUnprocessableEntity, f, "")
	} else if err != nil {
		return err
	}
	return s.renderAPIKeys(w, r, http.StatusOK, newKeyForm(), secret)
}

// handleAPIKeyRevoke serves POST /settings/api-keys/{prefix}/revoke.
func (s *Server) handleAPIKeyRevoke(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	k, err := s.APIKeys.RevokeAPIKey(ctx, TenantFrom(ctx).ID, chi.URLParam(r, "prefix"))
	if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, "Key “"+k.Name+"” revoked.")
	http.Redirect(w, r, "/settings/api-keys", http.StatusSeeOther)
	return nil
}
