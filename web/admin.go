package web

import "github.com/go-chi/chi/v5"

// adminRoutes are the platform console's pages, on the admin host.
func (s *Server) adminRoutes(r chi.Router) {
	r.NotFound(s.notFound)
}
