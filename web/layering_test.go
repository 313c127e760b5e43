package web_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
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
