package tenancy

import (
	"context"
	"html"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// EmailTemplateNames are the emails the platform sends, each with a default
// template that a tenant may replace with its own.
var EmailTemplateNames = []string{"welcome", "invitation", "password_reset", "password_set", "payment_failed", "quota_warning"}

// Limits of a customized email template.
const (
	MaxEmailSubject = 200        // characters
	MaxEmailBody    = 256 * 1024 // bytes, for each of the HTML and text parts
)

// EmailTemplate is an email's subject and bodies before variables are
// filled: a tenant's own, or the platform's default when Customized is
// false.
type EmailTemplate struct {
	Name       string
	Subject    string
	HTML       string
	Text       string
	Customized bool
	// UpdatedAt is when the tenant last saved it; zero for a default.
	UpdatedAt time.Time
}

// EmailTemplateService keeps the tenants' customized email templates.
type EmailTemplateService interface {
	// Customize saves the tenant's own version of the template called
	// name, after CheckEmailTemplateEdit for actor and
	// ValidateEmailTemplate. An empty text derives the plain-text part
	// from html.
	Customize(ctx context.Context, tenantID, name, subject, html, text string, actor Actor) (*EmailTemplate, error)
	// Get returns the tenant's version, or the default.
	Get(ctx context.Context, tenantID, name string) (*EmailTemplate, error)
	// Reset goes back to the default, after CheckEmailTemplateEdit for
	// actor; false when there was nothing to undo.
	Reset(ctx context.Context, tenantID, name string, actor Actor) (bool, error)
	// List returns every template, in EmailTemplateNames order.
	List(ctx context.Context, tenantID string) ([]*EmailTemplate, error)
	// SendTest puts a test of the template, as saved, in the outbox for
	// the person asking (to, greeted as name), so it is composed and sent
	// as real mail is; EQUOTA when they sent themselves too many lately.
	SendTest(ctx context.Context, tenantID, name, to, userName string) error
}

// Test mails: at most TestMailLimit to one address in TestMailWindow.
const (
	TestMailLimit  = 10
	TestMailWindow = 10 * time.Minute
)

// TestMailVars are the recipient's values of a test mail: the person's
// own name and address, sample values for the rest.
func TestMailVars(to, userName string) map[string]string {
	if userName == "" {
		userName = to
	}
	v := SampleVariables("", "", "")
	for _, k := range []string{"TENANT_NAME", "LOGO_URL", "PRIMARY_COLOR", "PRIMARY_TEXT_COLOR", "SUPPORT_URL", LinkVariable} {
		delete(v, k) // the tenant's own, and the link, are added when composed
	}
	v["USER_NAME"], v["USER_EMAIL"] = userName, to
	return v
}

// CheckEmailTemplateName refuses a name that is not one of
// EmailTemplateNames.
func CheckEmailTemplateName(name string) error {
	for _, n := range EmailTemplateNames {
		if n == name {
			return nil
		}
	}
	return FieldErrorf(ENOTFOUND, "name", "no email template %s (known: %s)", Quote(name), strings.Join(EmailTemplateNames, ", "))
}

// ValidateEmailTemplate checks a template a tenant wants to save: a known
// name, a one-line subject of at most MaxEmailSubject characters, an HTML
// body of at most MaxEmailBody bytes, only known, well-formed variables
// in each part, and the link ({{ACTION_URL}}) only where it is safe (see
// checkEmailLinks). Every way of saving a template (the portal, the CLI,
// an import) goes through here. Errors name the field they are about.
func ValidateEmailTemplate(t EmailTemplate) error {
	if err := CheckEmailTemplateName(t.Name); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(t.Subject) == "":
		return FieldErrorf(EINVALID, "subject", "the subject is required")
	case strings.ContainsAny(t.Subject, "\r\n"):
		return FieldErrorf(EINVALID, "subject", "the subject must be one line")
	case !utf8.ValidString(t.Subject) || !utf8.ValidString(t.HTML) || !utf8.ValidString(t.Text):
		return Errorf(EINVALID, "the template is not valid UTF-8")
	case utf8.RuneCountInString(t.Subject) > MaxEmailSubject:
		return FieldErrorf(EINVALID, "subject", "the subject is longer than %d characters", MaxEmailSubject)
	case strings.TrimSpace(t.HTML) == "":
		return FieldErrorf(EINVALID, "html", "the HTML body is required")
	case len(t.HTML) > MaxEmailBody:
		return FieldErrorf(EINVALID, "html", "the HTML body is larger than %d KB", MaxEmailBody/1024)
	case len(t.Text) > MaxEmailBody:
		return FieldErrorf(EINVALID, "text", "the text body is larger than %d KB", MaxEmailBody/1024)
	}
	for _, part := range []struct{ field, text string }{{"subject", t.Subject}, {"html", t.HTML}, {"text", t.Text}} {
		if err := checkTemplateField(part.field, part.text); err != nil {
			return err
		}
	}
	return checkEmailLinks(t)
}

// RenderEmail fills a template's variables for one recipient: values are
// HTML-escaped in the HTML part and left as they are in the subject and
// the text part. Every mail the platform sends, and every preview of one,
// is made here.
func RenderEmail(t *EmailTemplate, to string, vars map[string]string) (Message, error) {
	msg := Message{To: to}
	var err error
	if msg.Subject, err = ExpandTemplate(t.Subject, vars, nil); err != nil {
		return msg, err
	}
	// A value must not turn the subject into more header lines.
	msg.Subject = strings.Join(strings.Fields(msg.Subject), " ")
	if msg.HTML, err = ExpandTemplate(t.HTML, vars, html.EscapeString); err != nil {
		return msg, err
	}
	text := t.Text
	if strings.TrimSpace(text) == "" {
		text = TextFromHTML(t.HTML)
	}
	if msg.Text, err = ExpandTemplate(text, vars, nil); err != nil {
		return msg, err
	}
	return msg, nil
}

// SampleVariables are stand-in values for previews and test sends.
func SampleVariables(tenantName, primaryColor, supportURL string) map[string]string {
	return map[string]string{
		"TENANT_NAME": tenantName, "USER_NAME": "Ann Example", "USER_EMAIL": "ann@example.com",
		"LOGO_URL": "", "PRIMARY_COLOR": primaryColor, "PRIMARY_TEXT_COLOR": OnColor(primaryColor), "SUPPORT_URL": supportURL,
		"ACTION_URL": supportURL + "/example-link", "INVITER_NAME": "Bob Example", "ROLE": string(RoleMember),
	}
}

var (
	invisibleRE   = regexp.MustCompile(`(?is)<(head|style|script|title)\b.*?</(head|style|script|title)\s*>|<!--.*?-->`)
	linkRE        = regexp.MustCompile(`(?is)<a\b[^>]*?\bhref\s*=\s*("([^"]*)"|'([^']*)')[^>]*>(.*?)</a\s*>`)
	breakRE       = regexp.MustCompile(`(?i)<br\s*/?>|</(p|div|tr|h[1-6]|li|table|blockquote)\s*>|<(p|div|tr|h[1-6]|li|table|blockquote)\b[^>]*>`)
	tagRE         = regexp.MustCompile(`(?s)<[^>]*>`)
	blankRE       = regexp.MustCompile(`\n{3,}`)
	placeholderRE = regexp.MustCompile("\x00[0-9]+\x00")
)

// TextFromHTML derives a plain-text body from an HTML template: the
// visible text, a line break where a block ends, and each link as its text
// followed by its address, so that a reader without HTML can still follow
// it. Variables pass through untouched.
func TextFromHTML(s string) string {
	// <<VAR>> looks like a tag: variables step aside while tags go.
	var vars []string
	index := map[string]int{}
	s = variableRE.ReplaceAllStringFunc(s, func(m string) string {
		i, ok := index[m]
		if !ok {
			i = len(vars)
			index[m] = i
			vars = append(vars, m)
		}
		return "\x00" + strconv.Itoa(i) + "\x00"
	})
	s = invisibleRE.ReplaceAllString(s, "")
	s = linkRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := linkRE.FindStringSubmatch(m)
		href := sub[2] + sub[3]
		label := strings.TrimSpace(tagRE.ReplaceAllString(sub[4], ""))
		if label == "" || label == href {
			return href
		}
		return label + ": " + href
	})
	s = breakRE.ReplaceAllString(s, "\n")
	s = tagRE.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	s = blankRE.ReplaceAllString(strings.Join(lines, "\n"), "\n\n")
	s = placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		i, _ := strconv.Atoi(strings.Trim(m, "\x00"))
		return vars[i]
	})
	return strings.TrimSpace(s) + "\n"
}
