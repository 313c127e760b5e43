package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// LogoService implements tenancy.LogoService: the bytes in the tenant's
// bucket, the row saying which object is current in tenants.tenant_logos.
//
// The object is written first, under a key named by its hash, and the row
// after it, so a row never points to an object that is not there. When the
// row cannot be written the new object is removed again; when a row is
// replaced or removed, the old object is removed once the transaction has
// committed. A failure to remove leaves an unreferenced object behind,
// logged, never a broken logo.
type LogoService struct {
	db     *DB
	blobs  tenancy.BlobStore
	Limits tenancy.LogoLimits
	Log    *slog.Logger

	// beforeCommit, when set, runs last in UploadLogo's transaction; tests
	// make it fail to see the upload undone.
	beforeCommit func(ctx context.Context) error
}

var _ tenancy.LogoService = (*LogoService)(nil)

// NewLogoService returns a LogoService storing rows in db and bytes in blobs.
func NewLogoService(db *DB, blobs tenancy.BlobStore) *LogoService {
	return &LogoService{db: db, blobs: blobs, Limits: tenancy.DefaultLogoLimits, Log: slog.Default()}
}

const logoColumns = `tenant_id, kind, object_key, content_type, size_bytes, width, height, sha256, created_at`

func scanLogo(row pgx.Row) (*tenancy.Logo, error) {
	var l tenancy.Logo
	if err := row.Scan(&l.TenantID, &l.Kind, &l.ObjectKey, &l.ContentType, &l.Size, &l.Width, &l.Height, &l.SHA256, &l.CreatedAt); err != nil {
		return nil, err
	}
	return &l, nil
}

func logoNotFound(kind tenancy.LogoKind) error {
	return tenancy.FieldErrorf(tenancy.ENOTFOUND, "type", "no %s logo", kind)
}

func checkLogoRef(tenantID string, kind tenancy.LogoKind) error {
	if !tenancy.IsUUID(tenantID) {
		return tenancy.Errorf(tenancy.EINVALID, "tenant id %s is not a uuid", tenancy.Quote(tenantID))
	}
	_, err := tenancy.ParseLogoKind(string(kind))
	return err
}

// UploadLogo checks data and makes it the tenant's logo of that kind.
func (s *LogoService) UploadLogo(ctx context.Context, tenantID string, kind tenancy.LogoKind, data []byte) (*tenancy.Logo, error) {
	if err := checkLogoRef(tenantID, kind); err != nil {
		return nil, err
	}
	img, err := s.Limits.Check(data)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	l := &tenancy.Logo{
		TenantID: tenantID, Kind: kind, ContentType: img.ContentType, Size: int64(len(data)),
		Width: img.Width, Height: img.Height, SHA256: hex.EncodeToString(sum[:]),
	}
	l.ObjectKey = tenancy.LogoObjectKey(kind, l.SHA256, img)
	// A deleted tenant's bucket is gone, and an upload must not make it
	// again; the check is repeated with the row's write.
	if err := changeTenant(ctx, s.db.App, tenantID, "", func(pgx.Tx) error { return nil }); err != nil {
		return nil, fmt.Errorf("upload %s logo: %w", kind, translate(err))
	}
	bucket := tenancy.TenantBucket(tenantID)
	if err := s.blobs.Put(ctx, bucket, l.ObjectKey, data, l.ContentType); err != nil {
		return nil, fmt.Errorf("upload %s logo: %w", kind, err)
	}
	var old string
	err = changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var oldSHA string
		err := tx.QueryRow(ctx, `
			SELECT object_key, sha256 FROM tenants.tenant_logos
			WHERE tenant_id = $1 AND kind = $2 FOR UPDATE`, tenantID, kind).Scan(&old, &oldSHA)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := checkStorageQuota(ctx, tx, tenantID, kind, l.Size); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO tenants.tenant_logos (tenant_id, kind, object_key, content_type, size_bytes, width, height, sha256)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (tenant_id, kind) DO UPDATE SET
			  object_key = excluded.object_key, content_type = excluded.content_type,
			  size_bytes = excluded.size_bytes, width = excluded.width, height = excluded.height,
			  sha256 = excluded.sha256, created_at = excluded.created_at
			RETURNING created_at`,
			tenantID, kind, l.ObjectKey, l.ContentType, l.Size, l.Width, l.Height, l.SHA256).Scan(&l.CreatedAt); err != nil {
			return err
		}
		summary := fmt.Sprintf("%s, %d bytes, %dx%d, sha256 %s", l.ContentType, l.Size, l.Width, l.Height, l.SHA256[:12])
		if oldSHA != "" {
			summary += ", replaced sha256 " + oldSHA[:min(12, len(oldSHA))]
		}
		if err := recordAudit(ctx, tx, tenantID, "logo.upload", string(kind), summary); err != nil {
			return err
		}
		if err := notifyChange(ctx, tx, tenantID); err != nil {
			return err
		}
		if s.beforeCommit != nil {
			return s.beforeCommit(ctx)
		}
		return nil
	})
	if err != nil {
		// The same bytes uploaded again share the key of the current logo,
		// which must stay.
		if old != l.ObjectKey {
			s.removeObject(ctx, bucket, l.ObjectKey, "undo a failed upload")
		}
		return nil, fmt.Errorf("upload %s logo: %w", kind, translate(err))
	}
	if old != "" && old != l.ObjectKey {
		s.removeObject(ctx, bucket, old, "remove a replaced logo")
	}
	return l, nil
}

// removeObject removes an object that no row points to, even when ctx has
// been cancelled (the reason, often, that the row was not written).
func (s *LogoService) removeObject(ctx context.Context, bucket, key, why string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := s.blobs.Remove(ctx, bucket, key); err != nil {
		s.Log.Warn("logo: object left behind", "why", why, "bucket", bucket, "key", key, "err", err)
	}
}

// RemoveLogo removes the tenant's logo of that kind, the row first.
func (s *LogoService) RemoveLogo(ctx context.Context, tenantID string, kind tenancy.LogoKind) (*tenancy.Logo, error) {
	if err := checkLogoRef(tenantID, kind); err != nil {
		return nil, err
	}
	var l *tenancy.Logo
	err := changeTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var err error
		l, err = scanLogo(tx.QueryRow(ctx, `
			DELETE FROM tenants.tenant_logos WHERE tenant_id = $1 AND kind = $2
			RETURNING `+logoColumns, tenantID, kind))
		if errors.Is(err, pgx.ErrNoRows) {
			return logoNotFound(kind)
		}
		if err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, tenantID, "logo.remove", string(kind),
			fmt.Sprintf("%s, %d bytes, sha256 %s", l.ContentType, l.Size, l.SHA256[:min(12, len(l.SHA256))])); err != nil {
			return err
		}
		return notifyChange(ctx, tx, tenantID)
	})
	if err != nil {
		return nil, translate(err)
	}
	s.removeObject(ctx, tenancy.TenantBucket(tenantID), l.ObjectKey, "remove a logo")
	return l, nil
}

// ListLogos returns the tenant's logos in the order of tenancy.LogoKinds.
func (s *LogoService) ListLogos(ctx context.Context, tenantID string) ([]*tenancy.Logo, error) {
	var out []*tenancy.Logo
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		for rows.Next() {
			l, err := scanLogo(rows)
			if err != nil {
				return err
			}
			out = append(out, l)
		}
		return nil
	}, `SELECT `+logoColumns+` FROM tenants.tenant_logos WHERE tenant_id = $1
		ORDER BY array_position(ARRAY['main', 'icon', 'email', 'dark'], kind)`, tenantID)
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// GetLogo returns the tenant's logo of that kind and its bytes.
func (s *LogoService) GetLogo(ctx context.Context, tenantID string, kind tenancy.LogoKind) (*tenancy.Logo, []byte, error) {
	if err := checkLogoRef(tenantID, kind); err != nil {
		return nil, nil, err
	}
	list, err := s.ListLogos(ctx, tenantID)
	if err != nil {
		return nil, nil, err
	}
	return s.open(ctx, list, kind)
}

// open reads the bytes of the logo of that kind in list.
func (s *LogoService) open(ctx context.Context, list []*tenancy.Logo, kind tenancy.LogoKind) (*tenancy.Logo, []byte, error) {
	for _, l := range list {
		if l.Kind == kind {
			b, err := s.blobs.Get(ctx, tenancy.TenantBucket(l.TenantID), l.ObjectKey)
			if err != nil {
				return nil, nil, fmt.Errorf("read %s logo: %w", kind, err)
			}
			return l, b, nil
		}
	}
	return nil, nil, logoNotFound(kind)
}

// checkStorageQuota refuses a logo that would take the tenant's stored
// bytes past its plan's storage limit. The logo it replaces no longer
// counts.
func checkStorageQuota(ctx context.Context, tx pgx.Tx, tenantID string, kind tenancy.LogoKind, size int64) error {
	plan, maxGB, others, err := storageInUse(ctx, tx, tenantID, kind)
	if err != nil {
		return err
	}
	if maxGB != tenancy.Unlimited && others+size > maxGB*1e9 {
		return tenancy.FieldErrorf(tenancy.EQUOTA, "file", "plan %s includes %s of storage; this logo would bring it to %s GB: remove files or move to a larger plan",
			tenancy.Quote(plan), tenancy.FormatStorage(maxGB), tenancy.FormatDecimal(float64(others+size)/1e9))
	}
	return nil
}

// storageInUse reads the tenant's plan, its storage limit and the bytes it
// stores: its logos but the one of kind except (none when empty), and the
// archives of its exports while they may be downloaded.
func storageInUse(ctx context.Context, tx pgx.Tx, tenantID string, except tenancy.LogoKind) (plan string, maxGB, used int64, err error) {
	err = tx.QueryRow(ctx, `
		SELECT p.name, p.max_storage_gb,
		       (SELECT coalesce(sum(size_bytes), 0)::bigint FROM tenants.tenant_logos
		        WHERE tenant_id = $1 AND kind <> $2)
		       + (SELECT coalesce(sum(size_bytes), 0)::bigint FROM tenants.tenant_exports
		          WHERE tenant_id = $1 AND state = 'ready' AND expires_at > now())
		FROM tenants.tenants t JOIN public.billing_plans p ON p.name = t.plan
		WHERE t.id = $1`, tenantID, except).Scan(&plan, &maxGB, &used)
	if err != nil {
		return "", 0, 0, fmt.Errorf("read storage quota: %w", err)
	}
	return plan, maxGB, used, nil
}
