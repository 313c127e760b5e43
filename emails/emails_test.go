package emails_test

import (
	"testing"

	"github.com/nself/nself/emails"
	"github.com/nself/nself/internal/tenancy"
)

// Every email the platform sends has a default, and each default would be
// accepted as a tenant's own.
func TestDefaults(t *testing.T) {
	for _, name := range tenancy.EmailTemplateNames {
		d, err := emails.Default(name)
		if err != nil {
			t.Fatal(err)
		}
		err = tenancy.ValidateEmailTemplate(tenancy.EmailTemplate{Name: name, Subject: d.Subject, HTML: d.HTML, Text: d.Text})
		if err != nil || d.Text == "" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := emails.Default("nope"); err == nil {
		t.Error("unknown template found")
	}
}
