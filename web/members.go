package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nself/nself/internal/tenancy"
	"github.com/nself/nself/views"
)

// memberPageSize is how many members the members page shows at once.
const memberPageSize = 20

func (s *Server) memberRoutes(r chi.Router) {
	r.Get("/members", s.h(s.handleMemberList))
	r.Post("/members/{userID}/role", s.h(s.handleMemberRole))
	r.Post("/members/{userID}/remove", s.h(s.handleMemberRemove))
	r.Post("/members/invite", s.h(s.handleInvite))
	r.Post("/members/invite/preview", s.h(s.handleInvitePreview))
	r.Get("/members/invite/preview.html", s.h(s.handleInvitePreviewHTML))
	r.Post("/members/invitations/{id}/resend", s.h(s.handleInvitationResend))
	r.Post("/members/invitations/{id}/revoke", s.h(s.handleInvitationRevoke))
}

// rolesManagedBy lists, highest first, the roles actor may give.
func rolesManagedBy(actor tenancy.Actor) []string {
	var out []string
	for _, r := range []tenancy.Role{tenancy.RoleOwner, tenancy.RoleAdmin, tenancy.RoleMember, tenancy.RoleGuest} {
		if actor.Manages(r) {
			out = append(out, string(r))
		}
	}
	return out
}

// renderMembers renders the members page with the invite form f.
func (s *Server) renderMembers(w http.ResponseWriter, r *http.Request, status int, f views.Form) error {
	return s.renderMembersWith(w, r, status, f, nil)
}

// renderMembersWith renders the members page with the invite form f and,
// next to each invitation in invErrors (by id), why an action on it was
// refused.
func (s *Server) renderMembersWith(w http.ResponseWriter, r *http.Request, status int, f views.Form, invErrors map[string]string) error {
	return s.renderMembersPage(w, r, status, views.Members{Invite: f}, invErrors)
}

// renderMembersPage renders the members page from m's invite form and
// error, with invErrors next to their invitations.
func (s *Server) renderMembersPage(w http.ResponseWriter, r *http.Request, status int, base views.Members, invErrors map[string]string) error {
	f := base.Invite
	ctx := r.Context()
	t, id := TenantFrom(ctx), IdentityFrom(ctx)
	actor := tenancy.MemberActor(id.Role)
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	// A page number that is not one shows the first page.
	pg, _ := pageOf(r, memberPageSize)
	all, err := s.Members.ListMembers(ctx, t.ID)
	if err != nil {
		return err
	}
	// Members are few (the plan bounds them), so the search and the page
	// are cut from the whole list here.
	var matched []*tenancy.MemberInfo
	needle := strings.ToLower(q)
	for _, m := range all {
		if needle == "" || strings.Contains(strings.ToLower(m.Email), needle) || strings.Contains(strings.ToLower(m.Name), needle) {
			matched = append(matched, m)
		}
	}
	// A page past the last shows the last.
	rows, pg := cutPage(pg, matched)
	m := views.Members{Query: q, Total: len(matched), Invite: f, Error: base.Error,
		Pager: pager("/members", map[string]string{"q": q}, pg, len(matched))}
	roles := rolesManagedBy(actor)
	owners := 0
	for _, mi := range all {
		if mi.Role == tenancy.RoleOwner {
			owners++
		}
	}
	for _, mi := range rows {
		row := views.MemberRow{UserID: mi.UserID, Email: mi.Email, Name: mi.Name, Role: string(mi.Role), JoinedAt: mi.JoinedAt}
		if actor.Manages(mi.Role) {
			row.Roles = roles
		}
		// The control that would be refused is not offered; the page
		// says why instead.
		row.LastOwner = mi.Role == tenancy.RoleOwner && owners == 1
		m.Rows = append(m.Rows, row)
	}
	invs, err := s.Invitations.ListPending(ctx, t.ID)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, inv := range invs {
		m.Invitations = append(m.Invitations, views.InvitationRow{
			ID: inv.ID, Email: inv.Email, Name: inv.Name, Role: string(inv.Role),
			InvitedBy: inv.Inviter(), ExpiresAt: inv.ExpiresAt, Expired: inv.Expired(now),
			CanManage: actor.Manages(inv.Role), Error: invErrors[inv.ID], Delivery: inv.Delivery,
		})
	}
	m.InviteRoles = roles
	if m.Invite.Values == nil {
		m.Invite = views.Form{Values: map[string]string{"role": string(tenancy.RoleMember)}, Errors: map[string]string{}}
	}
	if m.Preview, err = s.invitePreview(r, m.Invite.Values); err != nil {
		return err
	}
	p := s.page(r, "Members")
	p.Flash = s.takeFlash(w, r, tenantCookie)
	render(w, r, status, views.MembersPage(p, m))
	return nil
}

// handleMemberList serves GET /members.
func (s *Server) handleMemberList(w http.ResponseWriter, r *http.Request) error {
	return s.renderMembers(w, r, http.StatusOK, views.Form{})
}

// memberRef is the {userID} of a member route: an id only, so that these
// routes never act on an email typed into the address.
func memberRef(r *http.Request) (string, error) {
	ref := chi.URLParam(r, "userID")
	if !tenancy.IsUUID(ref) {
		return "", tenancy.Errorf(tenancy.ENOTFOUND, "no member %s", tenancy.Quote(ref))
	}
	return ref, nil
}

// memberRoleForm changes a member's role.
type memberRoleForm struct {
	Role string `form:"role"`
}

// handleMemberRole serves POST /members/{userID}/role.
func (s *Server) handleMemberRole(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ref, err := memberRef(r)
	if err != nil {
		return err
	}
	var in memberRoleForm
	parseForm(r, &in)
	m, _, err := s.Members.UpdateMember(ctx, TenantFrom(ctx).ID, ref, tenancy.Role(in.Role),
		tenancy.MemberActor(IdentityFrom(ctx).Role))
	if code := tenancy.ErrorCode(err); code == tenancy.ECONFLICT || code == tenancy.EFORBIDDEN {
		return s.renderMembersPage(w, r, statusOf(code), views.Members{Error: tenancy.ErrorMessage(err) + "."}, nil)
	} else if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, m.Email+" is now "+string(m.Role)+".")
	http.Redirect(w, r, "/members", http.StatusSeeOther)
	return nil
}

// handleMemberRemove serves POST /members/{userID}/remove.
func (s *Server) handleMemberRemove(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ref, err := memberRef(r)
	if err != nil {
		return err
	}
	m, err := s.Members.RemoveMember(ctx, TenantFrom(ctx).ID, ref, tenancy.MemberActor(IdentityFrom(ctx).Role))
	if code := tenancy.ErrorCode(err); code == tenancy.ECONFLICT || code == tenancy.EFORBIDDEN {
		return s.renderMembersPage(w, r, statusOf(code), views.Members{Error: tenancy.ErrorMessage(err) + "."}, nil)
	} else if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, m.Email+" was removed from the members.")
	http.Redirect(w, r, "/members", http.StatusSeeOther)
	return nil
}

// inviteForm invites someone; its live preview posts it too.
type inviteForm struct {
	Email string `form:"email"`
	Name  string `form:"name"`
	Role  string `form:"role"`
}

// handleInvite serves POST /members/invite.
func (s *Server) handleInvite(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, id := TenantFrom(ctx), IdentityFrom(ctx)
	var in inviteForm
	f := parseForm(r, &in)
	inv, _, err := s.Invitations.Invite(ctx, t.ID, tenancy.NewInvitation{
		Email: in.Email, Name: in.Name, Role: tenancy.Role(in.Role), InvitedBy: id.User.ID,
	}, tenancy.MemberActor(id.Role))
	switch code := tenancy.ErrorCode(err); code {
	case "":
	case tenancy.EINVALID, tenancy.ECONFLICT, tenancy.EFORBIDDEN:
		fieldError(&f, err)
		return s.renderMembers(w, r, http.StatusUnprocessableEntity, f)
	case tenancy.EQUOTA:
		// Over the invitation mail limits: the message says when to try
		// again.
		fieldError(&f, err)
		return s.renderMembers(w, r, http.StatusTooManyRequests, f)
	default:
		return err
	}
	s.setFlash(w, r, tenantCookie, "Invitation to "+inv.Email+" saved: its email is on its way.")
	http.Redirect(w, r, "/members", http.StatusSeeOther)
	return nil
}

func inviterName(u *tenancy.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

// invitationMail renders the invitation email in the request's tenant's
// name through the composer the outbox sends with, so the preview shows
// what arrives; only the link stands in for the secret, which exists once
// the invitation is made.
func (s *Server) invitationMail(r *http.Request, inviter, email, name, role string) (tenancy.Message, error) {
	ctx := r.Context()
	t := TenantFrom(ctx)
	tpl, err := s.Mail.Template(ctx, t.ID, "invitation")
	if err != nil {
		return tenancy.Message{}, err
	}
	userName := name
	if userName == "" {
		userName = email
	}
	return s.Mail.Render(ctx, t, tpl, email, map[string]string{
		"USER_NAME": userName, "USER_EMAIL": email, "INVITER_NAME": inviter, "ROLE": role,
		tenancy.LinkVariable: s.previewAcceptURL(t.Slug),
	})
}

// previewAcceptURL stands in for the secret link, which exists only once
// the invitation is made.
func (s *Server) previewAcceptURL(slug string) string {
	return s.tenantURL(slug) + "/invitations/accept?token=…"
}

// previewValues are the unsaved invite form's values as the preview uses
// them: an empty field shows a placeholder.
func previewValues(v map[string]string) (email, name, role string) {
	email, name, role = strings.TrimSpace(v["email"]), strings.TrimSpace(v["name"]), v["role"]
	if email == "" {
		email = "name@example.com"
	}
	if role == "" {
		role = string(tenancy.RoleMember)
	}
	return email, name, role
}

// invitePreview is the preview pane for the invite form's values.
func (s *Server) invitePreview(r *http.Request, values map[string]string) (views.InvitePreview, error) {
	id := IdentityFrom(r.Context())
	email, name, role := previewValues(values)
	msg, err := s.invitationMail(r, inviterName(id.User), email, name, role)
	if err != nil {
		return views.InvitePreview{}, err
	}
	q := url.Values{"email": {values["email"]}, "name": {values["name"]}, "role": {role}}
	return views.InvitePreview{To: msg.To, Subject: msg.Subject, FrameURL: "/members/invite/preview.html?" + q.Encode()}, nil
}

// handleInvitePreview serves POST /members/invite/preview: the live
// preview's partial, from the unsaved form.
func (s *Server) handleInvitePreview(w http.ResponseWriter, r *http.Request) error {
	var in inviteForm
	f := parseForm(r, &in)
	v, err := s.invitePreview(r, f.Values)
	if err != nil {
		return err
	}
	render(w, r, http.StatusOK, views.InvitePreviewPane(v))
	return nil
}

// previewPolicy governs the email's HTML shown in the preview frame. The
// email is styled inline, as emails must be, which the portal's policy
// forbids; this document may use inline styles and nothing else: no
// script, no fetching, no forms, and a sandbox giving it an origin of its
// own. Only the portal's own pages may frame it.
const previewPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"

// handleInvitePreviewHTML serves GET /members/invite/preview.html: the
// invitation email's HTML body for the preview frame.
func (s *Server) handleInvitePreviewHTML(w http.ResponseWriter, r *http.Request) error {
	id := IdentityFrom(r.Context())
	q := r.URL.Query()
	email, name, role := previewValues(map[string]string{"email": q.Get("email"), "name": q.Get("name"), "role": q.Get("role")})
	msg, err := s.invitationMail(r, inviterName(id.User), email, name, role)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Security-Policy", previewPolicy)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.Write([]byte(msg.HTML))
	return nil
}

// invitationID is the {id} of an invitation route.
func invitationID(r *http.Request) string { return chi.URLParam(r, "id") }

// handleInvitationResend serves POST /members/invitations/{id}/resend.
func (s *Server) handleInvitationResend(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	inv, _, err := s.Invitations.Resend(ctx, TenantFrom(ctx).ID, invitationID(r), tenancy.MemberActor(IdentityFrom(ctx).Role))
	if tenancy.ErrorCode(err) == tenancy.EQUOTA && r.Header.Get("HX-Request") == "" {
		// Over the invitation mail limits: said next to the invitation,
		// with when it can be sent again.
		return s.renderMembersWith(w, r, http.StatusTooManyRequests, views.Form{}, map[string]string{invitationID(r): tenancy.ErrorMessage(err)})
	} else if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, "Invitation to "+inv.Email+" renewed: its email is on its way.")
	http.Redirect(w, r, "/members", http.StatusSeeOther)
	return nil
}

// handleInvitationRevoke serves POST /members/invitations/{id}/revoke.
func (s *Server) handleInvitationRevoke(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	inv, err := s.Invitations.Revoke(ctx, TenantFrom(ctx).ID, invitationID(r), tenancy.MemberActor(IdentityFrom(ctx).Role))
	if err != nil {
		return err
	}
	s.setFlash(w, r, tenantCookie, "The invitation to "+inv.Email+" was revoked.")
	http.Redirect(w, r, "/members", http.StatusSeeOther)
	return nil
}
