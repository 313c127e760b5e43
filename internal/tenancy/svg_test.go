package tenancy_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

// SVG logos are checked against allow-lists: what is not on them is
// refused with a message naming it.
func TestSVGAllowListRefuses(t *testing.T) {
	t.Parallel()
	const ns = `xmlns="http://www.w3.org/2000/svg"`
	png := base64.StdEncoding.EncodeToString(pngOf(t, 4, 4))
	tests := []struct {
		name string
		svg  string
		msg  string
	}{
		// What passed the deny-list.
		{"XHTML root named svg, with <img src>", `<svg xmlns="http://www.w3.org/1999/xhtml"><img src="x" onerror="alert(1)"/></svg>`, "not in the SVG namespace"},
		{"XHTML root", `<html xmlns="http://www.w3.org/1999/xhtml"><body><img src="x" onerror="alert(1)"/></body></html>`, "not a PNG, JPEG, WebP or SVG image"},
		{"XHTML <img> inside", `<svg ` + ns + `><img xmlns="http://www.w3.org/1999/xhtml" src="https://evil.example/p.gif"/></svg>`, "<img> element of another namespace (http://www.w3.org/1999/xhtml)"},
		{"meta refresh", `<svg ` + ns + `><meta http-equiv="refresh" content="0;url=https://evil.example"/></svg>`, "<meta> element"},
		{"XHTML meta refresh", `<svg ` + ns + ` xmlns:h="http://www.w3.org/1999/xhtml"><h:meta http-equiv="refresh" content="0;url=https://evil.example"/></svg>`, "declares the namespace"},
		{"form", `<svg ` + ns + `><form action="https://evil.example"><input name="p"/></form></svg>`, "<form> element"},
		{"CSS escape in url", `<svg ` + ns + `><style>rect{fill:\75rl(https://evil.example/x)}</style></svg>`, "backslash escape"},
		{"CSS escape in url, style attribute", `<svg ` + ns + `><rect style="fill:\75rl(https://evil.example/x)"/></svg>`, "backslash escape"},
		{"CSS escape in @import", `<svg ` + ns + `><style>@\69mport url(https://evil.example/a.css);</style></svg>`, "backslash escape"},
		{"@import after a child element", `<svg ` + ns + `><style>rect{fill:red}<g/>@import url(https://evil.example/a.css);</style></svg>`, "<style> element holds a <g> element"},
		{"@import after CDATA", `<svg ` + ns + `><style><![CDATA[rect{fill:red}]]>@import url(https://evil.example/a.css);</style></svg>`, "@ rule"},
		{"@font-face", `<svg ` + ns + `><style>@font-face{font-family:x;src:url(https://evil.example/f)}</style></svg>`, "@ rule"},

		// The usual set.
		{"script", `<svg ` + ns + `><script>alert(1)</script></svg>`, "<script> element"},
		{"script by character reference", `<svg ` + ns + `><rect href="&#106;avascript:alert(1)"/></svg>`, `links to "javascript:alert(1)"`},
		{"foreignObject", `<svg ` + ns + `><foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject></svg>`, "<foreignObject> element"},
		{"onload", `<svg ` + ns + ` onload="alert(1)"/>`, "onload= event handler"},
		{"onmouseover", `<svg ` + ns + `><path d="M0 0" onmouseover="alert(1)"/></svg>`, "onmouseover= event handler"},
		{"ONCLICK", `<svg ` + ns + `><rect ONCLICK="alert(1)"/></svg>`, "ONCLICK= event handler"},
		{"javascript href", `<svg ` + ns + `><use href="javascript:alert(1)"/></svg>`, "links to"},
		{"data:text/html href", `<svg ` + ns + `><use href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"/></svg>`, "links to"},
		{"data:image/svg+xml in image", `<svg ` + ns + `><image href="data:image/svg+xml;base64,PHN2Zz4="/></svg>`, "links to"},
		{"external image", `<svg ` + ns + `><image href="https://evil.example/x.png"/></svg>`, "links to"},
		{"external xlink:href", `<svg ` + ns + ` xmlns:xlink="http://www.w3.org/1999/xlink"><use xlink:href="https://evil.example/s.svg#a"/></svg>`, "links to"},
		{"link element", `<svg ` + ns + `><a href="#a"><rect/></a></svg>`, "<a> element"},
		{"feImage", `<svg ` + ns + `><filter id="f"><feImage href="#a"/></filter></svg>`, "<feImage> element"},
		{"animation setting a link", `<svg ` + ns + `><use href="#a"><set attributeName="href" to="javascript:alert(1)"/></use></svg>`, "<set> element"},
		{"iframe", `<svg ` + ns + `><iframe src="https://evil.example"/></svg>`, "<iframe> element"},
		{"DOCTYPE with entities", `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><svg ` + ns + `>&b;</svg>`, "DOCTYPE"},
		{"external entity", `<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg ` + ns + `>&x;</svg>`, "DOCTYPE"},
		{"undeclared entity", `<svg ` + ns + `><text>&x;</text></svg>`, "not well-formed"},
		{"stylesheet instruction", `<?xml-stylesheet href="https://evil.example/a.css"?><svg ` + ns + `/>`, "<?xml-stylesheet?> instruction"},
		{"no namespace", `<svg width="10" height="10"/>`, "not in the SVG namespace"},
		{"foreign attribute", `<svg ` + ns + ` xmlns:ev="http://www.w3.org/2001/xml-events"><rect ev:event="click"/></svg>`, "declares the namespace"},
		{"undeclared prefix", `<svg ` + ns + `><rect x:onclick="alert(1)"/></svg>`, "of another namespace"},
		{"unknown attribute", `<svg ` + ns + `><rect src="https://evil.example"/></svg>`, "src= attribute on <rect>"},
		{"xml:base", `<svg ` + ns + ` xml:base="https://evil.example/"/>`, "xml:base= attribute"},
		{"external url in fill", `<svg ` + ns + `><rect fill="url(https://evil.example/p#x)"/></svg>`, "url()"},
		{"external url in style", `<svg ` + ns + `><rect style="fill: url('//evil.example/p')"/></svg>`, "url()"},
		{"url split by a comment", `<svg ` + ns + `><rect style="fill: ur/**/l(https://evil.example/p)"/></svg>`, "url()"},
		{"expression", `<svg ` + ns + `><rect style="fill: expression(alert(1))"/></svg>`, "expression() in fill"},
		{"var", `<svg ` + ns + `><rect style="fill: var(--x)"/></svg>`, "var() in fill"},
		{"cursor", `<svg ` + ns + `><rect style="cursor: url(https://evil.example/c), auto"/></svg>`, `sets "cursor"`},
		{"behavior", `<svg ` + ns + `><style>rect{behavior:url(#x)}</style></svg>`, `sets "behavior"`},
		{"attribute selector", `<svg ` + ns + `><style>rect[fill^="a"]{fill:red}</style></svg>`, "selector"},
		{"markup in style", `<svg ` + ns + `><style>rect{fill:red}&lt;/style&gt;&lt;script&gt;alert(1)&lt;/script&gt;</style></svg>`, "markup"},
		{"not a PNG behind data:image/png", `<svg ` + ns + `><image href="data:image/png;base64,` + base64.StdEncoding.EncodeToString([]byte("<script>")) + `"/></svg>`, "not a readable png"},
		{"PNG data in use", `<svg ` + ns + `><use href="data:image/png;base64,` + png + `"/></svg>`, "links to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := tenancy.DefaultLogoLimits.Check([]byte(tt.svg))
			if err == nil {
				t.Fatalf("accepted as %+v", img)
			}
			if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q (%s), want one line with %q (invalid)", err, tenancy.ErrorCode(err), tt.msg)
			}
		})
	}
}

// Logos as design tools write them still pass.
func TestSVGAllowListAccepts(t *testing.T) {
	t.Parallel()
	png := base64.StdEncoding.EncodeToString(pngOf(t, 4, 4))
	jpg := base64.StdEncoding.EncodeToString(jpegOf(t, 4, 4))
	tests := []struct {
		name string
		svg  string
		w, h int
	}{
		{"paths and groups", `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40" version="1.1">
  <title>Acme</title><desc>The Acme logo</desc>
  <g id="mark" fill="#ff6b35" fill-rule="evenodd" transform="translate(4 4) rotate(15 16 16) scale(0.5)">
    <path d="M0 0h32v32H0z" stroke="#004e89" stroke-width="2" stroke-linejoin="round"/>
    <circle cx="16" cy="16" r="8" opacity=".5"/><ellipse cx="8" cy="8" rx="3" ry="2"/>
    <polygon points="0,0 10,0 5,8"/><polyline points="0 0 4 4 8 0" fill="none"/>
    <line x1="0" y1="0" x2="10" y2="10" stroke-dasharray="2 1"/>
    <rect x="1" y="1" width="4" height="4" rx="1"/>
  </g>
</svg>`, 120, 40},
		{"gradients", `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 64 64">
  <defs>
    <linearGradient id="a" x1="0" y1="0" x2="1" y2="1" gradientUnits="objectBoundingBox" gradientTransform="rotate(45)">
      <stop offset="0" stop-color="#fff"/><stop offset="1" stop-color="rgb(0, 78, 137)" stop-opacity="0.8"/>
    </linearGradient>
    <radialGradient id="b" xlink:href="#a" cx=".5" cy=".5" r=".5" fx=".4" fy=".4" spreadMethod="pad"/>
  </defs>
  <rect width="64" height="64" fill="url(#a)"/><circle r="20" cx="32" cy="32" style="fill: url('#b') !important"/>
</svg>`, 64, 64},
		{"text", `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 50">
  <text x="10" y="35" font-family="'Helvetica Neue', Arial, sans-serif" font-size="32" font-weight="700" letter-spacing="-1" text-anchor="start" xml:space="preserve">Acme <tspan fill="#ff6b35" dx="2">Corp</tspan></text>
</svg>`, 200, 50},
		{"Illustrator style sheet", `<svg xmlns="http://www.w3.org/2000/svg" id="Layer_1" data-name="Layer 1" viewBox="0 0 100 30" width="100" height="30">
  <defs><style>.cls-1{fill:#231f20;}.cls-2,.cls-3{fill:url(#linear-gradient);stroke:#fff;stroke-miterlimit:10}
  /* brand colors */ svg > g .cls-3 { opacity: 0.9 }</style>
  <linearGradient id="linear-gradient" x1="0" y1="0" x2="100" y2="0"><stop offset="0" stop-color="#ed1c24"/><stop offset="1" stop-color="#f7941d"/></linearGradient></defs>
  <g><path class="cls-1" d="M0 0h10v10H0z"/><path class="cls-2" d="M20 0h10v10H20z"/></g>
</svg>`, 100, 30},
		{"CDATA style", `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><style type="text/css"><![CDATA[ rect { fill: hsl(20, 100%, 50%) } ]]></style><rect width="10" height="10"/></svg>`, 10, 10},
		{"clip path, mask, symbol and use", `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
  <defs><clipPath id="c" clipPathUnits="userSpaceOnUse"><circle r="16" cx="16" cy="16"/></clipPath>
  <mask id="m"><rect width="32" height="32" fill="#fff"/></mask>
  <symbol id="s" viewBox="0 0 8 8"><rect width="8" height="8"/></symbol></defs>
  <g clip-path="url(#c)" mask="url(#m)"><use href="#s" x="4" y="4" width="8" height="8"/></g>
</svg>`, 32, 32},
		{"drop shadow filter", `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40">
  <filter id="f" x="-10%" y="-10%" width="120%" height="120%"><feGaussianBlur in="SourceAlpha" stdDeviation="2"/><feOffset dx="1" dy="1" result="o"/><feMerge><feMergeNode in="o"/><feMergeNode in="SourceGraphic"/></feMerge></filter>
  <rect width="30" height="30" filter="url(#f)"/>
</svg>`, 40, 40},
		{"embedded PNG and JPEG", `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 8 4">
  <image width="4" height="4" href="data:image/png;base64,` + png + `"/>
  <image x="4" width="4" height="4" xlink:href="data:image/jpeg;base64,` + jpg[:len(jpg)/2] + "\n    " + jpg[len(jpg)/2:] + `"/>
</svg>`, 8, 4},
		{"accessible", `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="t" viewBox="0 0 10 10"><title id="t">Acme</title><!-- a comment --><rect width="10" height="10" aria-hidden="true"/></svg>`, 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := tenancy.DefaultLogoLimits.Check([]byte(tt.svg))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if img.ContentType != tenancy.TypeSVG || img.Width != tt.w || img.Height != tt.h {
				t.Errorf("got %s %d×%d, want %d×%d", img.ContentType, img.Width, img.Height, tt.w, tt.h)
			}
		})
	}
}
