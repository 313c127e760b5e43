package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/tenancy"
)

func (a *app) dbBackupCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "backup --output FILE.sql",
		Short: "Dump the whole database (schema and data) with pg_dump, as the backup role",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return usageError{"db backup needs --output FILE.sql"}
			}
			url := a.cfg.DatabaseBackupURL
			if url == "" {
				return fmt.Errorf("DATABASE_BACKUP_URL is not set: a backup reads every tenant's rows, so it needs a read-only role with BYPASSRLS (the owner is bound by row-level security)")
			}
			pgDump, err := exec.LookPath("pg_dump")
			if err != nil {
				return fmt.Errorf("pg_dump is not installed: install the PostgreSQL client (postgresql-client)")
			}
			// Written next to the output and renamed into place when complete,
			// so a failed dump never leaves a half-written file there.
			tmp, err := os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*")
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			defer os.Remove(tmp.Name())
			dump := exec.CommandContext(cmd.Context(), pgDump, "--no-owner", "--no-privileges", "--dbname", url)
			dump.Stdout = tmp
			var stderr limitedBuffer
			dump.Stderr = &stderr
			if err := dump.Run(); err != nil {
				tmp.Close()
				return fmt.Errorf("pg_dump failed: %s", oneLine(stderr.String()))
			}
			if err := tmp.Close(); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := os.Rename(tmp.Name(), output); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			info, err := os.Stat(output)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Backup written: %s (%s)\n", output, tenancy.FormatBytes(info.Size()))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "the file to write")
	return cmd
}

// limitedBuffer keeps the first 4 KiB written to it: enough of pg_dump's
// complaint for the error line.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
