package tenancy

import (
	"context"
	"regexp"
	"strings"
)

// Email template variables. Templates write them as {{TENANT_NAME}}, or
// <<TENANT_NAME>> where braces would clash with other tooling.
var TemplateVariables = []string{"TENANT_NAME", "USER_NAME", "USER_EMAIL", "LOGO_URL", "PRIMARY_COLOR", "PRIMARY_TEXT_COLOR", "SUPPORT_URL", "ACTION_URL", "INVITER_NAME", "ROLE"}

var variableRE = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}|<<\s*([A-Za-z0-9_]+)\s*>>`)

// Where a variable may begin: "{{" always, "<<" only when a name follows
// at once, so that text such as "a << b" or "<<<" stays text.
var (
	openBraceRE = regexp.MustCompile(`\{\{`)
	openAngleRE = regexp.MustCompile(`<<[A-Za-z_]`)
)

// ExpandTemplate replaces the variables in text with their values, each
// passed through escape (html.EscapeString for HTML, nothing for plain
// text). A variable that is not one of TemplateVariables, or a malformed
// one, is an error naming it and its line.
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

// CheckTemplate reports the first unknown or malformed variable in text,
// with its line, as an error on the field "template".
func CheckTemplate(text string) error {
	return checkTemplateField("template", text)
}

func checkTemplateField(field, text string) error {
	for i, line := range strings.Split(text, "\n") {
		if msg, hint := checkTemplateLine(line); msg != "" {
			return FieldErrorf(EINVALID, field, "%s on line %d%s", msg, i+1, hint)
		}
	}
	return nil
}

// checkTemplateLine returns what is wrong with the first bad variable of
// line, or "", and a hint to follow the line number. Every opening must start a well-formed variable: a name
// between the braces, closed on the same line.
func checkTemplateLine(line string) (msg, hint string) {
	good := variableRE.FindAllStringSubmatchIndex(line, -1)
	covered := func(at int) bool {
		for _, g := range good {
			if at >= g[0] && at < g[1] {
				return true
			}
		}
		return false
	}
	bad := -1
	for _, re := range []*regexp.Regexp{openBraceRE, openAngleRE} {
		for _, m := range re.FindAllStringIndex(line, -1) {
			if !covered(m[0]) && (bad < 0 || m[0] < bad) {
				bad = m[0]
			}
		}
	}
	for _, g := range good {
		if bad >= 0 && g[0] > bad {
			break
		}
		name := variableName(line[g[0]:g[1]])
		if !knownVariable(name) {
			return "unknown variable " + name, " (known: " + strings.Join(TemplateVariables, ", ") + ")"
		}
	}
	if bad < 0 {
		return "", ""
	}
	rest := line[bad:]
	closer := "}}"
	if strings.HasPrefix(rest, "<<") {
		closer = ">>"
	}
	snippet := rest
	if !strings.Contains(rest[2:], closer) {
		return "unclosed variable " + Quote(snippet) + " (missing " + closer + ")", ""
	}
	return "malformed variable " + Quote(snippet), " (write a name such as " + rest[:2] + "TENANT_NAME" + closer + ")"
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
	// Template names the template it was made from, for logs.
	Template string
	// FromName is the sender's name shown beside SMTP_FROM's address: the
	// tenant's company name, so a member sees whom the mail is from.
	FromName string
}

// Mailer sends email.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}
