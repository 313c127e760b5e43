package tenancy_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/nself/nself/internal/tenancy"
)

// pngOf encodes a real PNG of w×h pixels.
func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngClaiming is a PNG whose header claims w×h pixels, with a valid CRC,
// and no pixels behind it: a decompression bomb's header.
func pngClaiming(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 0 // 8-bit grayscale
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	b.Write(make([]byte, 64))
	return b.Bytes()
}

func jpegOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// webp builds a WebP file with one chunk.
func webp(chunk string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(12+len(body)))
	b.WriteString("WEBP" + chunk)
	binary.Write(&b, binary.LittleEndian, uint32(len(body)))
	b.Write(body)
	return b.Bytes()
}

func webpLossy(w, h uint16) []byte {
	body := []byte{0, 0, 0, 0x9d, 0x01, 0x2a, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(body[6:], w)
	binary.LittleEndian.PutUint16(body[8:], h)
	return webp("VP8 ", append(body, make([]byte, 16)...))
}

func webpLossless(w, h uint32) []byte {
	body := make([]byte, 20)
	body[0] = 0x2f
	binary.LittleEndian.PutUint32(body[1:], (w-1)|(h-1)<<14)
	return webp("VP8L", body)
}

func webpExtended(w, h uint32) []byte {
	body := make([]byte, 20)
	w, h = w-1, h-1
	body[4], body[5], body[6] = byte(w), byte(w>>8), byte(w>>16)
	body[7], body[8], body[9] = byte(h), byte(h>>8), byte(h>>16)
	return webp("VP8X", body)
}

func svg(inner string) []byte {
	return []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="120" height="40">` + inner + `</svg>`)
}

func TestLogoCheckAccepts(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		ct   string
		w, h int
	}{
		{"png", pngOf(t, 64, 32), tenancy.TypePNG, 64, 32},
		{"png at the limit", pngClaiming(4096, 4096), tenancy.TypePNG, 4096, 4096},
		{"jpeg", jpegOf(t, 50, 20), tenancy.TypeJPEG, 50, 20},
		{"webp lossy", webpLossy(300, 100), tenancy.TypeWebP, 300, 100},
		{"webp lossless", webpLossless(16, 16), tenancy.TypeWebP, 16, 16},
		{"webp extended", webpExtended(1000, 500), tenancy.TypeWebP, 1000, 500},
		{"svg", svg(`<rect width="10" height="10" fill="#123456"/>`), tenancy.TypeSVG, 120, 40},
		{"svg local refs", svg(`<defs><linearGradient id="g"/></defs><use href="#a"/><use xlink:href="#b"/><rect fill="url(#g)" style="fill: url('#g')"/><style>rect{fill:url(#g)}</style>`), tenancy.TypeSVG, 120, 40},
		{"svg viewBox only", []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M0 0h24v24H0z"/></svg>`), tenancy.TypeSVG, 24, 24},
		{"svg no size", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><circle r="3"/></svg>`), tenancy.TypeSVG, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := tenancy.DefaultLogoLimits.Check(tt.data)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if img.ContentType != tt.ct || img.Width != tt.w || img.Height != tt.h {
				t.Errorf("got %s %d×%d, want %s %d×%d", img.ContentType, img.Width, img.Height, tt.ct, tt.w, tt.h)
			}
		})
	}
}

func TestLogoCheckRefuses(t *testing.T) {
	small := tenancy.LogoLimits{MaxBytes: 1000, MaxWidth: 100, MaxHeight: 100}
	tests := []struct {
		name   string
		limits tenancy.LogoLimits
		data   []byte
		msg    string
	}{
		{"empty", tenancy.DefaultLogoLimits, nil, "the file is empty"},
		{"gif", tenancy.DefaultLogoLimits, []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "not a PNG, JPEG, WebP or SVG image"},
		{"text", tenancy.DefaultLogoLimits, []byte("hello, world"), "not a PNG, JPEG, WebP or SVG image"},
		{"html", tenancy.DefaultLogoLimits, []byte("<html><script>alert(1)</script></html>"), "not a PNG, JPEG, WebP or SVG image"},
		{"exe named png", tenancy.DefaultLogoLimits, append([]byte("MZ\x90\x00"), make([]byte, 100)...), "not a PNG, JPEG, WebP or SVG image"},
		{"png magic, garbage after", tenancy.DefaultLogoLimits, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 40)...), "not a readable png image"},
		{"jpeg magic, garbage after", tenancy.DefaultLogoLimits, []byte("\xff\xd8\xff\x00\x00garbage"), "not a readable jpeg image"},
		{"riff not webp", tenancy.DefaultLogoLimits, append([]byte("RIFF\x00\x00\x00\x00WAVEfmt "), make([]byte, 30)...), "not a PNG, JPEG, WebP or SVG image"},
		{"webp bad chunk", tenancy.DefaultLogoLimits, webp("ABCD", make([]byte, 20)), "not a readable webp image"},
		{"webp bad start code", tenancy.DefaultLogoLimits, webp("VP8 ", make([]byte, 20)), "not a readable webp image"},
		{"webp truncated", tenancy.DefaultLogoLimits, []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "not a readable webp image"},
		{"over the byte limit", small, append(pngOf(t, 10, 10), make([]byte, 1000)...), "a logo may be at most 1000 bytes"},
		{"over 2 MB", tenancy.DefaultLogoLimits, make([]byte, 2<<20+1), "the file is 2.0 MB; a logo may be at most 2.0 MB"},
		{"huge png dimensions", tenancy.DefaultLogoLimits, pngClaiming(100000, 100000), "100000×100000 pixels; a logo may be at most 4096×4096"},
		{"png one pixel too wide", tenancy.DefaultLogoLimits, pngClaiming(4097, 10), "4097×10 pixels"},
		{"png over configured limit", small, pngOf(t, 101, 5), "101×5 pixels; a logo may be at most 100×100"},
		{"jpeg too tall", small, jpegOf(t, 5, 200), "5×200 pixels"},
		{"webp lossy too big", tenancy.DefaultLogoLimits, webpLossy(16000, 16000), "16000×16000 pixels"},
		{"webp extended too big", tenancy.DefaultLogoLimits, webpExtended(1<<24, 1<<24), "16777216×16777216 pixels"},
		{"svg too big", tenancy.DefaultLogoLimits, []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="5000" height="10"/>`), "5000×10 pixels"},
		{"svg negative size", tenancy.DefaultLogoLimits, []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 -5 -5"/>`), "pixels"},
		{"svg script", tenancy.DefaultLogoLimits, svg(`<script>alert(1)</script>`), "<script> element"},
		{"svg namespaced script", tenancy.DefaultLogoLimits, svg(`<x:script xmlns:x="http://www.w3.org/2000/svg">alert(1)</x:script>`), "<script> element"},
		{"svg SCRIPT", tenancy.DefaultLogoLimits, svg(`<SCRIPT>alert(1)</SCRIPT>`), "<SCRIPT> element"},
		{"svg onload", tenancy.DefaultLogoLimits, []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), "onload= event handler"},
		{"svg onclick inside", tenancy.DefaultLogoLimits, svg(`<rect onClick="alert(1)"/>`), "onClick= event handler"},
		{"svg javascript href", tenancy.DefaultLogoLimits, svg(`<use href="javascript:alert(1)"/>`), `links to "javascript:alert(1)"`},
		{"svg javascript xlink:href", tenancy.DefaultLogoLimits, svg(`<use xlink:href=" JaVa&#9;Script:alert(1)"/>`), "links to"},
		{"svg link element", tenancy.DefaultLogoLimits, svg(`<a href="#x"><rect/></a>`), "<a> element"},
		{"svg external href", tenancy.DefaultLogoLimits, svg(`<image href="https://evil.example/x.png"/>`), `links to "https://evil.example/x.png"`},
		{"svg external use", tenancy.DefaultLogoLimits, svg(`<use xlink:href="other.svg#a"/>`), `links to "other.svg#a"`},
		{"svg data href", tenancy.DefaultLogoLimits, svg(`<image href="data:image/svg+xml;base64,PHN2Zz4="/>`), "links to"},
		{"svg foreignObject", tenancy.DefaultLogoLimits, svg(`<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>`), "<foreignObject> element"},
		{"svg iframe", tenancy.DefaultLogoLimits, svg(`<iframe src="https://evil.example"/>`), "<iframe> element"},
		{"svg external url in style", tenancy.DefaultLogoLimits, svg(`<rect style="fill: url(https://evil.example/track)"/>`), "url()"},
		{"svg external url in attribute", tenancy.DefaultLogoLimits, svg(`<rect fill="url('//evil.example/p#x')"/>`), "url()"},
		{"svg style import", tenancy.DefaultLogoLimits, svg(`<style>@import "https://evil.example/a.css";</style>`), "@ rule"},
		{"svg style url", tenancy.DefaultLogoLimits, svg(`<style>rect{fill:url(https://evil.example/b)}</style>`), "url()"},
		{"svg style other property", tenancy.DefaultLogoLimits, svg(`<style>rect{background:red}</style>`), `sets "background"`},
		{"svg style expression", tenancy.DefaultLogoLimits, svg(`<style>rect{fill:expression(alert(1))}</style>`), "expression() in fill"},
		{"svg animate href", tenancy.DefaultLogoLimits, svg(`<use href="#a"><set attributeName="href" to="#x"/></use>`), "<set> element"},
		{"svg javascript in values", tenancy.DefaultLogoLimits, svg(`<animate attributeName="x" values="javascript:alert(1)"/>`), "<animate> element"},
		{"svg doctype entity", tenancy.DefaultLogoLimits, []byte(`<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>`), "DOCTYPE"},
		{"svg stylesheet instruction", tenancy.DefaultLogoLimits, []byte(`<?xml-stylesheet href="https://evil.example/a.css"?><svg xmlns="http://www.w3.org/2000/svg"/>`), "<?xml-stylesheet?> instruction"},
		{"svg not well-formed", tenancy.DefaultLogoLimits, []byte(`<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>`), "not well-formed"},
		{"svg two roots", tenancy.DefaultLogoLimits, []byte(`<svg xmlns="http://www.w3.org/2000/svg"/><svg/>`), "not a PNG, JPEG, WebP or SVG image"},
		{"xml not svg", tenancy.DefaultLogoLimits, []byte(`<html xmlns="http://www.w3.org/1999/xhtml"/>`), "not a PNG, JPEG, WebP or SVG image"},
		{"svg not utf-8", tenancy.DefaultLogoLimits, []byte("<svg>\xff\xfe</svg>"), "not a PNG, JPEG, WebP or SVG image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := tt.limits.Check(tt.data)
			if err == nil {
				t.Fatalf("accepted as %+v", img)
			}
			if tenancy.ErrorCode(err) != tenancy.EINVALID || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q (%s), want %q (invalid)", err, tenancy.ErrorCode(err), tt.msg)
			}
		})
	}
}

func TestParseLogoKind(t *testing.T) {
	for _, k := range []string{"main", "icon", "email", "dark"} {
		if got, err := tenancy.ParseLogoKind(k); err != nil || string(got) != k {
			t.Errorf("ParseLogoKind(%q) = %q, %v", k, got, err)
		}
	}
	for _, k := range []string{"", "Main", "favicon", "../x"} {
		if _, err := tenancy.ParseLogoKind(k); tenancy.ErrorCode(err) != tenancy.EINVALID {
			t.Errorf("ParseLogoKind(%q) = %v, want invalid", k, err)
		}
	}
}
