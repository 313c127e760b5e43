package tenancy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	// The placement of a secret link is decided on the document a mail
	// reader builds, so it is tokenized and parsed as HTML5 prescribes,
	// by the Go project's own parser: regular expressions, or the
	// standard library's XML decoder, read a different document than a
	// browser does, and the difference is where a link would slip out.
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// LinkVariable is the variable holding the link a mail exists for: the
// button to press. In some emails it is a secret (secretLinkEmails).
const LinkVariable = "ACTION_URL"

// secretLinkEmails are the emails whose link is a secret: whoever holds
// it acts as the recipient. The value says what the link does, for the
// messages that explain a refusal. Other emails link to a page anyone
// signed in can open (the billing page for payment_failed and
// quota_warning, the sign-in page for welcome; a new account without a
// password gets its link in password_set).
var secretLinkEmails = map[string]string{
	"password_reset": "its link sets the password of the account it is sent to, an owner's included",
	"password_set":   "its link chooses the first password of the new account it is sent to, an owner's included",
	"invitation":     "its link joins the tenant with the invited role, owner included",
}

// CarriesSecretLink reports whether the email called name mails a secret
// link (a password reset, an invitation).
func CarriesSecretLink(name string) bool {
	_, ok := secretLinkEmails[name]
	return ok
}

// SecretLinkReason says why only owners edit the email called name: what
// its link does. It is "" for an email without a secret link.
func SecretLinkReason(name string) string { return secretLinkEmails[name] }

// CheckEmailTemplateEdit decides whether actor may customize the email
// called name, or reset it to the default. Owners and admins edit the
// tenant's emails; an email carrying a secret link is an owner's alone
// (and the platform's): an admin who could place the owner's reset link
// where it leaks (an image the mail reader loads) could take the owner's
// account, and an invitation can make its holder an owner.
func CheckEmailTemplateEdit(actor Actor, name string) error {
	if err := CheckEmailTemplateName(name); err != nil {
		return err
	}
	switch {
	case actor.Platform || actor.Role == RoleOwner:
		return nil
	case actor.Role != RoleAdmin:
		return Errorf(EFORBIDDEN, "only owners and admins can change email templates")
	case CarriesSecretLink(name):
		return Errorf(EFORBIDDEN, "only an owner can change the %s email: %s", name, secretLinkEmails[name])
	}
	return nil
}

// linkPlacementHint is how every refusal of a placement ends: the one
// place the link may be.
const linkPlacementHint = `: it may only be the whole address of a link, as in <a href="{{ACTION_URL}}">`

// checkEmailLinks applies the link rules to a template whose variables
// are already known to be well formed. The link ({{ACTION_URL}} and
// every other spelling the renderer fills) may be, in the HTML body, only
// the whole href of an <a> element: an image, a style, a CSS url(), a
// parameter of another address or the visible text would hand it to
// whoever the address belongs to, often as soon as the mail is opened
// (some readers fetch images even before). It is never in the subject, which
// is shown in notifications and lists. In the plain-text body it may
// stand on its own (see checkTextLink). The rule holds in every email,
// since a link is only ever useful as a link; an email carrying a secret
// link must, in addition, keep its tags the same whatever the variables
// hold, and have no stylesheet able to read the link's address.
func checkEmailLinks(t EmailTemplate) error {
	if line := linkLine(t.Subject); line > 0 {
		return FieldErrorf(EINVALID, "subject", "the subject cannot hold {{%s}}%s", LinkVariable, linkPlacementHint)
	}
	if err := checkHTMLLink(t.HTML, CarriesSecretLink(t.Name)); err != nil {
		return err
	}
	return checkTextLink(t.Text)
}

// linkLine returns the line of the first link variable in text, or 0.
func linkLine(text string) int {
	for _, m := range variableRE.FindAllStringIndex(text, -1) {
		if variableName(text[m[0]:m[1]]) == LinkVariable {
			return strings.Count(text[:m[0]], "\n") + 1
		}
	}
	return 0
}

// checkTextLink allows the link in the plain-text body where it stands
// alone: at the start of a line or after a space (or "<", the delimiter
// RFC 3986 suggests for addresses in text), and followed by a space, the
// end of the line, ">" or punctuation. A mail reader fetches nothing named
// in plain text, so the link shown there for the reader to open is safe;
// what is refused is the link glued to other text, which a reader turning
// addresses into links would make part of another address
// ("https://elsewhere/?u={{ACTION_URL}}"), and some mail scanners open.
func checkTextLink(text string) error {
	for _, m := range variableRE.FindAllStringIndex(text, -1) {
		if variableName(text[m[0]:m[1]]) != LinkVariable {
			continue
		}
		before, _ := utf8.DecodeLastRuneInString(text[:m[0]])
		after, _ := utf8.DecodeRuneInString(text[m[1]:])
		okBefore := m[0] == 0 || unicode.IsSpace(before) || before == '<'
		okAfter := m[1] == len(text) || unicode.IsSpace(after) || strings.ContainsRune(">.,;:!?)", after)
		if !okBefore || !okAfter {
			return FieldErrorf(EINVALID, "text", "{{%s}} on line %d of the plain-text body is joined to other text: "+
				"put it on a line of its own, or between spaces", LinkVariable, strings.Count(text[:m[0]], "\n")+1)
		}
	}
	return nil
}

// checkHTMLLink applies the link rule to an HTML body. The variables are
// replaced as the renderer replaces them (variableRE, every spelling), the
// link by a marker no template contains and the others by a stand-in, and
// the result is read twice, as a mail reader would: token by token, which
// sees every byte (an attribute the tree drops, a second href), and as
// the tree HTML5 builds, which knows where a browser ends raw text (SVG's
// <style>, CDATA). The link passes only where both find it as the whole
// href of an <a>. With secret, the tags must also read the same whether
// the other variables hold a word or words with "=" (a name such as
// `x ping=` in an unquoted attribute would add attributes to the link),
// and no stylesheet may select on href or import another.
func checkHTMLLink(body string, secret bool) error {
	link := newMarker(body)
	plain := standIn(body, link, "v")
	if err := checkLinkTokens(plain, link, secret); err != nil {
		return err
	}
	if err := checkLinkTree(plain, link, secret); err != nil {
		return err
	}
	if secret && linkLine(body) > 0 && tagShape(plain) != tagShape(standIn(body, link, "v v=")) {
		return FieldErrorf(EINVALID, "html", `a variable inside a tag must be in quotes (title="{{USER_NAME}}") in an email with {{%s}}: `+
			"unquoted, its value could add attributes to the link", LinkVariable)
	}
	return nil
}

// newMarker returns a word that is not in body: the link's stand-in.
func newMarker(body string) string {
	for {
		b := make([]byte, 8)
		rand.Read(b)
		m := "nselflink" + hex.EncodeToString(b)
		if !strings.Contains(body, m) {
			return m
		}
	}
}

// standIn replaces each variable of body by what the check reads in its
// place: the link by link, the others by other. Values are HTML-escaped
// when rendered, so no value can open or close a tag; other stands for
// any of them.
func standIn(body, link, other string) string {
	return variableRE.ReplaceAllStringFunc(body, func(m string) string {
		if variableName(m) == LinkVariable {
			return link
		}
		return other
	})
}

// placementError is the refusal of a link found at where.
func placementError(line int, where string) error {
	at := ""
	if line > 0 {
		at = fmt.Sprintf(" on line %d", line)
	}
	return FieldErrorf(EINVALID, "html", "{{%s}}%s is %s%s", LinkVariable, at, where, linkPlacementHint)
}

// rawTextTags are the elements whose content a tokenizer reads as text.
var rawTextTags = map[string]bool{"style": true, "script": true, "textarea": true, "title": true, "xmp": true,
	"iframe": true, "noembed": true, "noframes": true, "noscript": true, "plaintext": true}

// checkLinkTokens reads the body token by token: every marker in a
// token's bytes must be the whole value of an href attribute of an <a>
// start tag.
func checkLinkTokens(body, link string, secret bool) error {
	z := html.NewTokenizer(strings.NewReader(body))
	// rawText is the element whose content the next text token is.
	offset, rawText := 0, ""
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() == io.EOF {
				return nil
			}
			return FieldErrorf(EINVALID, "html", "the HTML body cannot be read: %v", z.Err())
		}
		tokRaw := string(z.Raw())
		line := strings.Count(body[:offset], "\n") + 1
		offset += len(tokRaw)
		tok := z.Token()
		inside := rawText
		rawText = ""
		if tt == html.StartTagToken && rawTextTags[tok.Data] {
			rawText = tok.Data
		}
		if err := checkTokenLink(tt, tok, tokRaw, link, inside, line); err != nil {
			return err
		}
		switch {
		case !secret:
		case (tt == html.StartTagToken || tt == html.SelfClosingTagToken) && tok.Data == "link":
			return FieldErrorf(EINVALID, "html", "line %d: an email with {{%s}} cannot load a stylesheet (<link>): "+
				"put its styles in a <style> element or in style attributes", line, LinkVariable)
		case tt == html.TextToken && inside == "style":
			if err := checkMailStyleSheet(tok.Data, line); err != nil {
				return err
			}
		}
	}
}

// checkTokenLink checks the markers in one token's bytes.
func checkTokenLink(tt html.TokenType, tok html.Token, tokRaw, link, inside string, line int) error {
	found := strings.Count(tokRaw, link)
	if found == 0 {
		return nil
	}
	allowed := 0
	switch tt {
	case html.StartTagToken, html.SelfClosingTagToken:
		for _, a := range tok.Attr {
			if !strings.Contains(a.Key+a.Val, link) {
				continue
			}
			if tok.Data != "a" || a.Key != "href" {
				return placementError(line, fmt.Sprintf("in the %s attribute of <%s>", attrName(a.Key, link), tagName(tok.Data, link)))
			}
			if strings.TrimSpace(a.Val) != link {
				return placementError(line, "part of a longer address")
			}
			allowed++
		}
		if allowed > 0 {
			if err := checkLinkAnchor(tok.Attr, line); err != nil {
				return err
			}
		}
	case html.TextToken:
		if inside != "" {
			return placementError(line, "inside <"+inside+">")
		}
		return placementError(line, "in the text")
	case html.CommentToken:
		return placementError(line, "in a comment")
	}
	// A marker the attributes do not account for is in a tag's name, an
	// end tag, a doctype or a repeated attribute.
	if allowed < found {
		return placementError(line, "in a tag, outside an href")
	}
	return nil
}

func attrName(key, link string) string {
	if strings.Contains(key, link) {
		return "name of an"
	}
	return key
}

func tagName(data, link string) string {
	if strings.Contains(data, link) {
		return "a tag"
	}
	return data
}

// checkLinkAnchor refuses attributes that send a link's address elsewhere
// when it is followed: ping posts it (as Ping-To) to other servers.
func checkLinkAnchor(attrs []html.Attribute, line int) error {
	for _, a := range attrs {
		if a.Key == "ping" || a.Key == "attributionsrc" {
			return FieldErrorf(EINVALID, "html", "line %d: a link to {{%s}} cannot have a %s attribute: it reports the link's address to another server",
				line, LinkVariable, a.Key)
		}
	}
	return nil
}

// cssCommentRE matches CSS comments, which may sit inside a selector.
var (
	cssCommentRE = regexp.MustCompile(`(?s)/\*.*?\*/`)
	hrefSelectRE = regexp.MustCompile(`(?i)\[\s*(?:[a-z0-9_-]*|\*)?\|?\s*href`)
	cssImportRE  = regexp.MustCompile(`(?i)@import`)
)

// checkMailStyleSheet refuses, in an email with a secret link, the CSS that
// can read the link without naming it: a selector on href
// (a[href^="https://…token=a"] { background: url(…) } reveals the address
// one character at a time), an @import (a stylesheet from elsewhere may
// do the same) and escapes, which would spell either without the words.
func checkMailStyleSheet(css string, line int) error {
	css = cssCommentRE.ReplaceAllString(css, "")
	switch {
	case strings.Contains(css, "\\"):
		return FieldErrorf(EINVALID, "html", "line %d: an email with {{%s}} cannot use CSS escapes (\\) in <style>", line, LinkVariable)
	case cssImportRE.MatchString(css):
		return FieldErrorf(EINVALID, "html", "line %d: an email with {{%s}} cannot @import a stylesheet", line, LinkVariable)
	case hrefSelectRE.MatchString(css):
		return FieldErrorf(EINVALID, "html", "line %d: an email with {{%s}} cannot select on href in <style>: "+
			"such a rule can send the link's address elsewhere", line, LinkVariable)
	}
	return nil
}

// checkLinkTree reads the body as the tree a browser builds: every
// marker must be the whole href of an <a>.
func checkLinkTree(body, link string, secret bool) error {
	root, err := html.Parse(strings.NewReader(body))
	if err != nil {
		return FieldErrorf(EINVALID, "html", "the HTML body cannot be read: %v", err)
	}
	var walk func(n *html.Node) error
	walk = func(n *html.Node) error {
		switch n.Type {
		case html.ElementNode:
			if strings.Contains(n.Data, link) {
				return placementError(0, "in a tag name")
			}
			for _, a := range n.Attr {
				if !strings.Contains(a.Namespace+a.Key+a.Val, link) {
					continue
				}
				if n.DataAtom != atom.A || a.Namespace != "" || a.Key != "href" || strings.TrimSpace(a.Val) != link {
					return placementError(0, "where a mail reader does not read it as a link's address")
				}
				if err := checkLinkAnchor(n.Attr, 0); err != nil {
					return err
				}
			}
			if secret && n.Data == "style" {
				var css strings.Builder
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.TextNode {
						css.WriteString(c.Data)
					}
				}
				if err := checkMailStyleSheet(css.String(), 0); err != nil {
					return err
				}
			}
			if secret && n.Data == "link" {
				return FieldErrorf(EINVALID, "html", "an email with {{%s}} cannot load a stylesheet (<link>)", LinkVariable)
			}
		case html.TextNode, html.CommentNode, html.DoctypeNode:
			if strings.Contains(n.Data, link) {
				where := "in the text"
				if n.Type == html.CommentNode {
					where = "in a comment"
				} else if p := n.Parent; p != nil && p.Type == html.ElementNode && rawTextTags[p.Data] {
					where = "inside <" + p.Data + ">"
				}
				return placementError(0, where)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

// tagShape is the sequence of tags of body with their attributes' names:
// what the variables must not change.
func tagShape(body string) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(body))
	for tt := z.Next(); tt != html.ErrorToken; tt = z.Next() {
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken && tt != html.EndTagToken {
			continue
		}
		tok := z.Token()
		b.WriteString(tok.Data)
		for _, a := range tok.Attr {
			b.WriteString(" " + a.Key)
		}
		b.WriteString("\n")
	}
	return b.String()
}
