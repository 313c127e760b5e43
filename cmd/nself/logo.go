package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/blob"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

const logoHelp = `Types:
  main   the logo in the portal's header and on the sign-in page
  icon   the favicon
  email  the logo in emails
  dark   the main logo for dark backgrounds

A logo is a PNG, JPEG, WebP or SVG image of at most 2 MB and 4096×4096
pixels; its type is read from its bytes, not its name. An SVG that could run
script or load anything from elsewhere (script, event handlers, external
links or url()) is refused. Logos are kept in the tenant's bucket in MinIO
(MINIO_ENDPOINT, MINIO_ACCESS_KEY, MINIO_SECRET_KEY).`

func (a *app) logoCommand() *cobra.Command {
	g := group("logo", "Upload, list and remove a tenant's logos",
		a.logoUploadCommand(),
		a.logoListCommand(),
		a.logoRemoveCommand(),
	)
	g.Long = "Upload, list and remove a tenant's logos.\n\n" + logoHelp
	return g
}

// blobStore is the object storage the settings name.
func (a *app) blobStore() (*blob.Store, error) {
	return blob.New(blob.Config{Endpoint: string(a.cfg.MinioEndpoint), AccessKey: a.cfg.MinioAccessKey,
		SecretKey: a.cfg.MinioSecretKey, UseSSL: a.cfg.MinioUseSSL, Timeout: time.Duration(a.cfg.MinioTimeout)})
}

// logos finds the tenant an argument names and returns it with the logo
// service.
func (a *app) logos(ctx context.Context, ref string) (*tenancy.Tenant, *postgres.LogoService, error) {
	store, err := a.blobStore()
	if err != nil {
		return nil, nil, err
	}
	t, err := a.tenantArg(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	svc := postgres.NewLogoService(a.db, store)
	svc.Log = slog.New(slog.NewTextHandler(a.Err, nil))
	return t, svc, nil
}

func logoKindFlag(cmd *cobra.Command, kind *string, def string) {
	cmd.Flags().StringVar(kind, "type", def, "logo type: main, icon, email, dark")
}

func (a *app) logoUploadCommand() *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "upload SLUG|ID FILE",
		Short: "Upload a logo, replacing the tenant's logo of that type",
		Long:  "Upload a logo, replacing the tenant's logo of that type.\n\n" + logoHelp,
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			k, err := tenancy.ParseLogoKind(kind)
			if err != nil {
				return err
			}
			data, err := readLimited(args[1], tenancy.DefaultLogoLimits.MaxBytes)
			if err != nil {
				return err
			}
			t, svc, err := a.logos(ctx, args[0])
			if err != nil {
				return err
			}
			l, err := svc.UploadLogo(ctx, t.ID, k, data)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Logo uploaded: %s %s (%s, %s, %s)\n", t.Slug, l.Kind, l.ContentType, dimensions(l), tenancy.FormatBytes(l.Size))
			return nil
		},
	}
	logoKindFlag(cmd, &kind, "main")
	return cmd
}

// readLimited reads a file, but no more than one byte over max: enough to
// tell it is too big without reading all of it.
func readLimited(name string, max int) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

func dimensions(l *tenancy.Logo) string {
	if l.Width == 0 || l.Height == 0 {
		return "scalable"
	}
	return strconv.Itoa(l.Width) + "×" + strconv.Itoa(l.Height)
}

func (a *app) logoListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list SLUG|ID",
		Short: "List a tenant's logos",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			t, svc, err := a.logos(ctx, args[0])
			if err != nil {
				return err
			}
			list, err := svc.ListLogos(ctx, t.ID)
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(list))
			for _, l := range list {
				rows = append(rows, []string{string(l.Kind), l.ContentType, tenancy.FormatBytes(l.Size), dimensions(l), timestamp(l.CreatedAt)})
			}
			table(a.Out, []string{"TYPE", "CONTENT_TYPE", "SIZE", "DIMENSIONS", "UPDATED"}, rows)
			return nil
		},
	}
}

func (a *app) logoRemoveCommand() *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "remove SLUG|ID --type TYPE",
		Short: "Remove a tenant's logo of one type",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if kind == "" {
				return usageError{"logo remove needs --type (main, icon, email, dark)"}
			}
			k, err := tenancy.ParseLogoKind(kind)
			if err != nil {
				return err
			}
			t, svc, err := a.logos(ctx, args[0])
			if err != nil {
				return err
			}
			l, err := svc.RemoveLogo(ctx, t.ID, k)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Logo removed: %s %s\n", t.Slug, l.Kind)
			return nil
		},
	}
	logoKindFlag(cmd, &kind, "")
	return cmd
}
