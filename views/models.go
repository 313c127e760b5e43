// Package views renders the portal's pages with templ. Handlers pass view
// models shaped like the page; the components never see database rows.
package views

import "github.com/nself/nself/internal/tenancy"

// Brand is how a tenant's pages look. Colors reach CSS through the
// tenant's stylesheet (/brand.css), never inline, so only validated values
// are ever written into CSS.
type Brand struct {
	Name    string
	Initial string
	// StyleURL is the tenant's stylesheet; empty for the platform's pages.
	StyleURL string
	// LogoURL is the tenant's main logo, shown instead of Initial; empty when none.
	LogoURL string
	// IconURL is the tenant's favicon; empty for the browser's default.
	IconURL string
	// Contact is the tagline and the ways to reach the company that the
	// sign-in page and the dashboard show.
	Contact tenancy.Contact
}

// NavItem is one link of the portal's menu.
type NavItem struct {
	Label  string
	Href   string
	Active bool
	TestID string
}

// Page is what every page's layout needs.
type Page struct {
	Title string
	Brand Brand
	// Nav is the menu, already filtered to what the visitor may open.
	Nav []NavItem
	// CSRF is the token forms and htmx requests send back.
	CSRF string
	// UserEmail and Role are set when someone is signed in.
	UserEmail string
	Role      string
	Flash     string
	// SignOutURL is where the sign-out form posts; empty hides it.
	SignOutURL string
	// SignInWith names the tenant's single sign-on provider on the
	// sign-in page, whose button goes to SignInWithURL; empty: none.
	SignInWith    string
	SignInWithURL string
	// PasswordOwnersOnly: single sign-on is required, passwords are for
	// owners.
	PasswordOwnersOnly bool
	// Refresh moves the browser on to this address once the page has
	// loaded (a meta refresh); empty: it stays.
	Refresh string
	// Framed draws the page for a preview frame, which is sandboxed and
	// runs no scripts: none are linked (the browser would refuse each,
	// and say so in its console), and the menu is drawn as the page's
	// script leaves it on a narrow screen, behind its button.
	Framed bool
}

// Form is a form's values and its errors by field name.
type Form struct {
	Values map[string]string
	Errors map[string]string
	// Error is a message about the form as a whole.
	Error string
}

// Value returns a field's value.
func (f Form) Value(name string) string { return f.Values[name] }

// Err returns a field's error.
func (f Form) Err(name string) string { return f.Errors[name] }
