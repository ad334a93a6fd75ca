package mailin

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"

	"github.com/jhillyerd/enmime/v2/mediatype"
)

// checkStructure scans the message once, line by line, following the
// multipart boundaries the way enmime will, and reports the first
// structural limit the message breaks, or "". It keeps no bodies: memory
// is the boundary stack and one Content-Type value.
func checkStructure(raw []byte, lim Limits) string {
	s := structScan{lim: lim, inHeader: true, top: true}
	for pos := 0; pos < len(raw); {
		line, next := nextLine(raw, pos)
		if msg := s.line(line, next-pos); msg != "" {
			return msg
		}
		pos = next
	}
	return ""
}

type structScan struct {
	lim      Limits
	stack    []openMultipart // outermost first
	parts    int
	top      bool // reading the top-level header
	inHeader bool
	inCtype  bool
	hdrBytes int
	ctype    []byte
}

// openMultipart is a multipart being read: its boundary, and whether its
// first part has begun (before it, in the preamble, enmime takes a
// delimiter anywhere in a line).
type openMultipart struct {
	boundary string
	started  bool
}

func (s *structScan) line(line []byte, n int) string {
	if len(s.stack) > 0 && bytes.Contains(line, []byte("--")) {
		for i := len(s.stack) - 1; i >= 0; i-- {
			preamble := i == len(s.stack)-1 && !s.stack[i].started
			switch delimiterIn(line, s.stack[i].boundary, preamble) {
			case 1:
				s.stack = s.stack[:i+1]
				s.stack[i].started = true
				s.parts++
				if s.parts > s.lim.MaxParts {
					return fmt.Sprintf("more than %d MIME parts", s.lim.MaxParts)
				}
				s.inHeader, s.inCtype, s.hdrBytes, s.ctype = true, false, 0, s.ctype[:0]
				return ""
			case 2:
				s.stack = s.stack[:i]
				s.inHeader = false
				return ""
			case 3:
				s.parts++
				if s.parts > s.lim.MaxParts {
					return fmt.Sprintf("more than %d MIME parts", s.lim.MaxParts)
				}
			}
		}
	}
	if !s.inHeader {
		return ""
	}
	s.hdrBytes += n
	if s.hdrBytes > s.lim.MaxHeaderBytes {
		return fmt.Sprintf("a header is larger than %d bytes", s.lim.MaxHeaderBytes)
	}
	switch {
	case len(line) == 0:
		s.inHeader = false
		if b, ok := s.boundary(); ok {
			s.stack = append(s.stack, openMultipart{boundary: b})
			if len(s.stack) > s.lim.MaxDepth {
				return fmt.Sprintf("MIME nesting deeper than %d", s.lim.MaxDepth)
			}
		}
		s.top = false
	case line[0] == ' ' || line[0] == '\t':
		if s.inCtype {
			s.ctype = append(s.ctype, line...)
		}
	case bytes.IndexByte(line, ':') < 0:
		// enmime takes a line without a colon for more of the field
		// before it, joined with a space.
		if s.inCtype {
			s.ctype = append(s.ctype, ' ')
			s.ctype = append(s.ctype, line...)
		}
	case len(s.ctype) == 0 && len(line) >= 13 && bytes.EqualFold(line[:13], []byte("content-type:")):
		s.inCtype = true
		s.ctype = append(s.ctype, ' ')
		s.ctype = append(s.ctype, line[13:]...)
	default:
		s.inCtype = false
	}
	return ""
}

// boundary is the boundary of the header just read if enmime will treat
// the part as multipart: at the top only multipart types, below any type
// but text/plain and text/html that names a boundary. A top-level
// multipart that names none is split at lines of "--" (enmime reads it
// with an empty boundary), so its boundary is "" and ok is true.
func (s *structScan) boundary() (b string, ok bool) {
	if len(s.ctype) == 0 {
		return "", false
	}
	// enmime reads the value trimmed; the parser reads " multipart/"
	// (no subtype) as another type than "multipart/".
	mt, params, _, _ := mediatype.Parse(strings.TrimSpace(string(s.ctype)))
	mt = strings.ToLower(mt)
	if s.top {
		return params["boundary"], strings.HasPrefix(mt, "multipart/")
	}
	if mt == "text/plain" || mt == "text/html" {
		return "", false
	}
	return params["boundary"], params["boundary"] != ""
}

// isDelimiter reports 1 for a "--boundary" delimiter line, 2 for the
// closing "--boundary--", 3 for a delimiter later in the line, 0
// otherwise.
func isDelimiter(line []byte, boundary string) int { return delimiterIn(line, boundary, false) }

// delimiterIn is isDelimiter for a line of a multipart's preamble when
// preamble is set: there enmime looks for the first delimiter anywhere in
// a line, and a part (with its header) begins after it. Elsewhere it
// only splits at a line start; a delimiter later in the line is counted
// as a part all the same (3), which can only overcount.
func delimiterIn(line []byte, boundary string, preamble bool) int {
	i := bytes.Index(line, []byte("--"+boundary))
	if i < 0 {
		return 0
	}
	if i > 0 && !preamble {
		return 3
	}
	rest := line[i+2+len(boundary):]
	switch {
	case bytes.HasPrefix(rest, []byte("--")):
		return 2
	case len(rest) == 0 || unicode.IsSpace(rune(rest[0])): // as enmime tests what follows
		return 1
	case i > 0:
		return 3
	}
	return 0
}
