package postgres

// postgresTranslate exposes translate to the tests of this package.
var PostgresTranslate = translate
