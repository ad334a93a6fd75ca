package rules

import (
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// replyPrefix matches one reply/forward marker at the start of a subject, in
// the languages mail clients write them in, with an optional counter
// ("Re[2]:", "AW(3):").
var replyPrefix = regexp.MustCompile(`(?i)^\s*(re|fw|fwd|aw|wg|sv|vs|antw|tr|rif|r|enc|odp|res)\s*(\[\d+\]|\(\d+\))?\s*[:：]\s*`)

// TicketToken returns the ticket id named in a subject: "[HS-123456]" or
// "HS-123456" anywhere, in any case, behind any chain of Re:/Fwd: prefixes.
// The id is returned in canonical form (upper-case prefix).
func TicketToken(subject, prefix string) (string, bool) {
	if !hasTokenDigits(subject) {
		return "", false // most subjects: no expression to run
	}
	m := tokenRE(prefix).find.FindStringSubmatch(subject)
	if m == nil {
		return "", false
	}
	return strings.ToUpper(prefix) + "-" + m[1], true
}

// tokenREs holds, per prefix, the matcher of a token and of a token with its
// brackets (for removal from subjects).
type tokenREs struct{ find, strip *regexp.Regexp }

var tokenCache sync.Map // prefix → tokenREs

func tokenRE(prefix string) tokenREs {
	if v, ok := tokenCache.Load(prefix); ok {
		return v.(tokenREs)
	}
	CompileToken(prefix)
	v, _ := tokenCache.Load(prefix)
	return v.(tokenREs)
}

// CompileToken prepares the token matchers for prefix. Calling it at
// start-up saves the first message the compile; it is safe to call again.
func CompileToken(prefix string) {
	q := regexp.QuoteMeta(prefix)
	tokenCache.Store(prefix, tokenREs{
		// Word boundaries keep "XHS-123456" and "HS-1234567" from matching.
		find: regexp.MustCompile(`(?i)(?:^|[^\pL\pN])` + q + `-(\d{6})(?:$|[^\pN])`),
		// The token is group 1; stripTokens checks find's word
		// boundaries around it.
		strip: regexp.MustCompile(`(?i)\[?\s*(` + q + `-\d{6})\s*\]?`),
	})
}

// BaseSubject removes reply/forward prefixes and the ticket token from a
// subject, leaving the words the customer chose.
func BaseSubject(subject, prefix string) string {
	s := CleanHeader(subject)
	tok := tokenRE(prefix).strip
	for {
		// Each message's subject is read this way several times: the
		// expressions run only where they can match (a reply prefix
		// ends in a colon, a token has six digits after a hyphen).
		n := s
		if strings.ContainsAny(n, ":：") {
			// Every prefix in a row at once, without copying what
			// follows each: a subject of many thousands of "Re: " was
			// copied whole once for each.
			for loc := replyPrefix.FindStringIndex(n); loc != nil && loc[1] > 0; loc = replyPrefix.FindStringIndex(n) {
				n = n[loc[1]:]
			}
		}
		if hasTokenDigits(n) {
			n = stripTokens(n, tok)
		}
		n = strings.TrimSpace(n)
		if n == s {
			break
		}
		s = n
	}
	return strings.Join(strings.Fields(s), " ")
}

// stripTokens replaces each ticket token in s that TicketToken would read
// (with its brackets and the spaces around it) by one space, so that the
// words on either side stay apart. Token-shaped text inside a longer word
// or number ("XHS-123456", "HS-1234567") is no token and stays.
func stripTokens(s string, strip *regexp.Regexp) string {
	var b strings.Builder
	last, changed := 0, false
	for _, m := range strip.FindAllStringSubmatchIndex(s, -1) {
		before, _ := utf8.DecodeLastRuneInString(s[:m[2]])
		if changed && m[0] == last {
			// Right after a token taken out, which is a space now: a
			// run of tokens ("HS-123456HS-123456...") goes in one pass,
			// not one token a pass over the whole subject.
			before = ' '
		}
		after, _ := utf8.DecodeRuneInString(s[m[3]:])
		if m[2] > 0 && (unicode.IsLetter(before) || unicode.IsNumber(before)) ||
			m[3] < len(s) && unicode.IsNumber(after) {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteByte(' ')
		last, changed = m[1], true
	}
	if !changed {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// hasTokenDigits reports whether s holds a hyphen and six ASCII digits,
// as every ticket token does.
func hasTokenDigits(s string) bool {
	for {
		i := strings.IndexByte(s, '-')
		if i < 0 || i+7 > len(s) {
			return false
		}
		if s = s[i+1:]; isDigits(s[:6]) {
			return true
		}
	}
}

// CleanHeader turns a header value into one safe line: CR, LF and other
// control characters become spaces, so the value can never add a header
// line to mail the gateway writes.
func CleanHeader(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, v)
}

// Candidate is an existing ticket a message may belong to.
type Candidate struct {
	ID           string
	Status       Status
	Requester    string
	Participants []string // addresses on the ticket's To/Cc
	ClosedAt     time.Time
	Via          string // "token" or "reference"
	// SurveySent says the closed ticket asked for a rating; Rating that the
	// message gives one. A rating always lands on the ticket it answers,
	// however long ago it was closed; only the requester, whom the survey
	// asked, rates.
	SurveySent, Rating bool
	// Automatic says the message is automatic mail (an out-of-office
	// reply, an auto-submitted notice): it never reopens a closed ticket,
	// and is kept on it however long ago it was closed, so that a reply
	// to the closing notice opens no ticket of its own.
	Automatic bool
}

// ThreadAction says what to do with a message.
type ThreadAction string

// Thread actions.
const (
	ThreadAppend ThreadAction = "append"  // add to the candidate ticket
	ThreadReopen ThreadAction = "reopen"  // add and reopen the closed ticket
	ThreadNew    ThreadAction = "new"     // open a new ticket
	ThreadLinked ThreadAction = "linked"  // open a new ticket linked to the candidate
	ThreadDrop   ThreadAction = "dropped" // keep nothing: an agent's automatic mail naming no ticket
)

// Thread is a threading decision and the rule that made it.
type Thread struct {
	Action   ThreadAction
	TicketID string // the candidate, for append/reopen/linked
	Rule     string // "token", "reference", "sender check", "reopen window", "new"
	Reason   string
}

// ThreadPolicy holds the threading settings.
type ThreadPolicy struct {
	ReopenWindow time.Duration // replies to a closed ticket within it reopen it
}

// DecideThread chooses where a message goes. c is the ticket named by the
// subject token, or else by In-Reply-To/References (nil when none);
// sender is the From address; agent reports a verified agent.
// A mail naming a ticket is appended only when its sender is the requester,
// a participant or an agent; otherwise it opens a new ticket linked to the
// named one, so a stranger can never write into someone else's ticket.
func (p ThreadPolicy) DecideThread(c *Candidate, sender string, agent bool, now time.Time) Thread {
	if c == nil {
		return Thread{Action: ThreadNew, Rule: "new", Reason: "no ticket token and no known reference"}
	}
	if !agent && !c.isParticipant(sender) {
		return Thread{Action: ThreadLinked, TicketID: c.ID, Rule: "sender check",
			Reason: sender + " is not a participant of " + c.ID + " (matched by " + c.Via + ")"}
	}
	if c.Status == StatusClosed && c.SurveySent && c.Rating && !agent && strings.EqualFold(sender, c.Requester) {
		return Thread{Action: ThreadAppend, TicketID: c.ID, Rule: "survey rating", Reason: "a rating of closed ticket " + c.ID + " (matched by " + c.Via + ")"}
	}
	if c.Status == StatusClosed && !agent && c.Automatic {
		return Thread{Action: ThreadAppend, TicketID: c.ID, Rule: "automatic", Reason: "automatic mail kept on closed ticket " + c.ID + ", which stays closed (matched by " + c.Via + ")"}
	}
	if c.Status == StatusClosed && !agent {
		if p.ReopenWindow > 0 && !c.ClosedAt.IsZero() && now.Sub(c.ClosedAt) > p.ReopenWindow {
			return Thread{Action: ThreadLinked, TicketID: c.ID, Rule: "reopen window",
				Reason: c.ID + " was closed more than " + p.ReopenWindow.String() + " ago"}
		}
		return Thread{Action: ThreadReopen, TicketID: c.ID, Rule: c.Via, Reason: "reply to closed ticket within the reopen window"}
	}
	return Thread{Action: ThreadAppend, TicketID: c.ID, Rule: c.Via, Reason: "matched " + c.ID + " by " + c.Via}
}

// AgentAutomaticThread decides where an agent's own automatic mail goes
// that did not come as their verified reply (the vacation reply to a
// notification, sent to the routing address it came from): it is kept on
// the ticket c it names, which it does not change, and dropped when it
// names none. It never opens a ticket: it asks nothing, and a ticket
// opened from it (or linked to the one it names) would be the agent's own.
func AgentAutomaticThread(c *Candidate) Thread {
	if c == nil {
		return Thread{Action: ThreadDrop, Rule: "agent automatic", Reason: "an agent's automatic mail that names no ticket"}
	}
	return Thread{Action: ThreadAppend, TicketID: c.ID, Rule: "agent automatic",
		Reason: "an agent's automatic mail kept on " + c.ID + ", which it does not change (matched by " + c.Via + ")"}
}

func (c *Candidate) isParticipant(addr string) bool {
	addr = strings.ToLower(addr)
	if addr == "" {
		return false
	}
	if strings.EqualFold(c.Requester, addr) {
		return true
	}
	for _, p := range c.Participants {
		if strings.EqualFold(p, addr) {
			return true
		}
	}
	return false
}

// StatusOnCustomerReply returns the status a ticket takes when its customer
// writes: waiting and resolved tickets (and reopened closed ones) open again.
func StatusOnCustomerReply(s Status) Status {
	switch s {
	case StatusWaiting, StatusResolved, StatusClosed:
		return StatusOpen
	}
	return s
}
