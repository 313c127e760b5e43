package postgres

// Exposed to the tests and benchmarks of this package.
var (
	PostgresTranslate = translate
	ReadInTenant      = readInTenant
)

// ExportInstance is the instance number the service's process holds.
func ExportInstance(s *ExportJobService) int32 {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	return s.instance
}
