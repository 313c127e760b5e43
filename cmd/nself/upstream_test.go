package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/tenancy"
)

// TestServeGatewayTwoProcesses runs two `nself serve --upstream` processes
// on one database in front of an application that checks the gateway's
// JWT with the HASURA_GRAPHQL_JWT_SECRET that `nself upstream
// hasura-jwt-secret` prints. A key revoked by a third process (the CLI)
// stops working in both servers.
func TestServeGatewayTwoProcesses(t *testing.T) {
	t.Parallel()
	secret := "gateway-test-jwt-secret-0123456789abcdef"
	var mu sync.Mutex
	var tenants []string
	var verifyKey []byte
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims := jwt.MapClaims{}
		mu.Lock()
		key := verifyKey
		mu.Unlock()
		_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("nself"), jwt.WithExpirationRequired())
		if err != nil || r.Header.Get("X-Hasura-Role") != "" {
			http.Error(w, "refused: "+err.Error(), http.StatusUnauthorized)
			return
		}
		h := claims[tenancy.HasuraClaimsNamespace].(map[string]any)
		mu.Lock()
		tenants = append(tenants, h["x-hasura-tenant-id"].(string))
		mu.Unlock()
		w.Write([]byte(`{"data":{}}`))
	}))
	defer app.Close()

	c := newCLI(t, pgtest.NewURLs(t), "SESSION_SECRET=serve-test-secret-0123456789abcdef",
		"UPSTREAM_AUTH=jwt", "UPSTREAM_JWT_SECRET="+secret, "UPSTREAM_PATHS=/api/,/graphql")
	var hasura struct{ Type, Key, Issuer string }
	if err := json.Unmarshal([]byte(c.ok("upstream", "hasura-jwt-secret")), &hasura); err != nil || hasura.Type != "HS256" || hasura.Key != secret || hasura.Issuer != "nself" {
		t.Fatalf("HASURA_GRAPHQL_JWT_SECRET: %+v %v", hasura, err)
	}
	mu.Lock()
	verifyKey = []byte(hasura.Key)
	mu.Unlock()
	c.ok("tenant", "create", "Acme Corporation", "--slug", "acme")
	out := c.ok("apikey", "create", "acme", "CI")
	key := regexp.MustCompile(`Key: (\S+)`).FindStringSubmatch(out)[1]
	prefix := regexp.MustCompile(`prefix (\S+)\)`).FindStringSubmatch(out)[1]

	call := func(addr, path, key string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(`{"query":"{ users { id } }"}`))
		req.Host = "acme.example.test"
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hasura-Role", "admin")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	a, _ := startServer(t, c, "--upstream", app.URL)
	b, _ := startServer(t, c, "--upstream", app.URL)
	for _, addr := range []string{a, b} {
		for _, path := range []string{"/api/users", "/graphql"} {
			if code := call(addr, path, key); code != 200 {
				t.Fatalf("%s%s: %d", addr, path, code)
			}
		}
		if code := call(addr, "/api/users", ""); code != 401 {
			t.Errorf("no credential: %d", code)
		}
	}
	mu.Lock()
	if len(tenants) != 4 {
		t.Errorf("the application served %d requests, want 4", len(tenants))
	}
	mu.Unlock()
	// The notice reaches the servers within moments of the commit: a
	// request racing it may still pass, none after it.
	c.ok("apikey", "revoke", "acme", prefix)
	for _, addr := range []string{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for call(addr, "/api/users", key) != 401 {
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts a revoked key", addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	if r := c.run("", "serve", "--upstream", "hasura:8080"); r.code != 2 || !strings.Contains(r.err, "--upstream") {
		t.Errorf("a bad --upstream: exit %d, %q", r.code, r.err)
	}
}
