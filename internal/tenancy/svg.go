package tenancy

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"image/jpeg"
	"image/png"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// An SVG logo is checked against allow-lists, not cleaned and not checked
// against a list of known dangers: SVG is a document format that can hold
// script, HTML, links and style sheets, and every construct a deny-list
// missed (an XHTML root, <meta http-equiv=refresh>, a CSS escape such as
// \75rl( …) was one that reached browsers. What is not on the lists below
// is refused, with a message naming it; a logo needs none of it.
//
// No Go library fits: HTML sanitizers (bluemonday) parse as HTML, which
// folds SVG's case-sensitive names and namespaces, and they clean rather
// than refuse.
//
// Allowed: a root <svg> in the SVG namespace; the SVG elements of static
// vector art (shapes, text, gradients, patterns, clipping, masks, markers,
// filters) and <style>; their geometry attributes and the presentation
// attributes; links (href, xlink:href) only to the document's own parts
// (#id), and in <image> only to an embedded PNG or JPEG (design tools
// export logos with a raster mark embedded that way, and a PNG or JPEG
// can neither run script nor fetch anything). CSS, in <style> and style=,
// is parsed: rules with simple selectors, declarations of presentation
// properties only, values without escapes, and functions only from a short
// list, url() only as url(#id).
//
// Refused: DOCTYPE and entity declarations, processing instructions other
// than the XML declaration, elements or attributes of any other namespace
// (XHTML, Inkscape's…), script, foreignObject, animation (it can set a
// link after the check), <a>, event handlers, @ rules, backslashes in CSS.

const (
	svgNamespace   = "http://www.w3.org/2000/svg"
	xlinkNamespace = "http://www.w3.org/1999/xlink"
	xmlNamespace   = "http://www.w3.org/XML/1998/namespace"
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// svgElements are the elements a logo may have (names are case-sensitive).
var svgElements = setOf(
	"svg", "g", "defs", "symbol", "use", "title", "desc", "style",
	"path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
	"text", "tspan", "textPath",
	"linearGradient", "radialGradient", "stop", "pattern",
	"clipPath", "mask", "marker", "image",
	"filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite",
	"feConvolveMatrix", "feDiffuseLighting", "feDisplacementMap", "feDistantLight",
	"feDropShadow", "feFlood", "feFuncA", "feFuncB", "feFuncG", "feFuncR",
	"feGaussianBlur", "feMerge", "feMergeNode", "feMorphology", "feOffset",
	"fePointLight", "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence",
)

// svgPresentation are the presentation attributes, which are also the CSS
// properties a style may set. Their values are checked as CSS values.
// cursor and color-profile are left out: their values may name a URL.
var svgPresentation = setOf(
	"alignment-baseline", "baseline-shift", "clip", "clip-path", "clip-rule",
	"color", "color-interpolation", "color-interpolation-filters", "color-rendering",
	"direction", "display", "dominant-baseline", "enable-background",
	"fill", "fill-opacity", "fill-rule", "filter", "flood-color", "flood-opacity",
	"font", "font-family", "font-size", "font-size-adjust", "font-stretch",
	"font-style", "font-variant", "font-weight",
	"glyph-orientation-horizontal", "glyph-orientation-vertical", "image-rendering",
	"isolation", "kerning", "letter-spacing", "lighting-color",
	"marker", "marker-end", "marker-mid", "marker-start", "mask", "mix-blend-mode",
	"opacity", "overflow", "paint-order", "pointer-events", "shape-rendering",
	"stop-color", "stop-opacity", "stroke", "stroke-dasharray", "stroke-dashoffset",
	"stroke-linecap", "stroke-linejoin", "stroke-miterlimit", "stroke-opacity",
	"stroke-width", "text-anchor", "text-decoration", "text-rendering",
	"transform", "transform-origin", "unicode-bidi", "vector-effect",
	"visibility", "word-spacing", "writing-mode",
)

// svgTransforms are attributes holding a transform list, checked like CSS
// values (their functions are on the list below).
var svgTransforms = setOf("gradientTransform", "patternTransform")

// svgAttributes are the other attributes a logo may have: geometry, ids,
// units and filter parameters, none of which is read as a URL or as CSS.
var svgAttributes = setOf(
	"id", "class", "lang", "role", "aria-label", "aria-labelledby", "aria-describedby", "aria-hidden",
	"version", "baseProfile", "x", "y", "width", "height", "viewBox", "preserveAspectRatio",
	"d", "pathLength", "points", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "fr",
	"dx", "dy", "rotate", "textLength", "lengthAdjust", "startOffset", "method", "spacing", "side",
	"offset", "gradientUnits", "spreadMethod", "patternUnits", "patternContentUnits",
	"clipPathUnits", "maskUnits", "maskContentUnits",
	"markerWidth", "markerHeight", "markerUnits", "refX", "refY", "orient",
	"filterUnits", "primitiveUnits", "in", "in2", "result", "stdDeviation", "mode", "type",
	"values", "operator", "k1", "k2", "k3", "k4", "tableValues", "slope", "intercept",
	"amplitude", "exponent", "baseFrequency", "numOctaves", "seed", "stitchTiles", "scale",
	"xChannelSelector", "yChannelSelector", "radius", "order", "kernelMatrix", "divisor",
	"bias", "targetX", "targetY", "edgeMode", "preserveAlpha", "surfaceScale",
	"diffuseConstant", "specularConstant", "specularExponent", "kernelUnitLength",
	"azimuth", "elevation", "z", "pointsAtX", "pointsAtY", "pointsAtZ", "limitingConeAngle",
)

// cssFunctions are the functions a CSS value (or a transform list) may
// call, besides url(#id).
var cssFunctions = setOf(
	"rgb", "rgba", "hsl", "hsla",
	"matrix", "translate", "translatex", "translatey", "scale", "scalex", "scaley",
	"rotate", "skewx", "skewy",
)

var (
	// fragmentRE is a reference to a part of the document: #id.
	fragmentRE = regexp.MustCompile(`^#[A-Za-z0-9_.:-]+$`)
	// selectorRE is a list of simple selectors: types, classes, ids,
	// combinators; no attribute selectors, pseudo-classes or functions.
	selectorRE = regexp.MustCompile(`^[A-Za-z0-9_.#*,>+~ \t\r\n-]+$`)
	// embeddedImageRE is an embedded PNG or JPEG.
	embeddedImageRE = regexp.MustCompile(`^data:image/(png|jpeg);base64,([A-Za-z0-9+/=\s]+)$`)
)

// checkSVG parses an SVG and refuses anything not on the allow-lists.
func checkSVG(data []byte) (*LogoImage, error) {
	if !utf8.Valid(data) {
		return nil, errNotSVG
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	img := &LogoImage{ContentType: TypeSVG}
	var open []string // the names of the elements open, outermost first
	rootSeen := false
	var css strings.Builder // the text of the <style> element open
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !rootSeen {
				return nil, errNotSVG
			}
			return nil, logoInvalid("the SVG is not well-formed XML")
		}
		inStyle := len(open) > 0 && open[len(open)-1] == "style"
		switch t := tok.(type) {
		case xml.Directive:
			// A DOCTYPE can declare entities: expansion bombs, external files.
			return nil, logoInvalid("the SVG has a DOCTYPE or entity declaration, which logos may not have")
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, logoInvalid("the SVG has a <?%s?> instruction, which logos may not have", t.Target)
			}
		case xml.StartElement:
			if len(open) == 0 {
				if rootSeen || t.Name.Local != "svg" {
					return nil, errNotSVG
				}
				if t.Name.Space != svgNamespace {
					return nil, logoInvalid("the SVG's root element is not in the SVG namespace; it needs xmlns=%q", svgNamespace)
				}
				rootSeen = true
				img.Width, img.Height = svgSize(t.Attr)
			}
			if inStyle {
				return nil, logoInvalid("the SVG's <style> element holds a <%s> element; it may hold only CSS", t.Name.Local)
			}
			if err := checkSVGElement(t); err != nil {
				return nil, err
			}
			open = append(open, t.Name.Local)
			css.Reset()
		case xml.EndElement:
			if inStyle {
				if err := checkStyleSheet(css.String()); err != nil {
					return nil, err
				}
			}
			open = open[:len(open)-1]
		case xml.CharData:
			if inStyle {
				css.Write(t)
			}
		}
	}
	if !rootSeen {
		return nil, errNotSVG
	}
	return img, nil
}

func checkSVGElement(t xml.StartElement) error {
	name := t.Name.Local
	if t.Name.Space != svgNamespace {
		ns := t.Name.Space
		if ns == "" {
			ns = "none"
		}
		return logoInvalid("the SVG has a <%s> element of another namespace (%s), which logos may not have", name, ns)
	}
	if !svgElements[name] {
		return logoInvalid("the SVG has a <%s> element, which logos may not have", name)
	}
	for _, a := range t.Attr {
		if err := checkSVGAttr(name, a); err != nil {
			return err
		}
	}
	return nil
}

func checkSVGAttr(elem string, a xml.Attr) error {
	name := a.Name.Local
	switch a.Name.Space {
	case "":
	case "xmlns": // xmlns:PREFIX, a declaration
		if a.Value == svgNamespace || a.Value == xlinkNamespace {
			return nil
		}
		return logoInvalid("the SVG declares the namespace %s (xmlns:%s), which logos may not use", Quote(a.Value), name)
	case xlinkNamespace:
		if name == "href" {
			return checkSVGLink(elem, a.Value)
		}
		return logoInvalid("the SVG has an xlink:%s= attribute, which logos may not have", name)
	case xmlNamespace:
		if name == "space" || name == "lang" {
			return nil
		}
		return logoInvalid("the SVG has an xml:%s= attribute, which logos may not have", name)
	default:
		return logoInvalid("the SVG has a %s= attribute of another namespace (%s), which logos may not have", name, a.Name.Space)
	}
	switch {
	case name == "xmlns":
		if a.Value == svgNamespace {
			return nil
		}
		return logoInvalid("the SVG declares the namespace %s, which logos may not use", Quote(a.Value))
	case len(name) > 2 && strings.EqualFold(name[:2], "on"):
		return logoInvalid("the SVG has an %s= event handler, which logos may not have", name)
	case name == "href":
		return checkSVGLink(elem, a.Value)
	case name == "style":
		return checkDeclarations(a.Value)
	case svgPresentation[name] || svgTransforms[name]:
		return checkCSSValue(name, a.Value)
	case svgAttributes[name] || strings.HasPrefix(name, "data-"):
		// data-* attributes (Illustrator writes data-name) mean nothing
		// to a renderer.
		return nil
	}
	return logoInvalid("the SVG has a %s= attribute on <%s>, which logos may not have", name, elem)
}

// checkSVGLink allows links to the document's own parts (#id), and in
// <image> an embedded PNG or JPEG that is one.
func checkSVGLink(elem, v string) error {
	if fragmentRE.MatchString(strings.TrimSpace(v)) {
		return nil
	}
	if elem == "image" {
		if m := embeddedImageRE.FindStringSubmatch(strings.TrimSpace(v)); m != nil {
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(m[2]), ""))
			decode := png.DecodeConfig
			if m[1] == "jpeg" {
				decode = jpeg.DecodeConfig
			}
			if err == nil {
				if _, err = decode(bytes.NewReader(b)); err == nil {
					return nil
				}
			}
			return logoInvalid("the SVG embeds an image that is not a readable %s", m[1])
		}
	}
	shown := v
	if len(shown) > 80 {
		shown = shown[:80] + "…"
	}
	return logoInvalid("the SVG links to %s; a logo may only refer to its own parts (#id), or embed a PNG or JPEG image (data:image/png;base64,…)", Quote(shown))
}

// checkStyleSheet checks the CSS of a <style> element: rules with simple
// selectors whose declarations checkDeclarations accepts, and nothing else.
func checkStyleSheet(css string) error {
	css, err := cssText(css)
	if err != nil {
		return err
	}
	for rest := strings.TrimSpace(css); rest != ""; rest = strings.TrimSpace(rest) {
		open := strings.IndexByte(rest, '{')
		end := strings.IndexByte(rest, '}')
		if open < 0 || end < open {
			return logoInvalid("the SVG's style is not a list of rules (selector { property: value })")
		}
		sel := strings.TrimSpace(rest[:open])
		if !selectorRE.MatchString(sel) {
			return logoInvalid("the SVG's style has the selector %s; logos may use element names, .classes and #ids only", Quote(sel))
		}
		if err := declarations(rest[open+1 : end]); err != nil {
			return err
		}
		rest = rest[end+1:]
	}
	return nil
}

// checkDeclarations checks a style attribute: declarations of presentation
// properties with safe values.
func checkDeclarations(css string) error {
	css, err := cssText(css)
	if err != nil {
		return err
	}
	return declarations(css)
}

// cssText drops comments from CSS and refuses what no logo's CSS needs and
// what would let its meaning differ from what these checks read: escapes,
// @ rules, markup. A comment is dropped without leaving a space, so
// "ur/**/l(" is read as url(, which is stricter than a browser.
func cssText(css string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(css, "/*")
		if i < 0 {
			b.WriteString(css)
			break
		}
		b.WriteString(css[:i])
		j := strings.Index(css[i+2:], "*/")
		if j < 0 {
			break
		}
		css = css[i+2+j+2:]
	}
	css = b.String()
	switch {
	case strings.ContainsRune(css, '\\'):
		return "", logoInvalid("the SVG's style has a backslash escape, which logos may not have")
	case strings.ContainsRune(css, '@'):
		return "", logoInvalid("the SVG's style has an @ rule (such as @import), which logos may not have")
	case strings.ContainsRune(css, '<'):
		// Inlined into HTML, "</style>" would end the element.
		return "", logoInvalid("the SVG's style has markup in it, which logos may not have")
	}
	return css, nil
}

// declarations checks "property: value; …" (comments already dropped).
func declarations(css string) error {
	if strings.ContainsAny(css, "{}") {
		return logoInvalid("the SVG's style is not a list of rules (selector { property: value })")
	}
	for _, decl := range strings.Split(css, ";") {
		if strings.TrimSpace(decl) == "" {
			continue
		}
		prop, value, ok := strings.Cut(decl, ":")
		prop = strings.ToLower(strings.TrimSpace(prop))
		if !ok {
			return logoInvalid("the SVG's style has %s, which is not a declaration (property: value)", Quote(strings.TrimSpace(decl)))
		}
		if !svgPresentation[prop] {
			return logoInvalid("the SVG's style sets %s, which logos may not; only presentation properties (fill, stroke, font-…) may be set", Quote(prop))
		}
		value = strings.TrimSpace(value)
		if v, ok := cutSuffixFold(value, "!important"); ok {
			value = strings.TrimSpace(v)
		}
		if err := checkCSSValue(prop, value); err != nil {
			return err
		}
	}
	return nil
}

func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// checkCSSValue checks the value of a presentation property or attribute:
// no escapes, no markup, and functions only from cssFunctions, or url(#id).
func checkCSSValue(prop, v string) error {
	if strings.ContainsAny(v, "\\@<>{};") {
		return logoInvalid("the SVG's %s value %s has characters logos may not use there", prop, Quote(v))
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '(' {
			continue
		}
		start := i
		for start > 0 && isCSSNameByte(v[start-1]) {
			start--
		}
		fn := strings.ToLower(v[start:i])
		end := strings.IndexByte(v[i:], ')')
		if end < 0 {
			return logoInvalid("the SVG's %s value %s has an unclosed (", prop, Quote(v))
		}
		arg := v[i+1 : i+end]
		switch {
		case fn == "url":
			ref := strings.Trim(strings.TrimSpace(arg), `"'`)
			if !fragmentRE.MatchString(ref) {
				return logoInvalid("the SVG refers to %s with url(); a logo may only use url(#id)", Quote(arg))
			}
		case cssFunctions[fn]:
			if strings.ContainsAny(arg, `"'(`) {
				return logoInvalid("the SVG's %s value %s is not a plain %s()", prop, Quote(v), fn)
			}
		case fn == "":
			return logoInvalid("the SVG's %s value %s has a ( that is not a function call", prop, Quote(v))
		default:
			return logoInvalid("the SVG uses %s() in %s, which logos may not", fn, prop)
		}
		i += end
	}
	return nil
}

func isCSSNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
