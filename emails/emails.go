// Package emails holds the default email templates, embedded in the binary.
// Each template is a pair of files, NAME.html and NAME.txt, whose first line
// is "Subject: …". They use the variables of tenancy.TemplateVariables.
package emails

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed *.html *.txt
var files embed.FS

// Template is an email's subject and bodies, before variables are filled.
type Template struct {
	Subject string
	HTML    string
	Text    string
}

// Default returns the default template called name.
func Default(name string) (*Template, error) {
	html, err := files.ReadFile(name + ".html")
	if err != nil {
		return nil, fmt.Errorf("email template %q: %w", name, err)
	}
	text, err := files.ReadFile(name + ".txt")
	if err != nil {
		return nil, fmt.Errorf("email template %q: %w", name, err)
	}
	subject, body, ok := strings.Cut(string(text), "\n")
	subject, found := strings.CutPrefix(subject, "Subject: ")
	if !ok || !found {
		return nil, fmt.Errorf("email template %q: %s.txt must start with a Subject: line", name, name)
	}
	return &Template{Subject: subject, HTML: string(html), Text: strings.TrimLeft(body, "\n")}, nil
}
