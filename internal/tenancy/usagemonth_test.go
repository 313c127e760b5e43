package tenancy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

// Usage is shown for the months from the tenant's first to now's.
func TestCheckUsageMonth(t *testing.T) {
	tn := &tenancy.Tenant{Slug: "acme", CreatedAt: time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)}
	now := time.Date(2027, 2, 10, 0, 0, 0, 0, time.UTC)
	for _, ok := range []time.Time{tn.CreatedAt, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)} {
		if err := tenancy.CheckUsageMonth(tn, ok, now); err != nil {
			t.Errorf("%s: %v", ok.Format("2006-01"), err)
		}
	}
	for month, want := range map[time.Time]string{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC):  "acme was created in December 2026: January 2026 has no usage",
		time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC): "November 2026 has no usage",
		time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC):  "March 2027 has not begun",
	} {
		if err := tenancy.CheckUsageMonth(tn, month, now); tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", month.Format("2006-01"), err, want)
		}
	}
}
