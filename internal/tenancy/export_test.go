package tenancy

import (
	"strings"
	"testing"
)

func TestCheckArchivePath(t *testing.T) {
	for _, ok := range []string{"manifest.json", "db/auth.users.csv", "objects/logos/main/ab12.png", "objects/a b/ü.png"} {
		if err := CheckArchivePath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, c := range []struct{ path, why string }{
		{"", "no usable name"},
		{strings.Repeat("a", 1025), "no usable name"},
		{"/etc/passwd", "absolute path"},
		{"../x", "leaves its directory"},
		{"objects/../../x", "not a clean path"},
		{"objects/./x", "not a clean path"},
		{"objects//x", "not a clean path"},
		{"objects/x/", "not a clean path"},
		{"..", "leaves its directory"},
		{"objects\\..\\x", "backslash"},
		{"objects/x\x00.png", "NUL"},
		{"objects/\xff.png", "not valid UTF-8"},
	} {
		err := CheckArchivePath(c.path)
		if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%q: %v, want %q", c.path, err, c.why)
		}
	}
}
