package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nself/nself/internal/config"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/services"
	"github.com/nself/nself/internal/tenancy"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed; one line on stderr says why
	exitUsage = 2 // the command was called wrongly
)

// Stdio is where a run reads and writes.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// app is what the commands of one run share: settings, and the database,
// opened on first use.
type app struct {
	Stdio
	environ []string
	cfg     *config.Config
	db      *postgres.DB
	// svc is the services built on db, on first use.
	svc *services.Services
}

// usageError marks a command called wrongly (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Run runs the nself command line args (args[0] is the program name) and
// returns the exit code.
func Run(ctx context.Context, args []string, stdio Stdio) int {
	a := &app{Stdio: stdio, environ: os.Environ()}
	defer a.close()
	root := a.rootCommand()
	root.SetArgs(args[1:])
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stdio.Err, "error: %s\n", errorLine(err))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return exitUsage
	}
	return exitError
}

func (a *app) rootCommand() *cobra.Command {
	var envFile string
	root := &cobra.Command{
		Use:           "nself",
		Short:         "Multi-tenant platform: tenants, users, and their isolation",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// .env is read when it is there; a file named on purpose must
			// be, or a mistyped path would run on other settings.
			if cmd.Flags().Changed("env-file") {
				if _, err := os.Stat(envFile); err != nil {
					var pe *os.PathError
					if errors.As(err, &pe) {
						err = pe.Err
					}
					return usageError{fmt.Sprintf("--env-file %s: %v", envFile, err)}
				}
			}
			cfg, err := config.Load(a.environ, envFile)
			if err != nil {
				return err
			}
			a.cfg = cfg
			// Every change a command makes is recorded as the operator's.
			cmd.SetContext(tenancy.WithAuditActor(cmd.Context(), tenancy.AuditActor{Kind: tenancy.ActorCLI, Name: a.osUser()}))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&envFile, "env-file", ".env", "read settings from this file (the environment wins)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Sprintf("%s; see %s --help", err, cmd.CommandPath())}
	})
	root.AddCommand(a.tenantCommand(), a.userCommand(), a.dbCommand(), a.serveCommand(), a.apikeyCommand(), a.adminCommand(), a.whitelabelCommand(), a.orgCommand(),
		a.planCommand(), a.billingCommand(), a.mailCommand(), a.upstreamCommand())
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// osUser names the operator running the command, for the audit log: the
// login name from the environment, else the account's.
func (a *app) osUser() string {
	for _, kv := range a.environ {
		for _, k := range []string{"USER=", "LOGNAME=", "USERNAME="} {
			if v, ok := strings.CutPrefix(kv, k); ok && v != "" {
				return v
			}
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// group returns a command that only holds subcommands; called alone or with
// an unknown subcommand it is a usage error.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Sprintf("unknown command %q for %q; see %s --help", args[0], cmd.CommandPath(), cmd.CommandPath())}
			}
			return usageError{fmt.Sprintf("%s needs a subcommand; see %s --help", cmd.CommandPath(), cmd.CommandPath())}
		},
	}
	c.AddCommand(subs...)
	return c
}

// args checks the number of positional arguments, naming them in the
// message (names is the usage text, such as "SLUG EMAIL").
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && (max < 0 || len(args) <= max) {
			return nil
		}
		want := fmt.Sprintf("%d", min)
		switch {
		case max < 0:
			want = fmt.Sprintf("at least %d", min)
		case max != min:
			want = fmt.Sprintf("%d to %d", min, max)
		}
		return usageError{fmt.Sprintf("%s takes %s argument(s), got %d; usage: %s", cmd.CommandPath(), want, len(args), cmd.UseLine())}
	}
}

// database opens the database on first use.
func (a *app) database(ctx context.Context) (*postgres.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	if err := a.cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, a.cfg.DatabaseURL, a.cfg.DatabaseAdminURL)
	if err != nil {
		return nil, err
	}
	db.SchemaPrefix = string(a.cfg.SchemaPrefix)
	db.SingleTenant = !a.cfg.MultiTenancyEnabled
	if err := db.UseTenantMigrationsDir(a.cfg.TenantMigrationsDir); err != nil {
		db.Close()
		return nil, err
	}
	a.db = db
	return db, nil
}

func (a *app) close() {
	if a.db != nil {
		a.db.Close()
	}
}

// interactive reports whether standard input is a terminal a person can
// answer a question on.
func (a *app) interactive() bool {
	f, ok := a.In.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// errorLine is err's message on one line. A mistyped command's
// suggestions, which cobra puts on lines of their own, become a question.
func errorLine(err error) string {
	msg, suggestions, ok := strings.Cut(err.Error(), "Did you mean this?")
	if !ok {
		return oneLine(msg)
	}
	return oneLine(msg) + "; did you mean " + strings.Join(strings.Fields(suggestions), " or ") + "?"
}

// askPassword reads a password twice from the terminal without echo.
func (a *app) askPassword() (string, error) {
	fd := int(a.In.(*os.File).Fd())
	fmt.Fprint(a.Err, "Password: ")
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(a.Err)
	if err != nil {
		return "", err
	}
	fmt.Fprint(a.Err, "Repeat password: ")
	again, err := term.ReadPassword(fd)
	fmt.Fprintln(a.Err)
	if err != nil {
		return "", err
	}
	if string(pw) != string(again) {
		return "", fmt.Errorf("the passwords do not match")
	}
	return string(pw), nil
}
