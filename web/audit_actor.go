package web

import (
	"net/http"

	"github.com/nself/nself/internal/tenancy"
)

// auditActor puts who makes a state-changing request, and from where, in
// its context, where the services find it when they record the change in
// the audit log. Reads change nothing and go without.
func (s *Server) auditActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isSafeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		a := tenancy.AuditActor{Kind: tenancy.ActorAnonymous, Addr: clientIP(r)}
		if id := IdentityFrom(ctx); id != nil {
			a.Kind, a.ID, a.Name = tenancy.ActorUser, id.User.ID, id.User.Email
		} else if ad := AdminFrom(ctx); ad != nil {
			a.Kind, a.ID, a.Name = tenancy.ActorAdmin, ad.ID, ad.Email
		} else if k := APIKeyFrom(ctx); k != nil {
			a.Kind, a.ID, a.Name = tenancy.ActorAPIKey, k.Prefix, k.Name
		}
		next.ServeHTTP(w, r.WithContext(tenancy.WithAuditActor(ctx, a)))
	})
}
