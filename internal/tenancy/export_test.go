package tenancy

import (
	"strings"
	"testing"
	"time"
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

func TestOrphans(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	cutoff := now.Add(-time.Hour)
	objects := []ObjectInfo{
		{Key: "logos/main/old-with-row.png", Modified: now.Add(-48 * time.Hour)},
		{Key: "logos/main/old-orphan.png", Modified: now.Add(-2 * time.Hour)},
		{Key: "logos/main/young-orphan.png", Modified: now.Add(-time.Minute)},
		{Key: "logos/main/at-cutoff.png", Modified: cutoff},
		{Key: "logos/icon/young-with-row.png", Modified: now},
	}
	referenced := map[string]bool{"logos/main/old-with-row.png": true, "logos/icon/young-with-row.png": true}
	got := Orphans(objects, referenced, cutoff)
	if len(got) != 1 || got[0].Key != "logos/main/old-orphan.png" {
		t.Errorf("orphans = %+v", got)
	}
}

func TestCheckExportRoom(t *testing.T) {
	for _, c := range []struct {
		maxGB, used int64
		refused     bool
	}{
		{Unlimited, 5e12, false},
		{1, 0, false},
		{1, 999_999_999, false},
		{1, 1e9, true},
		{1, 3e9, true},
		{0, 0, true},
	} {
		err := CheckExportRoom("free", c.maxGB, c.used)
		if (err != nil) != c.refused {
			t.Errorf("limit %d GB, %d bytes stored: %v", c.maxGB, c.used, err)
		}
		if err != nil && (ErrorCode(err) != EQUOTA || !strings.Contains(ErrorMessage(err), "export archive would not fit")) {
			t.Errorf("limit %d GB, %d bytes stored: %v", c.maxGB, c.used, err)
		}
	}
}
