package postgres

import "context"

// SetLogoBeforeCommit makes fn run last in UploadLogo's transaction.
func SetLogoBeforeCommit(s *LogoService, fn func(context.Context) error) { s.beforeCommit = fn }
