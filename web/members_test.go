package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/nself/nself/internal/tenancy"
)

// signedIn returns a client on the tenant's host signed in as a new member
// with role.
func (e *testEnv) signedIn(t *tenancy.Tenant, email string, role tenancy.Role) *client {
	e.t.Helper()
	e.mustMember(t, email, role)
	c := e.client(t.Slug + ".nself.test")
	c.signIn(email, passwordOf(email))
	return c
}

func rowTexts(t *testing.T, body, id string) []string {
	t.Helper()
	var out []string
	for _, n := range byTestID(doc(t, body), id) {
		out = append(out, strings.Join(strings.Fields(text(n)), " "))
	}
	return out
}

// rowOf returns the member row of email.
func rowOf(t *testing.T, body, email string) string {
	t.Helper()
	for _, r := range rowTexts(t, body, "member-row") {
		if strings.HasPrefix(r, email+" ") {
			return r
		}
	}
	return ""
}

func TestMembersListSearchAndPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	for i := range 24 {
		e.mustMember(acme, fmt.Sprintf("m%02d@acme.test", i), tenancy.RoleMember)
	}
	resp, body := owner.get("/members")
	if resp.StatusCode != 200 {
		t.Fatalf("members: %d", resp.StatusCode)
	}
	if n := len(byTestID(doc(t, body), "member-row")); n != 20 {
		t.Errorf("first page has %d rows, want 20", n)
	}
	if got := textOf(t, body, "member-total"); got != "25 members" {
		t.Errorf("total = %q", got)
	}
	if len(byTestID(doc(t, body), "nav-members")) != 1 {
		t.Error("owner menu lacks Members")
	}
	next := byTestID(doc(t, body), "page-next")
	if len(next) != 1 {
		t.Fatal("no next page link")
	}
	_, body = owner.get(attr(next[0], "href"))
	if n := len(byTestID(doc(t, body), "member-row")); n != 5 {
		t.Errorf("second page has %d rows, want 5", n)
	}
	_, body = owner.get("/members?q=" + url.QueryEscape("M07@"))
	if rows := rowTexts(t, body, "member-email"); len(rows) != 1 || rows[0] != "m07@acme.test" {
		t.Errorf("search: %v", rows)
	}
	_, body = owner.get("/members?q=" + url.QueryEscape("name of owner"))
	if rows := rowTexts(t, body, "member-email"); len(rows) != 1 || rows[0] != "owner@acme.test" {
		t.Errorf("search by name: %v", rows)
	}
}

func TestMembersAdminChangesRolesWithinTheRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	own := e.mustMember(acme, "owner@acme.test", tenancy.RoleOwner)
	mem := e.mustMember(acme, "member@acme.test", tenancy.RoleMember)
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)

	_, body := admin.get("/members")
	if !strings.Contains(rowOf(t, body, "member@acme.test"), "member") {
		t.Fatalf("member row: %q", rowOf(t, body, "member@acme.test"))
	}
	// The admin may not give the owner role, nor touch the owner.
	for _, sel := range byTestID(doc(t, body), "member-role-select") {
		if strings.Contains(text(sel), "owner") {
			t.Errorf("admin is offered the owner role: %q", text(sel))
		}
	}
	if strings.Contains(rowOf(t, body, "owner@acme.test"), "Change role") {
		t.Error("admin is offered to change the owner")
	}

	resp, _ := admin.post("/members/"+mem.ID+"/role", url.Values{"role": {"guest"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("change role: %d", resp.StatusCode)
	}
	_, body = admin.get("/members")
	if !strings.Contains(rowOf(t, body, "member@acme.test"), "guest") || !strings.Contains(textOf(t, body, "flash"), "now guest") {
		t.Errorf("after change: %q, flash %q", rowOf(t, body, "member@acme.test"), textOf(t, body, "flash"))
	}

	resp, body = admin.post("/members/"+own.ID+"/role", url.Values{"role": {"member"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(textOf(t, body, "member-error"), "only an owner") {
		t.Errorf("admin demotes the owner: %d %q", resp.StatusCode, textOf(t, body, "member-error"))
	}
	resp, _ = admin.post("/members/"+own.ID+"/remove", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin removes the owner: %d", resp.StatusCode)
	}
	resp, _ = admin.post("/members/"+mem.ID+"/role", url.Values{"role": {"owner"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin makes an owner: %d", resp.StatusCode)
	}

	// The last owner stays.
	owner := e.client("acme.nself.test")
	owner.signIn("owner@acme.test", passwordOf("owner@acme.test"))
	// The page offers no control that would be refused, and says why.
	_, body = owner.get("/members")
	if row := rowOf(t, body, "owner@acme.test"); strings.Contains(row, "Change role") || strings.Contains(row, "Remove") ||
		!strings.Contains(row, "The only owner") {
		t.Errorf("the last owner's row: %q", row)
	}
	// A forged request is refused on the members page, with the reason
	// and the way back.
	resp, body = owner.post("/members/"+own.ID+"/role", url.Values{"role": {"admin"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(textOf(t, body, "member-error"), "at least one owner") ||
		len(byTestID(doc(t, body), "member-list")) != 1 {
		t.Errorf("last owner demoted: %d %q", resp.StatusCode, textOf(t, body, "member-error"))
	}
	resp, _ = owner.post("/members/"+mem.ID+"/remove", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("owner removes a member: %d", resp.StatusCode)
	}
	_, body = owner.get("/members")
	if rowOf(t, body, "member@acme.test") != "" {
		t.Error("removed member still listed")
	}
}

func TestMembersRoutesNeedAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	target := e.mustMember(acme, "target@acme.test", tenancy.RoleMember)
	inv, _, err := e.server.Invitations.Invite(e.ctx, acme.ID, tenancy.NewInvitation{Email: "x@acme.test", Role: tenancy.RoleGuest}, tenancy.PlatformActor())
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []tenancy.Role{tenancy.RoleGuest, tenancy.RoleMember} {
		c := e.signedIn(acme, string(role)+"@acme.test", role)
		_, body := c.get("/dashboard")
		if len(byTestID(doc(t, body), "nav-members")) != 0 {
			t.Errorf("%s menu shows Members", role)
		}
		for _, path := range []string{"/members", "/members/invite/preview.html?email=a%40b.test"} {
			if resp, _ := c.get(path); resp.StatusCode != 403 {
				t.Errorf("%s GET %s: %d", role, path, resp.StatusCode)
			}
		}
		for _, path := range []string{"/members/" + target.ID + "/role", "/members/" + target.ID + "/remove", "/members/invite",
			"/members/invite/preview", "/members/invitations/" + inv.ID + "/resend", "/members/invitations/" + inv.ID + "/revoke"} {
			if resp, _ := c.post(path, url.Values{"role": {"admin"}, "email": {"y@acme.test"}}); resp.StatusCode != 403 {
				t.Errorf("%s POST %s: %d", role, path, resp.StatusCode)
			}
		}
	}
	// Only the invitation made through the service above was mailed.
	if sent := e.mail.messages("invitation"); len(sent) != 1 || sent[0].To != "x@acme.test" {
		t.Errorf("invitation mails: %+v", sent)
	}
}

func TestInviteFieldErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	e.mustMember(acme, "member@acme.test", tenancy.RoleMember)
	admin := e.signedIn(acme, "admin@acme.test", tenancy.RoleAdmin)
	admin.get("/members")
	for _, tc := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"email": {"not-an-email"}, "role": {"member"}}, "email"},
		{url.Values{"email": {"new@acme.test"}, "role": {"boss"}}, "role"},
		{url.Values{"email": {"new@acme.test"}, "role": {"owner"}}, "role"},
		{url.Values{"email": {"MEMBER@acme.test"}, "role": {"guest"}}, "email"},
	} {
		resp, body := admin.post("/members/invite", tc.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "error-"+tc.field) == "" {
			t.Errorf("invite %v: %d, %s error %q", tc.form, resp.StatusCode, tc.field, textOf(t, body, "error-"+tc.field))
		}
	}
	if sent := e.mail.messages("invitation"); len(sent) != 0 {
		t.Errorf("%d mails sent for invalid invitations", len(sent))
	}
}

func TestInvitePreview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	owner.get("/members")
	evil := `<script>alert(1)</script>`
	req, _ := http.NewRequest(http.MethodPost, owner.url("/members/invite/preview"),
		strings.NewReader(url.Values{"email": {"bob@example.test"}, "name": {evil}, "role": {"admin"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", owner.csrf)
	resp, body := owner.do(req)
	if resp.StatusCode != 200 {
		t.Fatalf("preview: %d %s", resp.StatusCode, body)
	}
	if got := textOf(t, body, "preview-subject"); got != "Name of owner@acme.test invited you to Acme Inc" {
		t.Errorf("subject = %q", got)
	}
	if got := textOf(t, body, "preview-to"); got != "bob@example.test" {
		t.Errorf("to = %q", got)
	}
	frames := byTestID(doc(t, body), "preview-frame")
	if len(frames) != 1 || attr(frames[0], "sandbox") != "" || !strings.HasPrefix(attr(frames[0], "src"), "/members/invite/preview.html?") {
		t.Fatalf("frame: %v", frames)
	}
	resp, mail := owner.get(attr(frames[0], "src"))
	if resp.StatusCode != 200 {
		t.Fatalf("preview html: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || strings.Contains(csp, "script-src") || !strings.Contains(csp, "frame-ancestors 'self'") {
		t.Errorf("preview CSP = %q", csp)
	}
	if strings.Contains(mail, "<script>") || !strings.Contains(mail, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("invitee name not escaped in the preview")
	}
	for _, want := range []string{"Acme Inc", "<strong>admin</strong>", "Name of owner@acme.test", "bob@example.test"} {
		if !strings.Contains(mail, want) {
			t.Errorf("preview lacks %q", want)
		}
	}
	// The members page carries the preview pane and the live form.
	_, body = owner.get("/members")
	forms := byTestID(doc(t, body), "invite-form")
	if len(forms) != 1 || attr(forms[0], "hx-post") != "/members/invite/preview" || attr(forms[0], "hx-target") != "#invite-preview" {
		t.Errorf("invite form: %v", forms)
	}
	if len(byTestID(doc(t, body), "preview-frame")) != 1 {
		t.Error("no preview on the page")
	}
}

var linkRE = regexp.MustCompile(`http://acme\.nself\.test/invitations/accept\?token=([A-Za-z0-9_-]+)`)

// mustInviteThroughPage invites through the form and returns the token of
// the link mailed.
func mustInviteThroughPage(t *testing.T, e *testEnv, c *client, email, name, role string) string {
	t.Helper()
	c.get("/members")
	n := len(e.mail.sent)
	resp, body := c.post("/members/invite", url.Values{"email": {email}, "name": {name}, "role": {role}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("invite: %d %s", resp.StatusCode, textOf(t, body, "form-error"))
	}
	if len(e.mail.sent) != n+1 {
		t.Fatalf("%d mails sent", len(e.mail.sent)-n)
	}
	m := e.mail.sent[n]
	link := linkRE.FindStringSubmatch(m.Text)
	if !strings.EqualFold(m.To, email) || link == nil || !strings.Contains(m.HTML, link[0]) {
		t.Fatalf("mail: %+v", m)
	}
	return link[1]
}

func TestInvitationAcceptFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	token := mustInviteThroughPage(t, e, owner, "New@Example.test", "New Person", "admin")
	m := e.mail.messages("invitation")[0]
	if m.Subject != "Name of owner@acme.test invited you to Acme Inc" || !strings.Contains(m.Text, "as admin") || !strings.Contains(m.Text, "Hello New Person") {
		t.Errorf("mail: %q\n%s", m.Subject, m.Text)
	}
	_, body := owner.get("/members")
	if got := rowTexts(t, body, "invitation-email"); len(got) != 1 || got[0] != "New@example.test" {
		t.Errorf("pending: %v", got)
	}
	if textOf(t, body, "flash") != "Invitation to New@example.test saved: its email is on its way." {
		t.Errorf("flash = %q", textOf(t, body, "flash"))
	}

	// A signed-in account of the tenant is told to sign out first.
	resp, body := owner.get("/invitations/accept?token=" + token)
	if resp.StatusCode != 200 || !strings.Contains(textOf(t, body, "signed-in-other"), "signed in as owner@acme.test") || len(byTestID(doc(t, body), "invitation-sign-out")) != 1 {
		t.Errorf("signed in as another: %d %q", resp.StatusCode, textOf(t, body, "signed-in-other"))
	}
	if resp, _ := owner.post("/invitations/accept", url.Values{"token": {token}, "password": {"a good long password"}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("accept while signed in as another: %d", resp.StatusCode)
	}

	guest := e.client("acme.nself.test")
	resp, body = guest.get("/invitations/accept?token=" + token)
	if resp.StatusCode != 200 || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("accept page: %d %q", resp.StatusCode, resp.Header.Get("Referrer-Policy"))
	}
	if got := textOf(t, body, "invitation-summary"); got != "Name of owner@acme.test invited New@example.test to join Acme Inc as admin ." {
		t.Errorf("summary = %q", got)
	}
	// The password's rule is said before anything is sent.
	if got := labelFor(doc(t, body), "password"); got != "Choose a password (at least 10 characters)" {
		t.Errorf("the accept form's password label is %q, want how long it must be", got)
	}
	resp, body = guest.post("/invitations/accept", url.Values{"token": {token}, "password": {"short"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || textOf(t, body, "error-password") == "" {
		t.Errorf("short password: %d", resp.StatusCode)
	}
	resp, _ = guest.post("/invitations/accept", url.Values{"token": {token}, "password": {"a good long password"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("accept: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = guest.get("/dashboard")
	if resp.StatusCode != 200 || textOf(t, body, "user-email") != "New@example.test" || textOf(t, body, "dashboard-role") != "admin" {
		t.Errorf("after accept: %d %q %q", resp.StatusCode, textOf(t, body, "user-email"), textOf(t, body, "dashboard-role"))
	}
	// The link works once.
	other := e.client("acme.nself.test")
	resp, body = other.get("/invitations/accept?token=" + token)
	if resp.StatusCode != http.StatusGone || !strings.Contains(textOf(t, body, "invitation-problem"), "already been accepted") {
		t.Errorf("second open: %d %q", resp.StatusCode, textOf(t, body, "invitation-problem"))
	}
	if resp, _ := other.post("/invitations/accept", url.Values{"token": {token}, "password": {"another long password"}}); resp.StatusCode != http.StatusGone {
		t.Errorf("second accept: %d", resp.StatusCode)
	}
	_, body = owner.get("/members")
	if !strings.Contains(rowOf(t, body, "New@example.test"), "admin") || len(byTestID(doc(t, body), "invitation-row")) != 0 {
		t.Errorf("members after accept: %q", rowOf(t, body, "New@example.test"))
	}
}

func TestInvitationResendAndRevokeThroughPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	old := mustInviteThroughPage(t, e, owner, "bob@example.test", "", "member")
	_, body := owner.get("/members")
	rows := byTestID(doc(t, body), "invitation-row")
	if len(rows) != 1 {
		t.Fatalf("%d invitation rows", len(rows))
	}
	id := attr(rows[0], "data-invitation-id")
	if resp, _ := owner.post("/members/invitations/"+id+"/resend", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("resend: %d", resp.StatusCode)
	}
	fresh := linkRE.FindStringSubmatch(e.mail.sent[len(e.mail.sent)-1].Text)
	if fresh == nil || fresh[1] == old {
		t.Fatal("resend mailed no new link")
	}
	anon := e.client("acme.nself.test")
	if resp, _ := anon.get("/invitations/accept?token=" + old); resp.StatusCode != http.StatusGone {
		t.Errorf("old link after resend: %d", resp.StatusCode)
	}
	owner.get("/members")
	if resp, _ := owner.post("/members/invitations/"+id+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp, body := anon.get("/invitations/accept?token=" + fresh[1]); resp.StatusCode != http.StatusGone || !strings.Contains(textOf(t, body, "invitation-problem"), "withdrawn") {
		t.Errorf("revoked link: %d", resp.StatusCode)
	}
}

func TestInvitationsAndMembersStayInTheirTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acme := e.mustTenant("acme")
	beta := e.mustTenant("beta")
	owner := e.signedIn(acme, "owner@acme.test", tenancy.RoleOwner)
	token := mustInviteThroughPage(t, e, owner, "bob@example.test", "Bob", "member")

	// B's host does not know A's invitation.
	b := e.client("beta.nself.test")
	if resp, _ := b.get("/invitations/accept?token=" + token); resp.StatusCode != http.StatusGone {
		t.Errorf("A's invitation on B's host: %d", resp.StatusCode)
	}
	if resp, _ := b.post("/invitations/accept", url.Values{"token": {token}, "password": {"a good long password"}}); resp.StatusCode != http.StatusGone {
		t.Errorf("A's invitation accepted on B's host: %d", resp.StatusCode)
	}

	// B's members and invitations cannot be reached through A's URLs.
	bm := e.mustMember(beta, "member@beta.test", tenancy.RoleMember)
	binv, _, err := e.server.Invitations.Invite(e.ctx, beta.ID, tenancy.NewInvitation{Email: "x@beta.test", Role: tenancy.RoleGuest}, tenancy.PlatformActor())
	if err != nil {
		t.Fatal(err)
	}
	owner.get("/members")
	for _, path := range []string{"/members/" + bm.ID + "/role", "/members/" + bm.ID + "/remove",
		"/members/invitations/" + binv.ID + "/resend", "/members/invitations/" + binv.ID + "/revoke"} {
		if resp, _ := owner.post(path, url.Values{"role": {"admin"}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("A's owner POST %s: %d, want 404", path, resp.StatusCode)
		}
	}
	list, err := e.server.Members.ListMembers(e.ctx, beta.ID)
	if err != nil || len(list) != 1 || list[0].Role != tenancy.RoleMember {
		t.Errorf("B's members changed: %v %+v", err, list)
	}
	if pending, err := e.server.Invitations.ListPending(e.ctx, beta.ID); err != nil || len(pending) != 1 {
		t.Errorf("B's invitations changed: %v %d", err, len(pending))
	}
	// The token still works on A.
	if resp, _ := e.client("acme.nself.test").get("/invitations/accept?token=" + token); resp.StatusCode != 200 {
		t.Errorf("A's invitation on A: %d", resp.StatusCode)
	}
}

// labelFor is the text of the label for the control with id.
func labelFor(n *html.Node, id string) string {
	if n.Type == html.ElementNode && n.Data == "label" && attr(n, "for") == id {
		return strings.Join(strings.Fields(text(n)), " ")
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if got := labelFor(c, id); got != "" {
			return got
		}
	}
	return ""
}
