package web

import (
	"net/http"

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
	for _, k := range keys {
		rows = append(rows, views.APIKeyRow{Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, LastUsed: k.LastUsedAt, Revoked: k.RevokedAt != nil})
	}
	p := s.page(r, "API keys")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.APIKeysPage(p, rows, f, newKey))
	return nil
}

// handleAPIKeyList serves GET /settings/api-keys.
func (s *Server) handleAPIKeyList(w http.ResponseWriter, r *http.Request) error {
	return s.renderAPIKeys(w, r, http.StatusOK, views.Form{}, "")
}

// apiKeyForm names a new API key.
type apiKeyForm struct {
	Name string `form:"name"`
}

// handleAPIKeyCreate serves POST /settings/api-keys: the new key is shown
// on the page it answers with, once, never stored in clear.
func (s *Server) handleAPIKeyCreate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in apiKeyForm
	f := parseForm(r, &in)
	_, secret, err := s.APIKeys.CreateAPIKey(ctx, TenantFrom(ctx).ID, in.Name, IdentityFrom(ctx).User.ID)
	if tenancy.ErrorCode(err) == tenancy.EINVALID {
		fieldError(&f, err)
		return s.renderAPIKeys(w, r, http.StatusUnprocessableEntity, f, "")
	} else if err != nil {
		return err
	}
	return s.renderAPIKeys(w, r, http.StatusOK, views.Form{}, secret)
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
