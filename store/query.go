package store

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"ticketgate/rules"
)

// Filter selects and orders a page of tickets in Tx.Tickets: the views,
// filters and sort orders of "ticketgate tickets" and GET /api/tickets.
// A ticket is listed when it meets every condition that is set; the zero
// Filter lists every ticket, newest first.
type Filter struct {
	// View is a named selection as agents work the queue (ViewAll for
	// none). Operator is the address ViewMine lists the tickets of.
	View     View
	Operator string

	Status    rules.Status // "" for any
	Requester string       // the requester's address, any case; "" for any
	Assignee  string       // the assignee's address, any case; "" for any
	// Unassigned lists only tickets assigned to nobody.
	Unassigned bool
	Queue      string // "" for any

	// Text lists only tickets on which every word of it (as Words splits
	// it) occurs as a whole word, in any case: in the subject, the
	// requester's address or name, or the subject or text of one of the
	// ticket's messages (not the mail the desk writes from its
	// templates, the same on every ticket: see MessageWords). Text
	// without words sets no condition. Search reads an index, never the
	// messages.
	Text string

	// Sort is the order; Reverse turns it around.
	Sort    Sort
	Reverse bool

	Limit int // page size; 0 for no limit
	// After is the cursor returned with the previous page ("" for the
	// first). It is opaque and only valid for the same Filter.
	After string
}

// View is a named selection of tickets.
type View string

// The views. Completed means resolved or closed.
const (
	ViewAll       View = ""          // every ticket
	ViewNew       View = "new"       // not completed and assigned to nobody
	ViewActive    View = "active"    // not completed and assigned to somebody
	ViewCompleted View = "completed" // resolved or closed
	ViewMine      View = "mine"      // not completed and assigned to Filter.Operator
)

// ParseView returns the view named s ("" is ViewAll), or false.
func ParseView(s string) (View, bool) {
	switch v := View(s); v {
	case ViewAll, ViewNew, ViewActive, ViewCompleted, ViewMine:
		return v, true
	}
	return "", false
}

// Lists reports whether view v (with the operator for ViewMine) lists
// ticket t, going by its status and assignee alone.
func (v View) Lists(t *Ticket, operator string) bool {
	done := Completed(t.Status)
	switch v {
	case ViewNew:
		return !done && t.Assignee == ""
	case ViewActive:
		return !done && t.Assignee != ""
	case ViewCompleted:
		return done
	case ViewMine:
		return !done && operator != "" && strings.EqualFold(t.Assignee, operator)
	}
	return v == ViewAll
}

// Completed reports whether a ticket in status st is done with: resolved
// or closed.
func Completed(st rules.Status) bool {
	return st == rules.StatusResolved || st == rules.StatusClosed
}

// Sort is the order of a listing. Each puts first what needs attention
// first; every order ends in the ticket id, so it is total and a cursor
// is exact.
type Sort string

// The sort orders.
const (
	// SortNewest is by creation time, newest first: the zero value, the
	// order listings had before they could be sorted.
	SortNewest Sort = ""
	// SortCreated is by creation time, oldest first: the order the
	// requests were submitted.
	SortCreated Sort = "created"
	// SortUpdated is by the time of the last update, the ticket left
	// alone longest first.
	SortUpdated Sort = "updated"
	// SortPriority is most urgent first (critical … low), then oldest
	// first.
	SortPriority Sort = "priority"
	// SortDue is by SLADue, soonest first; tickets with nothing due last,
	// then oldest first.
	SortDue Sort = "due"
)

// ParseSort returns the sort order named s (created, updated, priority
// or due), or false.
func ParseSort(s string) (Sort, bool) {
	switch o := Sort(s); o {
	case SortCreated, SortUpdated, SortPriority, SortDue:
		return o, true
	}
	return "", false
}

// SLADue is the next service level target ticket t must meet: the first
// response due time until an agent answered, then the resolution due
// time; on an escalated ticket, level 2's. It is zero when the ticket has
// no SLA, is resolved, or closed.
func (t *Ticket) SLADue() time.Time {
	s := t.SLA
	if s == nil || Completed(t.Status) || !s.ResolvedAt.IsZero() {
		return time.Time{}
	}
	if e := s.Escalation; e != nil {
		if e.FirstResponseAt == nil && !e.FirstResponseDue.IsZero() {
			return e.FirstResponseDue
		}
		return e.ResolutionDue
	}
	if s.FirstResponseAt == nil && !s.FirstResponseDue.IsZero() {
		return s.FirstResponseDue
	}
	return s.ResolutionDue
}

// MaxWordLen is the length in bytes words are cut to (at a character
// boundary) by Words, so a long token is found by its first 64 bytes.
const MaxWordLen = 64

// Words splits s into the words search matches on: runs of letters and
// digits, in lower case, cut to MaxWordLen, each once, in the order they
// first occur. So "Ann@Customer.example" is ann, customer, example. The
// text is read composed (NFC), so an accent typed as a letter of its own
// (é as e and U+0301, as macOS writes it) is the same word as one typed
// in one; and words are case folded as Unicode defines it (fold), so
// "ΟΔΟΣ" and "οδος" are one word, as are "STRASSE" and "straße".
//
// Chinese, Japanese and Korean are written without spaces between their
// words (or, in Korean, with particles joined to them), so a run of
// their characters is no word: "你好，打印机坏了" would be found by its
// whole run only, never by 打印机 (printer). Each of its characters is a
// word, and so is each pair of characters that stand together (what
// search engines call bigrams): 打印机 is found on every ticket where 打印
// and 印机 are. The rest of a run (the Latin letters of "Windows10が")
// stays one word.
func Words(s string) []string {
	if !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
	}
	ws := wordSet{seen: map[string]bool{}}
	for i := 0; i < len(s); {
		start, end, cjk := nextWord(s, i)
		if start < 0 {
			break
		}
		i = end
		if cjk {
			ws.addCJK(s[start:end])
		} else {
			ws.add(s[start:end])
		}
	}
	return ws.out
}

// wordSet is the words Words has found, in order, each once.
type wordSet struct {
	out  []string
	seen map[string]bool
}

// add adds word w, folded and cut as Words has it, unless it is there.
func (ws *wordSet) add(w string) {
	w = fold(strings.ToLower(w))
	if len(w) > MaxWordLen {
		n := MaxWordLen
		for n > 0 && !utf8.RuneStart(w[n]) {
			n--
		}
		w = w[:n]
	}
	if !ws.seen[w] {
		ws.seen[w] = true
		ws.out = append(ws.out, w)
	}
}

// addCJK adds the words of run, a run of letters and digits with
// Chinese, Japanese or Korean in it, as Words has them: each of those
// characters, each pair of them side by side, and each stretch of other
// letters and digits whole.
func (ws *wordSet) addCJK(run string) {
	for len(run) > 0 {
		r, n := utf8.DecodeRuneInString(run)
		if !isCJK(r) {
			end := strings.IndexFunc(run, isCJK)
			if end < 0 {
				end = len(run)
			}
			ws.add(run[:end])
			run = run[end:]
			continue
		}
		ws.add(run[:n])
		if next, m := utf8.DecodeRuneInString(run[n:]); m > 0 && isCJK(next) {
			ws.add(run[:n+m])
		}
		run = run[n:]
	}
}

// isCJK reports whether r is written without spaces around its words:
// a Chinese character (Han, which Japanese and Korean use too), Japanese
// kana (with the long-vowel mark, ー, which Unicode gives to no script)
// or Korean Hangul.
func isCJK(r rune) bool {
	return r >= 0x1100 && (unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) || r == 'ー' || r == 'ｰ')
}

// fold is w, in lower case, case folded as Unicode defines it, so that
// the letters with more than one lower-case form, or none, are one word
// in every case: the final sigma ς is σ, the micro sign µ is μ, ß is ss
// (as in STRASSE). ASCII is folded already.
func fold(w string) string {
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			return cases.Fold().String(w)
		}
	}
	return w
}

// nextWord finds the first word of s at or after byte i: its start and
// end, or -1 when there is none, and whether it holds a character isCJK
// takes. ASCII, most of mail, is judged a byte at a time; other runes as
// unicode classes them (invalid UTF-8 is no word).
func nextWord(s string, i int) (start, end int, cjk bool) {
	start = -1
	for i < len(s) {
		word, n := asciiWord[s[i]&0x7f], 1
		if s[i] >= utf8.RuneSelf {
			var r rune
			r, n = utf8.DecodeRuneInString(s[i:])
			word = isWordRune(r)
			cjk = cjk || word && isCJK(r)
		}
		if word {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			return start, i, cjk
		}
		i += n
	}
	return start, len(s), cjk
}

// asciiWord says which ASCII bytes are letters or digits.
var asciiWord = func() (t [128]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	return t
}()

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }

// Addresses are the addresses Tx.TicketsOfAddress finds ticket t by: its
// requester's and participants' (CC), in lower case, each once.
func Addresses(t *Ticket) []string {
	var out []string
	for _, a := range append([]string{t.Requester}, t.CC...) {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// TicketWords are the words of ticket t's own fields that Filter.Text
// searches: its subject and its requester's address and name.
func TicketWords(t *Ticket) []string {
	return Words(t.Subject + " " + t.Requester + " " + t.RequesterName)
}

// MaxMessageWords is how many distinct words of one message are
// searchable: the first ones, which bounds what one message adds to the
// index.
const MaxMessageWords = 10000

// MessageWords are the words of message m that Filter.Text searches: the
// first MaxMessageWords of its subject and text; none for the mail the
// desk writes from its templates (Direction "out" but for an agent's
// reply: the automatic reply, status notices, reminders, the survey and
// its thanks), the same on every ticket.
func MessageWords(m *Message) []string {
	if m.Kind == "auto" || m.Direction == "out" && m.Kind != "agent" {
		return nil
	}
	w := Words(m.Subject + "\n" + m.Text)
	return w[:min(len(w), MaxMessageWords)]
}
