package web

import (
	"strings"
	"testing"
)

// The preview store stays bounded, per tenant and in all, and one tenant's
// flood does not push out another tenant's drafts.
func TestDraftStoreBounds(t *testing.T) {
	d := newDraftStore()
	keep := d.put("tenant-b", "<p>b</p>")
	var last string
	for i := 0; i < 10*maxTenantDrafts; i++ {
		last = d.put("tenant-a", "<p>a</p>")
	}
	if d.byTenant["tenant-a"] != maxTenantDrafts || len(d.drafts) != maxTenantDrafts+1 || len(d.order) != len(d.drafts) {
		t.Fatalf("tenant-a holds %d drafts, %d in all (queue %d)", d.byTenant["tenant-a"], len(d.drafts), len(d.order))
	}
	if html, ok := d.get("tenant-b", keep); !ok || html != "<p>b</p>" {
		t.Error("tenant-a's flood pushed out tenant-b's draft")
	}
	if _, ok := d.get("tenant-b", last); ok {
		t.Error("tenant-b read tenant-a's draft")
	}
	// The byte bound holds too.
	big := strings.Repeat("x", maxDraftBytes/3)
	for i := 0; i < 5; i++ {
		d.put("tenant-"+string(rune('c'+i)), big)
	}
	if d.size > maxDraftBytes {
		t.Errorf("store holds %d bytes, more than %d", d.size, maxDraftBytes)
	}
}
