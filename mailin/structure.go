package mailin

import (
	"bytes"
	"fmt"
	"strings"

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
	stack    []string // open multipart boundaries, outermost first
	parts    int
	top      bool // reading the top-level header
	inHeader bool
	inCtype  bool
	hdrBytes int
	ctype    []byte
}

func (s *structScan) line(line []byte, n int) string {
	if len(s.stack) > 0 && bytes.Contains(line, []byte("--")) {
		for i := len(s.stack) - 1; i >= 0; i-- {
			switch isDelimiter(line, s.stack[i]) {
			case 1:
				s.stack = s.stack[:i+1]
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
			s.stack = append(s.stack, b)
			if len(s.stack) > s.lim.MaxDepth {
				return fmt.Sprintf("MIME nesting deeper than %d", s.lim.MaxDepth)
			}
		}
		s.top = false
	case line[0] == ' ' || line[0] == '\t':
		if s.inCtype {
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
func isDelimiter(line []byte, boundary string) int {
	i := bytes.Index(line, []byte("--"+boundary))
	if i < 0 {
		return 0
	}
	if i > 0 {
		// enmime only splits at a line start, but counts any line that
		// holds a delimiter while it looks for the first one.
		return 3
	}
	rest := line[i+2+len(boundary):]
	if bytes.HasPrefix(rest, []byte("--")) {
		return 2
	}
	if len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r' || rest[0] == '\v' || rest[0] == '\f' {
		return 1
	}
	return 0
}
