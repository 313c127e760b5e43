package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/dnsverify"
	"github.com/nself/nself/internal/domainname"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

func (a *app) tenantDomainCommand() *cobra.Command {
	return group("domain", "Manage a tenant's custom domains",
		a.domainAddCommand(),
		a.domainVerifyCommand(),
		a.domainListCommand(),
		a.domainPrimaryCommand(),
		a.domainRemoveCommand(),
	)
}

// domainRules are the rules new domain names are checked against.
func (a *app) domainRules() tenancy.DomainRules {
	return tenancy.DomainRules{BaseDomain: string(a.cfg.BaseDomain), ToASCII: domainname.ToASCII, Disabled: !a.cfg.CustomDomainsEnabled}
}

// domains finds the tenant an argument names and returns it with the
// domain service.
func (a *app) domains(ctx context.Context, ref string) (*postgres.DomainService, *tenancy.Tenant, error) {
	t, err := a.tenantArg(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	return a.svc.DomainAdmin, t, nil
}

// displayName is a domain as people write it: the ASCII form, followed by
// the Unicode one for an internationalized name.
func displayName(name string) string {
	if u := domainname.ToUnicode(name); u != name {
		return fmt.Sprintf("%s (%s)", name, u)
	}
	return name
}

func (a *app) domainAddCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "add SLUG DOMAIN",
		Short: "Add a custom domain to a tenant; it serves once verified",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, t, err := a.domains(ctx, args[0])
			if err != nil {
				return err
			}
			d, err := svc.AddDomain(ctx, t.ID, args[1])
			if err != nil {
				return err
			}
			w := a.Out
			fmt.Fprintf(w, "✓ Domain added: %s\n", displayName(d.Name))
			fmt.Fprintf(w, "  Verification token: %s\n", d.Token)
			fmt.Fprintf(w, "  Add this TXT record to your DNS:\n")
			fmt.Fprintf(w, "    %s\n", d.RecordValue())
			fmt.Fprintf(w, "  Record: %s TXT %q\n", d.RecordName(), d.RecordValue())
			fmt.Fprintf(w, "  The same value in a TXT record on %s itself works too.\n", d.Name)
			fmt.Fprintf(w, "  Then run: nself tenant domain verify %s %s\n", t.Slug, d.Name)
			return nil
		},
	}
}

func (a *app) domainVerifyCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "verify SLUG DOMAIN",
		Short: "Look up a domain's verification TXT record and record what was found",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if timeout <= 0 {
				return usageError{fmt.Sprintf("--timeout %s must be positive", timeout)}
			}
			svc, t, err := a.domains(ctx, args[0])
			if err != nil {
				return err
			}
			v := &dnsverify.Verifier{Resolver: string(a.cfg.DNSResolver), Timeout: timeout}
			d, res, err := svc.VerifyDomain(ctx, t.ID, args[1], v)
			if err != nil {
				return err
			}
			if !res.Verified() {
				switch {
				case d.State == tenancy.DomainFailed:
					return fmt.Errorf("domain %s has lost its verification: %s", d.Name, d.Failure)
				case d.Verified():
					return fmt.Errorf("domain %s stays verified for now, but %s", d.Name, d.Failure)
				}
				return fmt.Errorf("domain %s is not verified: %s", d.Name, d.Failure)
			}
			fmt.Fprintf(a.Out, "✓ Domain verified: %s\n", displayName(d.Name))
			fmt.Fprintf(a.Out, "  %s\n", a.certificateLine(d))
			fmt.Fprintf(a.Out, "  Record found at: %s\n", res.FoundAt())
			fmt.Fprintf(a.Out, "  State: %s\n", d.State)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", dnsverify.DefaultTimeout, "how long to wait for DNS answers")
	return cmd
}

// certificateLine says how a verified domain gets its certificate: over
// ACME when nself serves TLS (TLS_ADDR), from the proxy that terminates TLS
// otherwise.
func (a *app) certificateLine(d *tenancy.Domain) string {
	switch {
	case a.cfg.TLSAddr == "":
		return fmt.Sprintf("TLS is terminated elsewhere (TLS_ADDR is not set): the proxy in front of nself needs a certificate for %s", d.Name)
	case d.State == tenancy.DomainActive:
		return "SSL certificate issued via " + a.cfg.CertificateAuthority()
	}
	return "SSL certificate will be generated automatically via " + a.cfg.CertificateAuthority()
}

// domainJSON is the shape of a domain for scripts.
type domainJSON struct {
	Domain            string     `json:"domain"`
	TenantID          string     `json:"tenant_id"`
	Primary           bool       `json:"primary"`
	Verified          bool       `json:"verified"`
	State             string     `json:"state"`
	VerificationToken string     `json:"verification_token"`
	VerifiedAt        *time.Time `json:"verified_at"`
	CheckedAt         *time.Time `json:"checked_at"`
	LastSeenValidAt   *time.Time `json:"last_seen_valid_at"`
	Failure           string     `json:"failure,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
}

func (a *app) domainListCommand() *cobra.Command {
	var asJSON bool
	var state string
	cmd := &cobra.Command{
		Use:   "list SLUG",
		Short: "List a tenant's custom domains",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, t, err := a.domains(ctx, args[0])
			if err != nil {
				return err
			}
			list, _, err := svc.ListDomains(ctx, t.ID, tenancy.DomainFilter{State: tenancy.DomainState(state)})
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]domainJSON, 0, len(list))
				for _, d := range list {
					out = append(out, domainJSON{
						Domain: d.Name, TenantID: d.TenantID, Primary: d.Primary, Verified: d.Verified(),
						State: string(d.State), VerificationToken: d.Token, VerifiedAt: d.VerifiedAt,
						CheckedAt: d.CheckedAt, LastSeenValidAt: d.LastSeenValidAt, Failure: d.Failure,
						CreatedAt: d.CreatedAt,
					})
				}
				return writeJSON(a.Out, out)
			}
			rows := make([][]string, 0, len(list))
			for _, d := range list {
				verifiedAt := "never"
				if d.VerifiedAt != nil {
					verifiedAt = timestamp(*d.VerifiedAt)
				}
				rows = append(rows, []string{d.Name, fmt.Sprint(d.Primary), fmt.Sprint(d.Verified()),
					verifiedAt, date(d.CreatedAt), string(d.State)})
			}
			table(a.Out, []string{"DOMAIN", "PRIMARY", "VERIFIED", "VERIFIED_AT", "CREATED_AT", "STATE"}, rows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	cmd.Flags().StringVar(&state, "state", "", "only domains in this state: pending, verified, certificate_issuing, active, failed")
	return cmd
}

func (a *app) domainPrimaryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "primary SLUG DOMAIN",
		Short: "Make a verified domain the tenant's primary domain",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, t, err := a.domains(ctx, args[0])
			if err != nil {
				return err
			}
			d, err := svc.SetPrimaryDomain(ctx, t.ID, args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Primary domain: %s\n", displayName(d.Name))
			return nil
		},
	}
}

func (a *app) domainRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove SLUG DOMAIN",
		Short: "Remove a custom domain from a tenant; another tenant may then claim it",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, t, err := a.domains(ctx, args[0])
			if err != nil {
				return err
			}
			name := a.domainRules().Canonical(args[1])
			if err := svc.RemoveDomain(ctx, t.ID, name); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "✓ Domain removed: %s\n", displayName(name))
			return nil
		},
	}
}
