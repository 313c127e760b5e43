package config_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/config"
)

func TestUpstreamDefaults(t *testing.T) {
	c, err := config.Load([]string{"UPSTREAM_URL=http://127.0.0.1:8081", "UPSTREAM_PATHS= /api/ , /graphql"}, "")
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upstream
	if u.URL != "http://127.0.0.1:8081" || !slices.Equal(u.Paths, []string{"/api/", "/graphql"}) || u.Auth != "headers" ||
		u.ConnectTimeout != config.Duration(5*time.Second) || u.ResponseTimeout != config.Duration(time.Minute) ||
		u.StreamTimeout != config.Duration(10*time.Minute) || u.JWTTTL != config.Duration(5*time.Minute) {
		t.Errorf("upstream = %+v", u)
	}
	c, _ = config.Load(nil, "")
	if !slices.Equal(c.Upstream.Paths, []string{"/api/"}) || c.Upstream.URL != "" {
		t.Errorf("default upstream = %+v", c.Upstream)
	}
}

func TestSessionSecretPrevious(t *testing.T) {
	old, cur := "SESSION_SECRET_PREVIOUS="+strings.Repeat("o", 32), "SESSION_SECRET="+strings.Repeat("n", 32)
	if c, err := config.Load([]string{old, cur}, ""); err != nil || c.SessionSecretPrevious != strings.Repeat("o", 32) {
		t.Errorf("rollover: %v", err)
	}
	for _, env := range [][]string{{old}, {cur, "SESSION_SECRET_PREVIOUS=short"}} {
		if _, err := config.Load(env, ""); err == nil || !strings.Contains(err.Error(), "invalid SESSION_SECRET_PREVIOUS") {
			t.Errorf("%v: %v", env, err)
		}
	}
}

func TestUpstreamRejectsBadValues(t *testing.T) {
	secret := "UPSTREAM_JWT_SECRET=" + strings.Repeat("s", 32)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"UPSTREAM_URL=hasura:8080"}, `invalid UPSTREAM_URL "hasura:8080": accepts an http or https URL`},
		{[]string{"UPSTREAM_PATHS=api"}, `invalid UPSTREAM_PATHS "api": accepts comma-separated path prefixes`},
		{[]string{"UPSTREAM_PATHS=/"}, `invalid UPSTREAM_PATHS "/"`},
		{[]string{"UPSTREAM_PATHS=/api/,/v1/graphql"}, `/v1/graphql overlaps /v1`},
		{[]string{"UPSTREAM_PATHS=/api/../v1/"}, `invalid UPSTREAM_PATHS`},
		{[]string{"UPSTREAM_PATHS=/st"}, `/st overlaps /static`},
		{[]string{"UPSTREAM_AUTH=cookie"}, `invalid UPSTREAM_AUTH "cookie": accepts headers`},
		{[]string{"UPSTREAM_AUTH=jwt"}, `UPSTREAM_AUTH=jwt needs UPSTREAM_JWT_SECRET (HS256) or UPSTREAM_JWT_KEY_FILE`},
		{[]string{"UPSTREAM_AUTH=jwt", "UPSTREAM_JWT_SECRET=short"}, `invalid UPSTREAM_JWT_SECRET: accepts a random value of at least 32 characters (got 5)`},
		{[]string{"UPSTREAM_AUTH=jwt", secret, "UPSTREAM_JWT_KEY_FILE=/k.pem"}, `not both`},
		{[]string{secret}, `need UPSTREAM_AUTH=jwt`},
		{[]string{"UPSTREAM_AUTH=jwt", secret, "UPSTREAM_JWT_TTL=1s"}, `invalid UPSTREAM_JWT_TTL "1s"`},
		{[]string{"UPSTREAM_ANONYMOUS_ROLE=owner"}, `invalid UPSTREAM_ANONYMOUS_ROLE "owner": names a member's role`},
		{[]string{"UPSTREAM_ANONYMOUS_ROLE=api_key"}, `invalid UPSTREAM_ANONYMOUS_ROLE "api_key"`},
		{[]string{"UPSTREAM_ANONYMOUS_ROLE=any one"}, `invalid UPSTREAM_ANONYMOUS_ROLE "any one": accepts a role name`},
		{[]string{"UPSTREAM_RESPONSE_TIMEOUT=soon"}, `invalid UPSTREAM_RESPONSE_TIMEOUT "soon": accepts a duration`},
	} {
		_, err := config.Load(tc.env, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.env, err, tc.want)
		}
	}
	if _, err := config.Load([]string{"UPSTREAM_AUTH=jwt", secret, "UPSTREAM_ANONYMOUS_ROLE=anonymous"}, ""); err != nil {
		t.Errorf("jwt with a secret: %v", err)
	}
}
