package tenancy_test

import (
	"html"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

func TestCheckTemplate(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       string // part of the error; "" for none
	}{
		{"braces", "Welcome to {{TENANT_NAME}}!", ""},
		{"spaces inside", "Hi {{ USER_NAME }}", ""},
		{"angle form", "Hi <<USER_NAME>> of << TENANT_NAME >>", ""},
		{"html around", `<a href="{{ACTION_URL}}" style="color:{{PRIMARY_COLOR}}">go</a>`, ""},
		{"shift operator is text", "a << 2, b <<= 1, <<< and }} and { {", ""},
		{"single braces are text", "{TENANT_NAME} {x}", ""},
		{"no variables", "", ""},
		{"unknown", "Hi {{FIRST_NAME}}", "unknown variable FIRST_NAME on line 1"},
		{"unknown angle", "ok\nHi <<COMPANY>>", "unknown variable COMPANY on line 2"},
		{"lower case", "{{tenant_name}}", "unknown variable tenant_name on line 1"},
		{"unclosed", "Welcome\n\nto {{TENANT_NAME", `unclosed variable "{{TENANT_NAME" (missing }}) on line 3`},
		{"unclosed angle", "x\n<<TENANT_NAME", "unclosed variable \"<<TENANT_NAME\" (missing >>) on line 2"},
		{"unclosed before a good one", "{{USER_NAME {{TENANT_NAME}}", "malformed variable"},
		{"empty", "a {{ }} b", `malformed variable "{{ }} b" on line 1 (write a name such as {{TENANT_NAME}})`},
		{"empty tight", "{{}}", "malformed variable"},
		{"punctuation", "{{TENANT-NAME}}", "malformed variable"},
		{"split over lines", "{{TENANT_NAME\n}}", "unclosed variable"},
		{"first error wins", "{{NOPE}} {{TENANT_NAME", "unknown variable NOPE on line 1"},
		{"triple braces", "{{{TENANT_NAME}}}", "malformed variable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tenancy.CheckTemplate(tc.text)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckTemplate(%q) = %v", tc.text, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("CheckTemplate(%q) = %v, want %q", tc.text, err, tc.want)
			case err != nil && tenancy.ErrorCode(err) != tenancy.EINVALID:
				t.Errorf("code = %s", tenancy.ErrorCode(err))
			}
		})
	}
}

func TestExpandTemplateEscapes(t *testing.T) {
	vars := map[string]string{"TENANT_NAME": `<b>"A&B"</b>`, "USER_NAME": "Ann"}
	got, err := tenancy.ExpandTemplate(`<p title="{{TENANT_NAME}}">Hi <<USER_NAME>>, {{ TENANT_NAME }}</p>`, vars, html.EscapeString)
	if err != nil {
		t.Fatal(err)
	}
	if want := `<p title="&lt;b&gt;&#34;A&amp;B&#34;&lt;/b&gt;">Hi Ann, &lt;b&gt;&#34;A&amp;B&#34;&lt;/b&gt;</p>`; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if _, err := tenancy.ExpandTemplate("{{NOPE}}", vars, nil); err == nil {
		t.Error("unknown variable expanded")
	}
}

func TestValidateEmailTemplate(t *testing.T) {
	ok := tenancy.EmailTemplate{Name: "welcome", Subject: "Welcome to {{TENANT_NAME}}!", HTML: "<p>Hi {{USER_NAME}}</p>", Text: "Hi {{USER_NAME}}"}
	if err := tenancy.ValidateEmailTemplate(ok); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*tenancy.EmailTemplate)
		field string
		want  string
	}{
		{"unknown name", func(e *tenancy.EmailTemplate) { e.Name = "newsletter" }, "name", "no email template"},
		{"empty subject", func(e *tenancy.EmailTemplate) { e.Subject = " " }, "subject", "required"},
		{"two-line subject", func(e *tenancy.EmailTemplate) { e.Subject = "a\r\nBcc: x@y.test" }, "subject", "one line"},
		{"long subject", func(e *tenancy.EmailTemplate) { e.Subject = strings.Repeat("é", 201) }, "subject", "200 characters"},
		{"subject of 200", func(e *tenancy.EmailTemplate) { e.Subject = strings.Repeat("é", 200) }, "", ""},
		{"subject variable", func(e *tenancy.EmailTemplate) { e.Subject = "Hi {{NAME}}" }, "subject", "unknown variable NAME on line 1"},
		{"empty html", func(e *tenancy.EmailTemplate) { e.HTML = "\n" }, "html", "required"},
		{"large html", func(e *tenancy.EmailTemplate) { e.HTML = strings.Repeat("x", 256*1024+1) }, "html", "256 KB"},
		{"html of 256 KB", func(e *tenancy.EmailTemplate) { e.HTML = strings.Repeat("x", 256*1024) }, "", ""},
		{"html variable", func(e *tenancy.EmailTemplate) { e.HTML = "<p>\n{{COMPANY}}</p>" }, "html", "unknown variable COMPANY on line 2"},
		{"html braces", func(e *tenancy.EmailTemplate) { e.HTML = "<p>{{TENANT_NAME</p>" }, "html", "unclosed variable"},
		{"text variable", func(e *tenancy.EmailTemplate) { e.Text = "<<X>>" }, "text", "unknown variable X"},
		{"large text", func(e *tenancy.EmailTemplate) { e.Text = strings.Repeat("x", 256*1024+1) }, "text", "256 KB"},
		{"bad utf-8", func(e *tenancy.EmailTemplate) { e.HTML = "\xff" }, "", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			tc.edit(&e)
			err := tenancy.ValidateEmailTemplate(e)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var te *tenancy.Error
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if errorAs(err, &te); te.Field != tc.field {
				t.Errorf("field = %q, want %q", te.Field, tc.field)
			}
		})
	}
}

func errorAs(err error, te **tenancy.Error) { *te, _ = err.(*tenancy.Error) }

func TestRenderEmail(t *testing.T) {
	tpl := &tenancy.EmailTemplate{
		Subject: "Welcome to {{TENANT_NAME}}!",
		HTML:    `<p>Hi <<USER_NAME>></p><a href="{{ACTION_URL}}">Start</a>`,
	}
	vars := map[string]string{"TENANT_NAME": "A&B\r\nBcc: x@evil.test", "USER_NAME": "<Ann>", "ACTION_URL": "https://a.test/x?a=1&b=2"}
	m, err := tenancy.RenderEmail(tpl, "ann@a.test", vars)
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "ann@a.test" || m.Subject != "Welcome to A&B Bcc: x@evil.test!" {
		t.Errorf("to/subject = %q, %q", m.To, m.Subject)
	}
	if m.HTML != `<p>Hi &lt;Ann&gt;</p><a href="https://a.test/x?a=1&amp;b=2">Start</a>` {
		t.Errorf("html = %s", m.HTML)
	}
	// No text part: derived from the HTML, values unescaped.
	if m.Text != "Hi <Ann>\nStart: https://a.test/x?a=1&b=2\n" {
		t.Errorf("text = %q", m.Text)
	}
}

func TestTextFromHTML(t *testing.T) {
	in := `<!DOCTYPE html><html><head><title>{{TENANT_NAME}}</title><style>p{color:red}</style></head>
<body><!-- note --><table><tr><td><strong>{{TENANT_NAME}}</strong></td></tr>
<tr><td><p>Hello {{USER_NAME}},</p>
<p>Your   account &amp; data<br>are ready.</p>
<p><a href="{{ACTION_URL}}" style="x">Sign <b>in</b></a> or <a href='{{SUPPORT_URL}}'>{{SUPPORT_URL}}</a></p>
<script>alert(1)</script></td></tr></table></body></html>`
	want := "{{TENANT_NAME}}\n\nHello {{USER_NAME}},\n\nYour account & data\nare ready.\n\nSign in: {{ACTION_URL}} or {{SUPPORT_URL}}\n"
	if got := tenancy.TextFromHTML(in); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
