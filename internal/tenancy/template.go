package tenancy

import (
	"context"
	"regexp"
	"strings"
)

// Email template variables. Templates write them as {{TENANT_NAME}}, or
// <<TENANT_NAME>> where braces would clash with other tooling.
var TemplateVariables = []string{"TENANT_NAME", "USER_NAME", "USER_EMAIL", "LOGO_URL", "PRIMARY_COLOR", "SUPPORT_URL", "ACTION_URL", "INVITER_NAME", "ROLE"}

var variableRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}|<<\s*([A-Za-z0-9_]+)\s*>>`)

// ExpandTemplate replaces the variables in text with their values, each
// passed through escape (html.EscapeString for HTML, nothing for plain
// text). A variable that is not one of TemplateVariables is an error naming
// it and its line.
func ExpandTemplate(text string, vars map[string]string, escape func(string) string) (string, error) {
	if err := CheckTemplate(text); err != nil {
		return "", err
	}
	if escape == nil {
		escape = func(s string) string { return s }
	}
	return variableRE.ReplaceAllStringFunc(text, func(m string) string {
		return escape(vars[variableName(m)])
	}), nil
}

// CheckTemplate reports the first unknown variable in text.
func CheckTemplate(text string) error {
	for i, line := range strings.Split(text, "\n") {
		for _, m := range variableRE.FindAllString(line, -1) {
			name := variableName(m)
			if !knownVariable(name) {
				return FieldErrorf(EINVALID, "template", "unknown variable %s on line %d (known: %s)", name, i+1, strings.Join(TemplateVariables, ", "))
			}
		}
	}
	return nil
}

func variableName(m string) string {
	sub := variableRE.FindStringSubmatch(m)
	if sub[1] != "" {
		return sub[1]
	}
	return sub[2]
}

func knownVariable(name string) bool {
	for _, v := range TemplateVariables {
		if v == name {
			return true
		}
	}
	return false
}

// Message is an email with an HTML part and a plain-text part.
type Message struct {
	To      string
	Subject string
	HTML    string
	Text    string
}

// Mailer sends email.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}
