package desk

import (
	"strings"

	"ticketgate/rules"
)

// authenticated reports whether the topmost Authentication-Results header
// (RFC 8601) from authservID shows dkim=pass or spf=pass for the domain of
// from. Only the topmost one counts: it is the one the receiving server
// added, and lower ones with the same id may have come with the message.
func authenticated(h rules.Header, authservID, from string) bool {
	at := strings.LastIndexByte(from, '@')
	if at < 0 || authservID == "" {
		return false
	}
	domain := strings.ToLower(from[at+1:])
	for _, v := range h["Authentication-Results"] {
		parts := strings.Split(stripComments(v), ";")
		id := strings.Fields(parts[0])
		if len(id) == 0 || !strings.EqualFold(id[0], authservID) {
			continue
		}
		for _, res := range parts[1:] {
			if resultPasses(res, domain) {
				return true
			}
		}
		return false
	}
	return false
}

// resultPasses reads one resinfo ("dkim=pass header.d=example.com") and
// reports whether it is a DKIM or SPF pass for domain.
func resultPasses(res, domain string) bool {
	props := map[string]string{}
	method, result := "", ""
	for i, f := range strings.Fields(res) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		k, v = strings.ToLower(k), strings.ToLower(strings.Trim(v, `"`))
		if i == 0 {
			method, result = k, v
			continue
		}
		props[k] = v
	}
	if result != "pass" {
		return false
	}
	switch method {
	case "dkim":
		return props["header.d"] == domain || domainOf(props["header.i"]) == domain
	case "spf":
		return domainOf(props["smtp.mailfrom"]) == domain
	}
	return false
}

// domainOf is the part after the last "@", or s itself without one.
func domainOf(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// stripComments removes (comments), which may hold ";" or "=".
func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}
