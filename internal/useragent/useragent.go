// Package useragent describes a browser's User-Agent header in plain
// words, with github.com/medama-io/go-useragent.
package useragent

import (
	"sync"

	ua "github.com/medama-io/go-useragent"
)

// The parser loads its data once, on first use: the CLI never pays for it.
var parser = sync.OnceValue(ua.NewParser)

// Describe says what a User-Agent header names: "Firefox on Windows",
// "Safari on iOS", or "Unknown browser". A browser driven by a program
// (headless Chrome) is still named as the browser it is.
func Describe(header string) string {
	if header == "" {
		return "Unknown browser"
	}
	a := parser().Parse(header)
	browser, os := string(a.Browser()), string(a.OS())
	switch {
	case browser == "" && a.IsBot():
		return "A program (" + trim(header) + ")"
	case browser == "" && os == "":
		return trim(header)
	case browser == "":
		return "A browser on " + os
	case os == "":
		return browser
	}
	return browser + " on " + os
}

func trim(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}
