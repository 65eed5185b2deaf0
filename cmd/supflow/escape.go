package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable escapes what a terminal or a log reader would not show as
// text: control characters (a newline, a carriage return, an escape
// sequence), other non-printing runes and invalid UTF-8, as a Go string
// literal writes them (\n, \x1b, \u200b). File names, object keys and
// paths come from data sets and configurations; errors of other packages
// may hold them raw.
func printable(s string) string { return escape(s, false) }

// errorText is printable for an error printed on stderr, but for its
// newlines (errors.Join puts one between errors): each line after the
// first is indented, so that no part of an error can pass for another line
// of output ("supflow <command>: ..." or a log record).
func errorText(s string) string { return escape(s, true) }

func escape(s string, lines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&15, 16))
		case r == '\n' && lines:
			b.WriteString("\n  ")
		case !unicode.IsPrint(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += max(n, 1)
	}
	return b.String()
}
