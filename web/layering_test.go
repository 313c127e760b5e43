package web_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The web server obtains certificates through interfaces: ACME lives in
// internal/certs, so that no handler, middleware or test double of the
// server depends on how certificates are ordered.
func TestWebImportsNoACME(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "golang.org/x/crypto/acme") {
				t.Errorf("%s imports %s: ACME belongs in internal/certs", name, path)
			}
		}
	}
}

const module = "github.com/nself/nself"

// moduleImports reads the imports of every package of the module, by
// import path; tests counts the imports of test files too.
func moduleImports(t *testing.T, tests bool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != ".." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || (!tests && strings.HasSuffix(p, "_test.go")) {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel("..", filepath.Dir(p))
		if err != nil {
			return err
		}
		pkg := path.Join(module, filepath.ToSlash(rel))
		if rel == "." {
			pkg = module
		}
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(out[pkg], ip) {
				out[pkg] = append(out[pkg], ip)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Stripe is reached through tenancy.Billing: only internal/billing (and
// its test helpers) speaks stripe-go, so the portal, the console, the CLI
// and their tests depend on the domain's types, not on the client library.
func TestOnlyBillingImportsStripe(t *testing.T) {
	imports := moduleImports(t, true)
	if len(imports) < 10 {
		t.Fatalf("found only %d packages: the walk missed the module", len(imports))
	}
	for pkg, imps := range imports {
		if pkg == module+"/internal/billing" || strings.HasPrefix(pkg, module+"/internal/billing/") {
			continue
		}
		for _, ip := range imps {
			if strings.HasPrefix(ip, "github.com/stripe/stripe-go") {
				t.Errorf("%s imports %s: stripe-go belongs in internal/billing", pkg, ip)
			}
		}
	}
}

// The server, the views and the domain do not depend on internal/billing
// at all, even through another package: they hold a tenancy.Billing, and
// cmd/nself wires the Stripe one in.
func TestWebDependsOnNoBillingTechnology(t *testing.T) {
	imports := moduleImports(t, false)
	for _, root := range []string{module + "/web", module + "/views", module + "/internal/tenancy"} {
		seen := map[string]bool{}
		var walk func(pkg string, via []string)
		walk = func(pkg string, via []string) {
			if seen[pkg] {
				return
			}
			seen[pkg] = true
			for _, ip := range imports[pkg] {
				if ip == module+"/internal/billing" || strings.HasPrefix(ip, "github.com/stripe/stripe-go") {
					t.Errorf("%s depends on %s through %s", root, ip, strings.Join(append(via, pkg), " → "))
				}
				if strings.HasPrefix(ip, module+"/") {
					walk(ip, append(via, pkg))
				}
			}
		}
		walk(root, nil)
	}
	if _, err := os.Stat("../internal/billing/billing.go"); err != nil {
		t.Fatalf("the walk starts from the wrong place: %v", err)
	}
}
