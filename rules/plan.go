package rules

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Plan is a customer plan: who is on it and how high they may raise a ticket.
type Plan struct {
	Name        string
	Match       []string // "@bigcorp.com" (exact domain, no subdomains) or "vip@example.org"
	MaxPriority Priority // the highest priority a customer on the plan can ask for
}

// defaultPlan is the plan of everyone no configured plan matches.
var defaultPlan = Plan{Name: "standard", MaxPriority: PriorityHigh}

// PlanFor returns the first plan matching the address (case-insensitive), or
// the default plan {Name: "standard", MaxPriority: high}. A matching plan
// without a MaxPriority is returned with high, so that a gap in the
// configuration never silently lowers every ticket to low.
func PlanFor(plans []Plan, addr string) Plan {
	addr = strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>"))
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return defaultPlan
	}
	domain := addr[at:]
	for _, p := range plans {
		for _, m := range p.Match {
			m = strings.ToLower(strings.TrimSpace(m))
			if m == "" || (m != domain && m != addr) {
				continue
			}
			if _, ok := ParsePriority(string(p.MaxPriority)); !ok {
				p.MaxPriority = PriorityHigh
			}
			return p
		}
	}
	return defaultPlan
}

// AsksEscalation reports whether a customer's own (visible) text asks to
// escalate: "please escalate", "escalate this", "I want to escalate", "bitte
// eskalieren", "I request an escalation", ... but not "this is not urgent, no
// need to escalate": a negation ("not", "no", "don't", "never", "nicht",
// "kein", ...) earlier in the same clause, at most six words before, cancels
// it. Clauses end at punctuation and at "but"/"aber". A mere mention of
// "escalation" or "escalated" counts only together with a request word in its clause
// ("request", "want", "need", "please", "bitte", "möchte", ...).
func AsksEscalation(visible string) bool {
	// Most mail never mentions it; skip the word walk for those.
	if !mentionsEscal(visible) {
		return false
	}
	for _, clause := range clauses(visible) {
		for i, w := range clause {
			if !escalationVerb(w) && !(escalationNoun(w) && hasRequestWord(clause)) {
				continue
			}
			if !negatedBefore(clause, i) {
				return true
			}
		}
	}
	return false
}

// mentionsEscal reports whether s holds "escal" or "eskal" in any case,
// as strings.ToLower(s) would. ASCII, most of mail, is compared as it is
// (for an ASCII byte b, b|0x20 is one of these lower-case letters only
// when b is that letter in either case); from the first other byte on,
// s is lowered and searched whole.
func mentionsEscal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			low := strings.ToLower(s)
			return strings.Contains(low, "escal") || strings.Contains(low, "eskal")
		}
		if i+5 <= len(s) && s[i]|0x20 == 'e' && s[i+1]|0x20 == 's' && (s[i+2]|0x20 == 'c' || s[i+2]|0x20 == 'k') && s[i+3]|0x20 == 'a' && s[i+4]|0x20 == 'l' {
			return true
		}
	}
	return false
}

// escalationVerb is a word asking for escalation on its own.
func escalationVerb(w string) bool {
	switch w {
	case "escalate", "escalating", "eskalieren", "eskaliert", "eskaliere", "eskalier":
		return true
	}
	return false
}

// escalationNoun is a word that asks for escalation only next to a request
// word: "please have this escalated", but not "it was escalated last week".
func escalationNoun(w string) bool {
	return w == "escalation" || w == "escalated" || w == "eskalation"
}

func hasRequestWord(clause []string) bool {
	for _, w := range clause {
		switch w {
		case "request", "requesting", "want", "need", "please", "ask", "asking", "demand",
			"bitte", "möchte", "moechte", "verlange", "fordere":
			return true
		}
	}
	return false
}

// negatedBefore reports whether one of the six words before clause[i] negates it.
func negatedBefore(clause []string, i int) bool {
	for j := max(0, i-6); j < i; j++ {
		w := clause[j]
		if strings.HasSuffix(w, "n't") {
			return true
		}
		switch w {
		case "no", "not", "dont", "never", "without", "nicht", "kein", "keine", "keinen", "ohne", "nie":
			return true
		}
	}
	return false
}

// clauses splits text into clauses of lower-case words. Clauses end at
// sentence and clause punctuation, line ends, and at "but" or "aber", which
// turn what came before around ("not urgent, but please escalate").
func clauses(text string) [][]string {
	text = strings.ToLower(strings.ReplaceAll(text, "’", "'"))
	var out [][]string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur = nil
	}
	for _, chunk := range strings.FieldsFunc(text, func(r rune) bool { return strings.ContainsRune(".,;:!?()\n", r) }) {
		for _, w := range strings.FieldsFunc(chunk, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
		}) {
			if w == "but" || w == "aber" {
				flush()
				continue
			}
			cur = append(cur, w)
		}
		flush()
	}
	return out
}
