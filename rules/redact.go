package rules

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// Redaction says what was removed from a text.
type Redaction struct {
	Kind  string // "card" or "ssn"
	Count int
}

// The texts that stand in for removed secrets. Neither contains a digit,
// so redacting twice changes nothing more.
const (
	cardMark = "[card number removed]"
	ssnMark  = "[SSN removed]"
)

// Redact replaces payment card numbers (13–19 digits, optionally grouped by
// single spaces (no-break ones too) or dashes, a space that ends a line
// counting as one, passing the Luhn check, with a non-digit/word
// boundary on both sides) by "[card number removed]" and US social security
// numbers (AAA-GG-SSSS or AAA GG SSSS, no-break spaces too, with the SSA
// validity rules: area not 000, 666 or 9xx; group not 00; serial not 0000)
// by "[SSN removed]".
// It returns the new text and what it removed (nil when nothing).
//
// A grouped card number must be grouped the way cards are printed: one
// separator kind throughout, a first group of four digits, further groups
// of three to six. Digits continuing a decimal number ("3.14159...",
// "1,4111...") are left alone, and so is an SSN-shaped piece of a longer
// dotted or dashed number ("1-123-45-6789"). Nor is a grouped number
// read inside a run of groups that starts within a word, such as an IBAN
// ("DE89 3704 0044 0532 0130 00"). Redact is idempotent.
func Redact(s string) (string, []Redaction) {
	out, red := RedactBytes([]byte(s))
	if red == nil {
		return s, nil
	}
	return string(out), red
}

// RedactBytes does the same on raw message bytes (plain 8-bit/ASCII runs
// only; content inside base64/QP encodings is not looked at), for the
// stored raw copy. It never modifies b; when nothing is found it returns b
// itself.
func RedactBytes(b []byte) ([]byte, []Redaction) {
	var red []Redaction
	cards := findCards(b)
	if len(cards) > 0 {
		b = replaceSpans(b, cards, cardMark)
		red = append(red, Redaction{Kind: "card", Count: len(cards)})
	}
	ssns := findSSNs(b)
	if len(ssns) > 0 {
		b = replaceSpans(b, ssns, ssnMark)
		red = append(red, Redaction{Kind: "ssn", Count: len(ssns)})
	}
	return b, red
}

// cutSpan is a byte range [start, end) to replace.
type cutSpan struct{ start, end int }

// replaceSpans returns a copy of b with each span (sorted, disjoint)
// replaced by mark.
func replaceSpans(b []byte, spans []cutSpan, mark string) []byte {
	var out bytes.Buffer
	out.Grow(len(b))
	last := 0
	for _, s := range spans {
		out.Write(b[last:s.start])
		out.WriteString(mark)
		last = s.end
	}
	out.Write(b[last:])
	return out.Bytes()
}

func asciiDigit(c byte) bool { return '0' <= c && c <= '9' }

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// leftOK reports whether a number may start at i: the rune before is no
// letter, digit or underscore, and no separator in seps that itself
// follows a digit (which would make the number the tail of a longer one).
func leftOK(b []byte, i int, seps string) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRune(b[:i])
	if r != utf8.RuneError && isWordRune(r) {
		return false
	}
	c := b[i-1]
	return !(bytes.IndexByte([]byte(seps), c) >= 0 && i >= 2 && asciiDigit(b[i-2]))
}

// rightOK is leftOK's mirror for a number ending just before i.
func rightOK(b []byte, i int, seps string) bool {
	if i >= len(b) {
		return true
	}
	r, _ := utf8.DecodeRune(b[i:])
	if r != utf8.RuneError && isWordRune(r) {
		return false
	}
	c := b[i]
	return !(bytes.IndexByte([]byte(seps), c) >= 0 && i+1 < len(b) && asciiDigit(b[i+1]))
}

// digitGroup is one run of digits inside a grouped number, with the byte that
// follows it when another group comes next.
type digitGroup struct {
	start, end int
	sep        byte
}

// digitRun returns the groups of the run of digits starting at i, joined
// by single spaces or dashes. A space that ends a line is a space too: a
// format=flowed client (RFC 3676) wraps a long line there, and the
// reader sees the groups side by side.
func digitRun(b []byte, i int) []digitGroup {
	var gs []digitGroup
	for {
		j := i
		for j < len(b) && asciiDigit(b[j]) {
			j++
		}
		g := digitGroup{start: i, end: j}
		if n := groupSep(b, j); n > 0 && j+n < len(b) && asciiDigit(b[j+n]) {
			g.sep = b[j]
			gs = append(gs, g)
			i = j + n
			continue
		}
		return append(gs, g)
	}
}

// groupSep is the length of the separator between two digit groups at
// b[j:]: a space or dash, a no-break space (noBreakSpace), or a soft line
// break (a space, then LF or CRLF); 0 for none.
func groupSep(b []byte, j int) int {
	switch {
	case j >= len(b):
		return 0
	case b[j] == '-':
		return 1
	case b[j] != ' ':
		return noBreakSpace(b[j:])
	case bytes.HasPrefix(b[j+1:], []byte("\r\n")):
		return 3
	case bytes.HasPrefix(b[j+1:], []byte("\n")):
		return 2
	}
	return 1
}

// noBreakSpace is the length of the no-break space b starts with (U+00A0,
// or the figure and narrow ones, U+2007 and U+202F), 0 for none. A reader
// sees a space: a number pasted from a web page or a PDF keeps the
// &nbsp; between its groups, and Outlook's plain text keeps it too.
func noBreakSpace(b []byte) int {
	for _, s := range []string{"\u00a0", "\u2007", "\u202f"} {
		if bytes.HasPrefix(b, []byte(s)) {
			return len(s)
		}
	}
	return 0
}

// findCards returns the card numbers in b, in order.
func findCards(b []byte) []cutSpan {
	var spans []cutSpan
	for i := 0; i < len(b); {
		if !asciiDigit(b[i]) {
			i++
			continue
		}
		gs := digitRun(b, i)
		spans = append(spans, cardsInRun(b, gs)...)
		i = gs[len(gs)-1].end
	}
	return spans
}

// cardsInRun picks card numbers from consecutive groups of one run: the
// earliest start first, and from it the longest number.
func cardsInRun(b []byte, gs []digitGroup) []cutSpan {
	var spans []cutSpan
	// A run glued to a word, as the groups of an IBAN ("DE89 3704 0044
	// ...") are to its country code, is one identifier: no grouped card
	// number starts inside it.
	glued := !leftOK(b, gs[0].start, "")
	for s := 0; s < len(gs); s++ {
		if s == 0 && !leftOK(b, gs[0].start, ".,") {
			continue
		}
		for e := min(len(gs)-1, s+18); e >= s; e-- {
			if e == len(gs)-1 && !rightOK(b, gs[e].end, ".,") || glued && e > s {
				continue
			}
			if isCard(b, gs[s:e+1]) {
				spans = append(spans, cutSpan{gs[s].start, gs[e].end})
				s = e
				break
			}
		}
	}
	return spans
}

// isCard reports whether the groups read as one printed card number.
func isCard(b []byte, gs []digitGroup) bool {
	var digits []byte
	for k, g := range gs {
		n := g.end - g.start
		if len(gs) > 1 {
			if k == 0 && n != 4 || k > 0 && (n < 3 || n > 6) {
				return false
			}
			if k < len(gs)-1 && g.sep != gs[0].sep {
				return false
			}
		}
		digits = append(digits, b[g.start:g.end]...)
		if len(digits) > 19 {
			return false
		}
	}
	return len(digits) >= 13 && digits[0] != '0' && luhn(digits)
}

// luhn reports whether the ASCII digits pass the Luhn check.
func luhn(digits []byte) bool {
	sum := 0
	for k := range digits {
		d := int(digits[len(digits)-1-k] - '0')
		if k%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// findSSNs returns the social security numbers in b, in order.
func findSSNs(b []byte) []cutSpan {
	var spans []cutSpan
	for i := 0; i+11 <= len(b); i++ {
		if !asciiDigit(b[i]) || i > 0 && asciiDigit(b[i-1]) {
			continue
		}
		if end := ssnAt(b, i); end > 0 && leftOK(b, i, "-./,") && rightOK(b, end, "-./,") {
			spans = append(spans, cutSpan{i, end})
			i = end - 1
		}
	}
	return spans
}

// ssnAt returns where the number at b[i:] ends when it reads AAA-GG-SSSS
// or AAA GG SSSS (the spaces may be no-break ones, the same twice) with
// a number the SSA could have issued; 0 when it does not.
func ssnAt(b []byte, i int) int {
	digits := func(at, n int) bool {
		if at+n > len(b) {
			return false
		}
		for _, c := range b[at : at+n] {
			if !asciiDigit(c) {
				return false
			}
		}
		return true
	}
	sep := func(at int) []byte {
		switch {
		case at >= len(b):
			return nil
		case b[at] == '-' || b[at] == ' ':
			return b[at : at+1]
		}
		return b[at : at+noBreakSpace(b[at:])]
	}
	if !digits(i, 3) {
		return 0
	}
	s := sep(i + 3)
	g := i + 3 + len(s)
	if len(s) == 0 || !digits(g, 2) || !bytes.HasPrefix(b[g+2:], s) || !digits(g+2+len(s), 4) {
		return 0
	}
	area, grp, serial := string(b[i:i+3]), string(b[g:g+2]), string(b[g+2+len(s):g+2+len(s)+4])
	if area == "000" || area == "666" || area[0] == '9' || grp == "00" || serial == "0000" {
		return 0
	}
	return g + 2 + len(s) + 4
}

// RedactMessage redacts a raw RFC 5322 message the way a person would: in
// the Subject (and Thread-Topic, Outlook's copy of it) and in body lines,
// looking at the bytes as sent (an encoded word or a quoted-printable body
// is not decoded), but never in other header fields or in MIME structure
// (boundary lines, boundary parameters, Message-ID and Content-ID lines),
// whose long digit runs are identifiers, not secrets, and whose change
// would break the message. Nor in the lines of a base64 body: what a
// person reads there is the decoded text (which the caller redacts on its
// own), and a run of digits in the encoding is no number anyone wrote, so
// changing it would only break the file.
func RedactMessage(raw []byte) ([]byte, []Redaction) {
	var out []byte // nil until a line changes; then raw up to here and every line since
	counts := map[string]int{}
	inHeader, inSubject := true, false
	// partHeader: in the header of a MIME part (after a "--" line until
	// the empty line); base64: the body being walked is base64.
	partHeader, base64 := false, false
	rest := raw
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line = rest[:i+1]
		}
		start := len(raw) - len(rest)
		rest = rest[len(line):]
		trimmed := bytes.TrimRight(line, "\r\n")
		redact := false
		switch {
		case inHeader && len(trimmed) == 0:
			inHeader = false
		case inHeader:
			if len(trimmed) > 0 && (trimmed[0] == ' ' || trimmed[0] == '\t') {
				redact = inSubject
			} else {
				inSubject = headerIs(trimmed, "subject:") || headerIs(trimmed, "thread-topic:")
				redact = inSubject
				base64 = base64 || isBase64Field(trimmed)
			}
		case boundaryLine(trimmed): // a part's header follows
			partHeader, base64 = true, false
		case partHeader && len(trimmed) == 0:
			partHeader = false
		case partHeader:
			base64 = base64 || isBase64Field(trimmed)
			redact = mayHoldSecret(trimmed) && !structural(trimmed)
		case base64:
		default:
			redact = mayHoldSecret(trimmed) && !structural(trimmed)
		}
		nl, red := line, []Redaction(nil)
		if redact {
			nl, red = RedactBytes(line)
		}
		if len(red) > 0 && out == nil {
			out = append(make([]byte, 0, len(raw)+len(cardMark)), raw[:start]...)
		}
		for _, r := range red {
			counts[r.Kind] += r.Count
		}
		if out != nil {
			out = append(out, nl...)
		}
	}
	if out == nil {
		return raw, nil
	}
	var red []Redaction
	for _, k := range []string{"card", "ssn"} {
		if counts[k] > 0 {
			red = append(red, Redaction{Kind: k, Count: counts[k]})
		}
	}
	return out, red
}

// mayHoldSecret reports whether line has the digits of an SSN (9) or a
// card number (13 or more): a line with fewer has nothing to redact, so
// the line walk of RedactMessage skips most lines at the cost of one
// pass over their bytes.
func mayHoldSecret(line []byte) bool {
	n := 0
	for _, c := range line {
		if asciiDigit(c) {
			if n++; n == 9 {
				return true
			}
		}
	}
	return false
}

// isBase64Field reports whether a header line is
// "Content-Transfer-Encoding: base64".
func isBase64Field(line []byte) bool {
	const name = "content-transfer-encoding:"
	return headerIs(line, name) && bytes.EqualFold(bytes.TrimSpace(line[len(name):]), []byte("base64"))
}

// headerIs reports whether line starts the header field name (given in
// lower case with its colon).
func headerIs(line []byte, name string) bool {
	return len(line) >= len(name) && bytes.EqualFold(line[:len(name)], []byte(name))
}

// boundaryLine reports a line that may be a MIME boundary ("--" and the
// boundary, or its closing form).
func boundaryLine(line []byte) bool { return bytes.HasPrefix(line, []byte("--")) }

// structural reports body lines that carry MIME structure or identifiers:
// boundary lines, a boundary parameter, and the identifier fields of a
// part's header (or of a message attached whole). A field name counts
// only where a field starts, at the start of the line: "my references:"
// in a sentence is text.
func structural(line []byte) bool {
	if boundaryLine(line) || bytes.Contains(bytes.ToLower(line), []byte("boundary=")) {
		return true
	}
	for _, name := range []string{"content-id:", "message-id:", "references:", "in-reply-to:"} {
		if headerIs(line, name) {
			return true
		}
	}
	return false
}
