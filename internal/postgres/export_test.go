package postgres

// Exposed to the tests and benchmarks of this package.
var (
	PostgresTranslate = translate
	ReadInTenant      = readInTenant
)
