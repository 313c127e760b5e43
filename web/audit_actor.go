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
		addr := clientIP(r)
		a := tenancy.AuditActor{Kind: tenancy.ActorAnonymous, Addr: addr}
		if id := IdentityFrom(ctx); id != nil {
			a = tenancy.UserActor(id.User, addr)
		} else if ad := AdminFrom(ctx); ad != nil {
			a = tenancy.AdminActor(ad, addr)
		} else if k := APIKeyFrom(ctx); k != nil {
			a = tenancy.AuditActor{Kind: tenancy.ActorAPIKey, ID: k.Prefix, Name: k.Name, Addr: addr}
		}
		next.ServeHTTP(w, r.WithContext(tenancy.WithAuditActor(ctx, a)))
	})
}
