package rules

import "strings"

// PseudonymDomain is where the pseudonyms of forgotten addresses live: a
// name that can never receive mail (RFC 2606).
const PseudonymDomain = "forgotten.invalid"

// Forgotten reports whether addr is the pseudonym of a forgotten address,
// to which no mail may go: it could never be delivered.
func Forgotten(addr string) bool {
	return strings.HasSuffix(strings.ToLower(strings.TrimSpace(addr)), "@"+PseudonymDomain)
}
