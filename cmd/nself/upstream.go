package main

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/config"
	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/internal/upstreamjwt"
	"github.com/nself/nself/web"
)

// upstream is the gateway's configuration: the application at flag (from
// --upstream) or UPSTREAM_URL, none when both are empty.
func (a *app) upstream(flag string) (web.Upstream, error) {
	raw := string(a.cfg.Upstream.URL)
	if flag != "" {
		var v config.HTTPURL
		if err := v.UnmarshalText([]byte(flag)); err != nil {
			return web.Upstream{}, usageError{fmt.Sprintf("--upstream %q: %v", flag, err)}
		}
		raw = flag
	}
	if raw == "" {
		return web.Upstream{}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return web.Upstream{}, err
	}
	if err := tenancy.ValidateUpstreamURL(u); err != nil {
		return web.Upstream{}, err
	}
	c := a.cfg.Upstream
	up := web.Upstream{
		URL: u, Paths: c.Paths, AnonymousRole: c.AnonymousRole,
		ConnectTimeout:  time.Duration(c.ConnectTimeout),
		ResponseTimeout: time.Duration(c.ResponseTimeout),
		StreamTimeout:   time.Duration(c.StreamTimeout),
	}
	if c.Auth == "jwt" {
		signer, err := a.upstreamSigner()
		if err != nil {
			return web.Upstream{}, err
		}
		up.Signer = signer
	}
	return up, nil
}

// upstreamSigner is the signer of UPSTREAM_JWT_SECRET or
// UPSTREAM_JWT_KEY_FILE.
func (a *app) upstreamSigner() (*upstreamjwt.Signer, error) {
	c := a.cfg.Upstream
	ttl := time.Duration(c.JWTTTL)
	switch {
	case c.JWTSecret != "":
		return upstreamjwt.NewHS256([]byte(c.JWTSecret), ttl)
	case c.JWTKeyFile != "":
		s, err := upstreamjwt.LoadKeyFile(c.JWTKeyFile, ttl)
		if err != nil {
			return nil, fmt.Errorf("UPSTREAM_JWT_KEY_FILE: %w", err)
		}
		return s, nil
	}
	return nil, errors.New("no signing key: set UPSTREAM_JWT_SECRET (HS256) or UPSTREAM_JWT_KEY_FILE (an RSA or Ed25519 private key)")
}

func (a *app) upstreamCommand() *cobra.Command {
	return group("upstream", "The application served behind the gateway",
		&cobra.Command{
			Use:   "hasura-jwt-secret",
			Short: "Print the HASURA_GRAPHQL_JWT_SECRET that accepts the gateway's tokens",
			Args:  args(0, 0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, err := a.upstreamSigner()
				if err != nil {
					return err
				}
				v, err := s.HasuraJWTSecret()
				if err != nil {
					return err
				}
				fmt.Fprintln(a.Out, v)
				return nil
			},
		})
}
