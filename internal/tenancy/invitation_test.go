package tenancy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nself/nself/internal/tenancy"
)

func TestInvitationLimits(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	ago := func(ds ...time.Duration) []time.Time {
		var out []time.Time
		for _, d := range ds {
			out = append(out, now.Add(-d))
		}
		return out
	}
	l := tenancy.InvitationLimits{PerAddress: 3, AddressWindow: 24 * time.Hour, PerTenant: 4, TenantWindow: time.Hour}
	for _, tc := range []struct {
		name            string
		address, tenant []time.Time
		want            string // part of the message; "" when allowed
	}{
		{"first", nil, nil, ""},
		{"address below", ago(time.Hour, 2*time.Hour), ago(time.Minute), ""},
		{"address full", ago(time.Hour, 2*time.Hour, 3*time.Hour), nil,
			"bob@example.test has been sent 3 invitation emails in the last day, the most allowed: you can send another at 5 Mar 07:00 UTC (in 21 hours)"},
		{"address full, oldest left", ago(time.Hour, 2*time.Hour, 25*time.Hour), nil, ""},
		{"address full in any order", ago(3*time.Hour, time.Hour, 150*time.Second), nil, "at 5 Mar 07:00 UTC"},
		{"address over a lowered limit", ago(time.Hour, 2*time.Hour, 4*time.Hour, 5*time.Hour), nil, "at 5 Mar 06:00 UTC (in 20 hours)"},
		{"tenant below", nil, ago(time.Minute, 2*time.Minute, 61*time.Minute, 62*time.Minute, 3*time.Minute), ""},
		{"tenant full", nil, ago(90*time.Second, 2*time.Minute, 3*time.Minute, 30*time.Minute),
			"Your team has sent 4 invitation emails in the last hour, the most allowed: you can send more at 10:30 UTC (in 30 minutes)"},
		{"rounded up to the minute", nil, ago(10*time.Second, 20*time.Second, 30*time.Second, 59*time.Minute+30*time.Second), "at 10:01 UTC (in 1 minute)"},
		{"hours and minutes", ago(time.Minute, 2*time.Minute, 22*time.Hour+30*time.Minute), nil, "(in 1 hour 30 minutes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.CheckMail(now, "bob@example.test", tc.address, tc.tenant)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var te *tenancy.Error
			if errorAs(err, &te); te == nil || te.Code != tenancy.EQUOTA || te.Field != "email" || !strings.Contains(te.Message, tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if d := tenancy.DefaultInvitationLimits; d.PerAddress != 5 || d.AddressWindow != 24*time.Hour || d.PerTenant != 100 || d.TenantWindow != time.Hour || d.Longest() != 24*time.Hour {
		t.Errorf("defaults %+v: the README says otherwise", d)
	}
}
