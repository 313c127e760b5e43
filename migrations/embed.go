// Package migrations holds the database schema as plain SQL, embedded in the
// binary.
//
// The files at the top level are the platform's migrations, applied in order
// by goose to the whole database. The files in tenant/ create the tables that
// hold a tenant's own data; they are applied to the shared schema "app" (for
// tenants isolated by row-level security) and to every schema-per-tenant
// schema, with search_path pointing at that schema, so they name their tables
// without a schema.
package migrations

import "embed"

// Platform holds the platform migrations (goose format).
//
//go:embed *.sql
var Platform embed.FS

// Tenant holds the tenant-table migrations, applied per schema.
//
//go:embed tenant/*.sql
var Tenant embed.FS
