package tenancy

import (
	"context"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf8"
)

// A tenant export is one gzip-compressed tar archive:
//
//	tenant.json                the registry row and metadata (ExportedTenant)
//	schema.sql, restore.sql    the tables' definitions and a psql script that loads them (see restore.go)
//	db/SCHEMA.TABLE.csv        one file per tenant table: its rows, COPY csv with a header
//	objects/KEY                one file per object in the tenant's bucket
//	manifest.json              last: every file above with its size and SHA-256
//
// The manifest comes last because the archive is written as it streams: a
// file's size and hash are known once it is written, and a tar header needs
// its size before the bytes. Each table is spooled to a temporary file
// first (disk, not memory) for the same reason; objects carry their size.
// A reader verifies the whole archive against the manifest before it
// writes anything.
//
// The tables of a tenant's own data (the ones migrations/tenant creates)
// are named in the shared schema, "app", whatever the tenant's strategy:
// under the schema strategy they are read from the tenant's schema and an
// import writes them to the new tenant's schema, so an archive moves between
// strategies.

// ExportFormat and ExportVersion name the archive format.
const (
	ExportFormat  = "nself-tenant-export"
	ExportVersion = 1

	ManifestFile = "manifest.json"
	TenantFile   = "tenant.json"
	TablesDir    = "db/"
	ObjectsDir   = "objects/"
	// DataSchema is the schema the tenant's own data tables are named in.
	DataSchema = "app"
)

// NotExported lists the tenant tables an export leaves out, and why. Every
// other table with a tenant_id column is exported, found in the catalog, so
// tables added later are included without a change here.
var NotExported = map[string]string{
	"auth.sessions":                   "sign-in sessions are credentials",
	"auth.refresh_tokens":             "tokens are credentials",
	"auth.password_tokens":            "one-time password links are credentials",
	"auth.api_keys":                   "API keys are credentials; the new tenant creates its own",
	"auth.user_totp":                  "authenticator secrets are credentials, sealed with this installation's key",
	"auth.recovery_codes":             "recovery codes are credentials",
	"tenants.tenant_schemas":          "made again for the new tenant",
	"tenants.tenant_exports":          "export jobs belong to the tenant they ran for",
	"tenants.tenant_invitation_mails": "a record of invitation mails for the sending limits, which start anew",
	"tenants.tenant_mail_outbox":      "mail waiting to be sent holds one-time links; the new tenant sends its own",
	"organizations.org_tenants":       "organizations are the platform's records, not the tenant's",
	"tenants.tenant_sso":              "the provider's client secret is sealed for this tenant; the new tenant configures single sign-on again",
	"auth.sso_sessions":               "sign-in sessions are credentials",
}

// NotImported lists the tables an export holds that an import leaves out,
// and why: the platform writes them about the tenant, so rows from an
// archive (whose author controls every byte) would be forged records. The
// new tenant starts with its own audit log, whose first entry is the
// import, and its own usage and payments.
var NotImported = map[string]string{
	"audit.events":                  "the new tenant's audit log starts with its import",
	"public.billing_payments":       "payments belong to the original tenant's billing",
	"public.billing_usage_counters": "usage is metered anew for the new tenant",
	"public.billing_usage_daily":    "usage is metered anew for the new tenant",
	"public.billing_usage_records":  "usage is metered anew for the new tenant",
}

// Redacted lists columns written empty (NULL) into an archive: an owner who
// downloads the archive must not receive other people's password hashes or
// the hashes of invitation secrets. Imported users set a password with a
// reset link; imported pending invitations are revoked. An import writes
// these columns empty (or new, see the postgres import rules) whatever the
// archive holds.
var Redacted = map[string][]string{
	"auth.users":                 {"password_hash"},
	"tenants.tenant_invitations": {"token_hash"},
}

// IsRedacted reports whether column of table is written empty.
func IsRedacted(table, column string) bool {
	for _, c := range Redacted[table] {
		if c == column {
			return true
		}
	}
	return false
}

// Manifest describes an archive; it is its last file.
type Manifest struct {
	Format     string          `json:"format"`
	Version    int             `json:"version"`
	CreatedAt  time.Time       `json:"created_at"`
	TenantID   string          `json:"tenant_id"`
	TenantSlug string          `json:"tenant_slug"`
	Tables     []ExportTable   `json:"tables"`
	Objects    []ExportObject  `json:"objects"`
	Files      []ManifestEntry `json:"files"`
}

// ExportTable is one table's file.
type ExportTable struct {
	Name    string   `json:"name"` // schema.table
	File    string   `json:"file"`
	Columns []string `json:"columns"`
	Rows    int64    `json:"rows"`
}

// ExportObject is one object's file.
type ExportObject struct {
	Key         string `json:"key"`
	File        string `json:"file"`
	ContentType string `json:"content_type"`
}

// ManifestEntry is a file of the archive, with its size and SHA-256 (hex).
type ManifestEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ExportedTenant is tenant.json: what the registry and the platform know of
// the tenant. Billing identifiers stay behind: the billing customer is the
// original tenant's.
type ExportedTenant struct {
	ID         string    `json:"id"`
	Slug       string    `json:"slug"`
	Name       string    `json:"name"`
	Status     Status    `json:"status"`
	Plan       string    `json:"plan"`
	Strategy   Strategy  `json:"strategy"`
	OwnerID    string    `json:"owner_user_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExportedAt time.Time `json:"exported_at"`
}

// TableFile is the archive path of a table's rows.
func TableFile(table string) string { return TablesDir + table + ".csv" }

// ObjectFile is the archive path of an object.
func ObjectFile(key string) string { return ObjectsDir + key }

// CheckArchivePath refuses a path that could land outside the place an
// archive is read into, or that is not in the form an export writes:
// absolute, with "..", ".", empty parts or backslashes, or not valid text.
func CheckArchivePath(p string) error {
	bad := func(why string) error {
		return Errorf(EINVALID, "archive entry %s %s", Quote(p), why)
	}
	switch {
	case p == "" || len(p) > 1024:
		return bad("has no usable name")
	case strings.HasPrefix(p, "/"):
		return bad("is an absolute path")
	case strings.ContainsAny(p, "\\\x00"):
		return bad("has a backslash or NUL in its name")
	case path.Clean(p) != p:
		return bad("is not a clean path")
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." || part == "" {
			return bad("leaves its directory")
		}
	}
	if !utf8.ValidString(p) {
		return bad("is not valid UTF-8 text")
	}
	return nil
}

// ExportProgress is how far an export has come. Totals are known once the
// tables have been counted and the bucket listed.
type ExportProgress struct {
	Tables, TablesDone   int
	Rows, RowsDone       int64
	Objects, ObjectsDone int
	Bytes                int64 // archive bytes written so far
}

// ImportOptions say how to import an archive.
type ImportOptions struct {
	// Slug is the new tenant's slug; the archive's when empty.
	Slug string
	// Name is the new tenant's name; the archive's when empty.
	Name string
	// Plan is the new tenant's plan; DefaultPlan when empty. The archive's
	// plan is never taken: it is the archive author's to write.
	Plan string
}

// ImportResult is what an import created.
type ImportResult struct {
	Tenant  *Tenant
	Rows    map[string]int64 // rows written, by table
	Objects int
	// PasswordToken is the one-time secret that lets the owner set a
	// password (passwords are not exported); empty without an owner.
	PasswordToken string
	// Notes say what was not carried over as it was (domains held by
	// another tenant, invitations revoked…).
	Notes []string
}

// ExportState is where a portal export job is.
type ExportState string

const (
	ExportRunning ExportState = "running"
	ExportReady   ExportState = "ready"
	ExportFailed  ExportState = "failed"
	// ExportExpired: the archive was removed after its time.
	ExportExpired ExportState = "expired"
)

// ExportJob is an export an owner requested in the portal. Its archive may
// be downloaded by that owner only, until ExpiresAt.
type ExportJob struct {
	TenantID    string
	ID          string
	RequestedBy string
	State       ExportState
	Progress    ExportProgress
	Size        int64
	Failure     string
	CreatedAt   time.Time
	FinishedAt  *time.Time
	ExpiresAt   *time.Time
}

// Expired reports whether the job's archive may no longer be downloaded.
func (j *ExportJob) Expired(now time.Time) bool {
	return j.ExpiresAt != nil && !now.Before(*j.ExpiresAt)
}

// StateAt is the job's state at now: a ready archive past its time is
// expired, whether or not its row says so yet.
func (j *ExportJob) StateAt(now time.Time) ExportState {
	if j.State == ExportReady && j.Expired(now) {
		return ExportExpired
	}
	return j.State
}

// ExportJobService runs exports in the background for the portal.
type ExportJobService interface {
	// StartExport starts an export of the tenant for the user; ECONFLICT
	// when one is already running for the tenant.
	StartExport(ctx context.Context, tenantID, userID string) (*ExportJob, error)
	// GetExport returns a job of the tenant requested by the user;
	// ENOTFOUND for anyone else's.
	GetExport(ctx context.Context, tenantID, userID, id string) (*ExportJob, error)
	// LatestExport returns the user's newest job in the tenant, or nil.
	LatestExport(ctx context.Context, tenantID, userID string) (*ExportJob, error)
	// OpenExport opens the archive of a ready, unexpired job the user
	// requested.
	OpenExport(ctx context.Context, tenantID, userID, id string) (*ExportJob, io.ReadCloser, error)
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key         string
	Size        int64
	ContentType string
	// Modified is when the object was last written, by the store's clock.
	Modified time.Time
}

// OtherBucketKeys lists the tenant tables whose object_key column names an
// object outside the tenant's bucket. Every other tenant table with an
// object_key column refers to an object in the tenant's bucket: found in
// the catalog, so a table added later keeps its objects from the sweep
// and in the export without a change here.
var OtherBucketKeys = map[string]string{
	"tenants.tenant_exports": "archives are kept in the exports bucket",
}

// Orphans returns the objects no row refers to that were written before
// cutoff. An object is written before the row that refers to it commits
// (a logo's bytes, then its row), so a young object without a row may be
// on its way in; only one older than the grace period was left behind by
// a failure between the two.
func Orphans(objects []ObjectInfo, referenced map[string]bool, cutoff time.Time) []ObjectInfo {
	var out []ObjectInfo
	for _, o := range objects {
		if !referenced[o.Key] && o.Modified.Before(cutoff) {
			out = append(out, o)
		}
	}
	return out
}

// CheckExportRoom refuses a new export to a tenant whose stored bytes
// (logos and the export archives it keeps) are at its plan's storage
// limit: the archive would take it past.
func CheckExportRoom(plan string, maxGB, used int64) error {
	if maxGB == Unlimited || used < maxGB*1e9 {
		return nil
	}
	return Errorf(EQUOTA, "plan %s includes %s of storage and this workspace already stores %s GB (logos and export archives): "+
		"an export archive would not fit. Remove files, wait for earlier exports to expire, or move to a larger plan",
		Quote(plan), FormatStorage(maxGB), FormatDecimal(float64(used)/1e9))
}

// ObjectStreamer is the part of object storage an export and an import
// need: objects listed, read and written as streams, never whole in memory.
type ObjectStreamer interface {
	BlobStore
	// ListObjects calls fn for every object in bucket under prefix, in key
	// order; a missing bucket holds no objects.
	ListObjects(ctx context.Context, bucket, prefix string, fn func(ObjectInfo) error) error
	// OpenObject opens an object for reading.
	OpenObject(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error)
	// PutObjectStream stores size bytes read from r under key.
	PutObjectStream(ctx context.Context, bucket, key string, r io.Reader, size int64, contentType string) error
	// RemoveBucket removes a bucket that holds nothing; a missing bucket
	// is no error.
	RemoveBucket(ctx context.Context, bucket string) error
}

// ExportBucket holds the archives of portal exports, under the tenant's id.
const ExportBucket = "nself-exports"

// ExportPrefix is where a tenant's archives are in ExportBucket.
func ExportPrefix(tenantID string) string { return strings.ToLower(tenantID) + "/" }

// ExportKey is the key of an export's archive in ExportBucket.
func ExportKey(tenantID, exportID string) string {
	return ExportPrefix(tenantID) + strings.ToLower(exportID) + ".tar.gz"
}
