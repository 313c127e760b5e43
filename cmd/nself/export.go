package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/archive"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

const exportHelp = `The archive is one gzip-compressed tar:
  tenant.json          the tenant's registry row and metadata
  schema.sql           CREATE TABLE statements for every table below
  restore.sql          a psql script: creates the tables and loads the CSVs
  db/SCHEMA.TABLE.csv  the tenant's rows of every table with a tenant_id column
  objects/KEY          every object in the tenant's bucket (logos)
  manifest.json        last: every file above with its size and SHA-256

To restore into an empty PostgreSQL database without nself:
  mkdir acme && tar -xzf acme.tar.gz -C acme && cd acme
  psql -v ON_ERROR_STOP=1 -d NEWDB -f restore.sql

Left out: sessions, refresh tokens, password links and API keys (credentials),
password hashes and invitation secrets.`

// exports opens the database and object storage and returns the export
// service.
func (a *app) exports(cmd *cobra.Command) (*postgres.ExportService, error) {
	db, err := a.database(cmd.Context())
	if err != nil {
		return nil, err
	}
	store, err := a.blobStore()
	if err != nil {
		return nil, err
	}
	svc := postgres.NewExportService(db, store, a.cfg.Strategy)
	svc.Domains = a.domainRules()
	return svc, nil
}

// spoolDir makes the server's private folder for building exports (the
// setting, or nself-spool-UID in the system's temporary directory) and
// clears it of export files an earlier process may have left. Exports
// remove their files' names as soon as they make them, so nothing should
// be there; the folder is private anyway, as those files hold tenants'
// data. One that is not a folder, is a link or is another user's is
// refused, so that nobody can point the server's files elsewhere.
func spoolDir(setting string) (string, error) {
	dir := setting
	if dir == "" {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("nself-spool-%d", os.Getuid()))
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("EXPORT_SPOOL_DIR: %w", err)
	}
	refuse := func(why string) error {
		return fmt.Errorf("invalid EXPORT_SPOOL_DIR %s: %s; the export folder must be a folder of this server's own", tenancy.Quote(dir), why)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", refuse(err.Error())
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", refuse(err.Error())
	}
	if !info.IsDir() {
		return "", refuse("it is not a folder")
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return "", refuse(fmt.Sprintf("it belongs to user %d, not to this server's user %d", st.Uid, os.Getuid()))
	}
	if info.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", refuse(err.Error())
		}
	}
	left, err := filepath.Glob(filepath.Join(dir, archive.SpoolPattern))
	if err != nil {
		return "", refuse(err.Error())
	}
	for _, f := range left {
		if err := os.RemoveAll(f); err != nil {
			return "", refuse(err.Error())
		}
	}
	return dir, nil
}

func (a *app) tenantExportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export SLUG|ID --output FILE.tar.gz",
		Short: "Export a tenant's data, objects and settings into one archive",
		Long:  "Export a tenant's data, objects and settings into one archive.\n\n" + exportHelp,
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				return usageError{"tenant export needs --output FILE.tar.gz"}
			}
			svc, err := a.exports(cmd)
			if err != nil {
				return err
			}
			// Written next to the output and renamed into place when
			// complete, so a failed export never leaves a half-written file
			// there. Tables are spooled in the same directory.
			dir := filepath.Dir(output)
			svc.TempDir = dir
			tmp, err := os.CreateTemp(dir, "."+filepath.Base(output)+".*")
			if err != nil {
				// Named as the operator gave it, not as the file beside it.
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return fmt.Errorf("export: cannot write %s: %w", output, err)
			}
			defer os.Remove(tmp.Name())
			bar := a.progressBar()
			m, err := svc.Export(cmd.Context(), args[0], tmp, bar.update)
			bar.done()
			if err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			if err := os.Rename(tmp.Name(), output); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			info, err := os.Stat(output)
			if err != nil {
				return err
			}
			var rows int64
			for _, t := range m.Tables {
				rows += t.Rows
			}
			fmt.Fprintf(a.Out, "✓ Tenant exported: %s → %s (%s)\n", m.TenantSlug, output, tenancy.FormatBytes(info.Size()))
			fmt.Fprintf(a.Out, "  Tables: %d (%d rows)\n", len(m.Tables), rows)
			fmt.Fprintf(a.Out, "  Objects: %d\n", len(m.Objects))
			fmt.Fprintf(a.Out, "  Files: %d, listed with sizes and SHA-256 in manifest.json\n", len(m.Files))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "the archive to write")
	return cmd
}

func (a *app) tenantImportCommand() *cobra.Command {
	var in tenancy.ImportOptions
	var verifyOnly bool
	cmd := &cobra.Command{
		Use:   "import FILE [--slug NEW]",
		Short: "Restore an export into a new tenant",
		Long: `Restore an export into a new tenant, after checking every file of the archive
against its manifest; a damaged or altered archive is refused and nothing is
written. Only the tables an export of the new tenant would hold are accepted
(its own data tables are named app.*; another tenant's schema is refused). The
new tenant has a new id; its rows keep their other ids (users keep theirs: a
person has one id across tenants, so a user whose id is another tenant's
account under another email is refused). Custom domains come in as pending and
must be verified again; a domain another tenant holds is left out. Users have
no password until they set one with a reset link, whatever the archive holds;
pending invitations are revoked. The audit log, usage and payments are left
out with a note: the new tenant's audit log starts with the import. Rows and
objects pass the checks the CLI and the portal apply (domain rules, settings,
themes, email templates, logo uploads and their keys); one refused row refuses
the archive before anything is written. The plan is free, or --plan's, never
the archive's.

` + exportHelp,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			defer f.Close()
			if verifyOnly {
				m, err := archive.VerifyManifest(f)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.Out, "✓ Archive verified: %s, tenant %s, %d files match the manifest\n", args[0], m.TenantSlug, len(m.Files))
				return nil
			}
			svc, err := a.exports(cmd)
			if err != nil {
				return err
			}
			res, err := svc.Import(cmd.Context(), f, in)
			if err != nil {
				return err
			}
			t := res.Tenant
			var rows int64
			names := make([]string, 0, len(res.Rows))
			for name, n := range res.Rows {
				rows += n
				names = append(names, name)
			}
			sort.Strings(names)
			fmt.Fprintf(a.Out, "✓ Tenant imported: %s (ID: %s)\n", t.Slug, t.ID)
			fmt.Fprintf(a.Out, "  Rows: %d in %d tables\n", rows, len(res.Rows))
			fmt.Fprintf(a.Out, "  Objects: %d\n", res.Objects)
			if t.SchemaName != "" {
				fmt.Fprintf(a.Out, "  Schema: %s\n", t.SchemaName)
			}
			url := a.cfg.TenantURL(t.Slug)
			fmt.Fprintf(a.Out, "  URL: %s\n", url)
			if res.PasswordToken != "" {
				fmt.Fprintf(a.Out, "  Set-password link for the owner (single use, expires in %s): %s\n",
					hours(tenancy.SetPasswordTokenTTL), passwordLink(url, res.PasswordToken))
			}
			for _, n := range res.Notes {
				fmt.Fprintf(a.Out, "  Note: %s\n", n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&in.Slug, "slug", "", "the new tenant's slug (the archive's when empty)")
	cmd.Flags().StringVar(&in.Name, "name", "", "the new tenant's name (the archive's when empty)")
	cmd.Flags().StringVar(&in.Plan, "plan", "", "the new tenant's plan ("+tenancy.DefaultPlan+" when empty; never the archive's)")
	cmd.Flags().BoolVar(&verifyOnly, "verify", false, "only check the archive against its manifest; write nothing")
	return cmd
}

// update shows an export's progress.
func (b *progress) update(p tenancy.ExportProgress) {
	b.show(func() string {
		return bar(p.RowsDone+int64(p.ObjectsDone), p.Rows+int64(p.Objects)) +
			fmt.Sprintf("  rows %d/%d  objects %d/%d  %s ", p.RowsDone, p.Rows, p.ObjectsDone, p.Objects, tenancy.FormatBytes(p.Bytes))
	})
}
