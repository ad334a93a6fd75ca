package desk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// Rewrite replaces what a ticket already holds, for data protection: its
// stored messages and activity log (nil: unchanged), the outbox entries
// to drop, and the addresses to erase from the records the store keeps by
// address (address → pseudonym).
type Rewrite struct {
	Messages []store.Message
	Events   []store.Event
	Dequeue  []uint64
	Erase    map[string]string
}

func (r *Rewrite) apply(tx store.Tx, id string) error {
	if r == nil {
		return nil
	}
	if r.Messages != nil {
		if err := tx.ReplaceMessages(id, r.Messages); err != nil {
			return err
		}
	}
	if r.Events != nil {
		if err := tx.ReplaceEvents(id, r.Events); err != nil {
			return err
		}
	}
	for _, q := range r.Dequeue {
		if err := tx.Dequeue(q); err != nil {
			return err
		}
	}
	for addr, p := range r.Erase {
		if err := tx.EraseAddress(addr, p); err != nil {
			return err
		}
	}
	return nil
}

// PseudonymDomain is where pseudonyms live: a name that can never receive
// mail (RFC 2606), so none is sent there (rules.Forgotten).
const PseudonymDomain = rules.PseudonymDomain

// Pseudonym is the stable stand-in for an erased address: an HMAC-SHA256
// of the address in lower case under key, so the same address always maps
// to the same pseudonym while the key stays, and nobody without the key
// can tell which address it was.
func Pseudonym(key []byte, addr string) string {
	m := hmac.New(sha256.New, key)
	// The label keeps these MACs apart from anything else made with key.
	m.Write([]byte("ticketgate pseudonym v1\x00"))
	m.Write([]byte(strings.ToLower(strings.TrimSpace(addr))))
	return "p-" + hex.EncodeToString(m.Sum(nil))[:24] + "@" + PseudonymDomain
}

// Forget is an erasure request: Addr's personal data goes, Pseudonym
// stands in for it; Actor asked for it, Via says how (as Action.Via).
type Forget struct {
	Addr, Pseudonym string
	Actor, Via      string
}

// ForgetResult says what an erasure did. Its JSON is what "ticketgate
// forget -json" and POST /api/forget write.
type ForgetResult struct {
	Pseudonym string   `json:"pseudonym"`
	Tickets   []string `json:"tickets"`
	Messages  int      `json:"messages_erased"`
	Outbox    int      `json:"outbox_dropped"`
	// Damaged names the tickets passed over because a record of theirs
	// does not decode (store.ErrBadRecord): they may still name the
	// address. check lists every such record.
	Damaged []string `json:"damaged,omitempty"`
}

// forgetPage is how many tickets the search for an address reads per
// read transaction.
const forgetPage = 200

// Forget erases f.Addr's personal data from every ticket that names it, in
// one committed transaction through Apply. On a ticket the address
// requested, every message loses its text, raw copy and files (the whole
// conversation is with that person) and the requester's name goes; on a
// ticket it took part in, the messages it sent and those the desk sent it
// do. Everywhere
// else on those tickets the address becomes the pseudonym, raw copies that
// hold it are dropped, and an "erased" event names the actor. Mail still
// queued to the address is dropped, and the store's records by address
// (sent mail, rate counters, bounce marks) follow. Numbers, status,
// subjects (the address and name replaced), events and SLA figures stay.
// Queued notifications that carry a message it empties are dropped too.
//
// A ticket a record of which does not decode is passed over and named in
// Damaged; the others are erased, as are the records by address.
//
// A malformed address, a routing address or an agent's is refused
// (ErrBadAction); an address no ticket names wraps store.ErrNotFound and
// changes nothing. Running it again finds nothing left to erase.
func (p *Pipeline) Forget(ctx context.Context, f Forget) (*ForgetResult, error) {
	f.Addr = strings.ToLower(strings.TrimSpace(f.Addr))
	if err := p.forgettable(f.Addr); err != nil {
		return nil, err
	}
	f.Actor = strings.ToLower(strings.TrimSpace(f.Actor))
	if f.Actor == "" {
		f.Actor = "operator"
	}
	if f.Via == "" {
		f.Via = "the command line"
	}
	// Looking at every ticket takes a while: it is done in read
	// transactions, and the write re-reads the tickets found.
	ids, damaged, err := p.ticketsNaming(ctx, f)
	if err != nil {
		return nil, err
	}
	var res *ForgetResult
	err = p.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		res, err = p.erase(tx, f, ids, damaged)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("forget %s: %w", f.Addr, err)
	}
	p.Log.Info("personal data erased", "pseudonym", f.Pseudonym, "tickets", len(res.Tickets), "messages", res.Messages,
		"outbox", res.Outbox, "actor", f.Actor)
	for _, d := range res.Damaged {
		p.Log.Error("ticket passed over by forget: it does not decode; run check", "pseudonym", f.Pseudonym, "err", d)
	}
	return res, nil
}

// erase erases f's address within tx from the tickets ids and those it
// opened or was copied on since they were found (see Forget); damaged
// are the tickets the search passed over.
func (p *Pipeline) erase(tx store.Tx, f Forget, ids, damaged []string) (*ForgetResult, error) {
	res := &ForgetResult{Pseudonym: f.Pseudonym, Tickets: []string{}, Damaged: slices.Clone(damaged)}
	ids = slices.Clone(ids)
	// A ticket the address opened or was copied on since the search is
	// found by the address index.
	list, err := tx.TicketsOfAddress(f.Addr)
	if err != nil {
		return nil, err
	}
	for _, id := range list {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	now := p.now()
	var changes []*Change
	for _, id := range ids {
		t, err := tx.TicketFull(id)
		if errors.Is(err, store.ErrBadRecord) {
			if !slices.Contains(res.Damaged, err.Error()) {
				res.Damaged = append(res.Damaged, err.Error())
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		c, n, err := eraseTicket(tx, t, f, now)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue // it no longer names the address
		}
		changes = append(changes, c)
		res.Tickets = append(res.Tickets, t.ID)
		res.Messages += n
	}
	if len(changes) == 0 && len(res.Damaged) == 0 {
		return nil, fmt.Errorf("no ticket names %s: %w", f.Addr, store.ErrNotFound)
	}
	// Without a ticket to erase (those naming the address do not
	// decode), the records by address still go.
	rw := &Rewrite{}
	if len(changes) > 0 {
		rw = changes[0].Rewrite
	}
	rw.Erase = map[string]string{f.Addr: f.Pseudonym}
	out, err := tx.OutboxList(0, 0)
	if err != nil {
		return nil, err
	}
	for _, m := range out {
		if slices.ContainsFunc(m.To, f.is) {
			rw.Dequeue = append(rw.Dequeue, m.ID)
		}
	}
	res.Outbox = len(rw.Dequeue)
	if len(changes) == 0 {
		return res, rw.apply(tx, "")
	}
	if err := p.apply(tx, now, changes...); err != nil {
		return nil, err
	}
	dropped, err := p.dropErased(tx, f, out, res.Tickets, rw.Dequeue, now)
	res.Outbox += dropped
	return res, err
}

// errNamesForgotten is why mail queued to others that names a forgotten
// customer is not sent.
var errNamesForgotten = errors.New("it names a customer forgotten on request")

// dropErased drops, with a mail_suppressed event, the queued mail in out
// (less the entries in dequeued) about the tickets erased that still
// names the person: a notification carrying a message the erasure
// emptied (mailout.ErrCarriedGone), or other mail to the agents that
// names the address (an SLA alert's "Requester:"). Mail to customers
// goes out: what others wrote keeps its text. It returns how many it
// dropped.
func (p *Pipeline) dropErased(tx store.Tx, f Forget, out []*store.OutMail, erased []string, dequeued []uint64, now time.Time) (int, error) {
	n := 0
	for _, m := range out {
		if !slices.Contains(erased, m.TicketID) || slices.Contains(dequeued, m.ID) {
			continue
		}
		toAgents := !slices.ContainsFunc(m.Pending(), func(a string) bool { _, ok := p.agent(a); return !ok })
		why, err := namesErased(tx, f, m, toAgents)
		if err != nil {
			return n, err
		}
		if why == nil {
			continue
		}
		if err := tx.Dequeue(m.ID); err != nil {
			return n, err
		}
		detail := mailout.SuppressedDetail(m, m.Pending(), why)
		if err := tx.AddEvent(m.TicketID, store.Event{At: now, Type: rules.EventMailSuppressed, Detail: detail}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// namesErased returns why queued mail m may not be sent after f's
// erasure, nil when it may: it carries a message the erasure emptied, or
// it goes to agents (toAgents) and names the address.
func namesErased(tx store.Tx, f Forget, m *store.OutMail, toAgents bool) (error, error) {
	if m.Carries != "" {
		gone, err := mailout.CarriedGone(tx, m)
		if err != nil || !gone {
			return nil, err
		}
		return mailout.ErrCarriedGone, nil
	}
	if !toAgents {
		return nil, nil
	}
	raw, err := tx.OutboxRaw(m.ID)
	if err != nil {
		return nil, err
	}
	if !f.rawNames(raw) {
		return nil, nil
	}
	return errNamesForgotten, nil
}

// ErrNotAddress is wrapped by Forget's error for an address that is not
// a plain one (ann@example.com).
var ErrNotAddress = errors.New("not a plain address like ann@example.com")

// CheckAddress returns an error wrapping ErrNotAddress unless addr is a
// plain address: local part, "@", domain, no name or brackets.
func CheckAddress(addr string) error {
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " \t\r\n<>,;\"()[]") {
		return fmt.Errorf("%q: %w", addr, ErrNotAddress)
	}
	return nil
}

// forgettable refuses what cannot be erased: no plain address, or one
// of the desk's own (a routing address names every ticket, an agent's
// many).
func (p *Pipeline) forgettable(addr string) error {
	if err := CheckAddress(addr); err != nil {
		return err
	}
	if rules.Forgotten(addr) {
		return fmt.Errorf("%s is the pseudonym of an address erased already: %w", addr, ErrBadAction)
	}
	if p.Routes.IsOwn(addr) {
		return fmt.Errorf("%s is one of the desk's own addresses: %w", addr, ErrBadAction)
	}
	if _, ok := p.agent(addr); ok {
		return fmt.Errorf("%s is an agent ([[agent]]); remove it from the configuration first: %w", addr, ErrBadAction)
	}
	return nil
}

// ticketsNaming lists the tickets that name f.Addr anywhere, in pages of
// read transactions, and the damage it passed over: a ticket a record of
// which does not decode (store.ErrBadRecord; of a page's tickets whose
// record does not, the store names the first).
func (p *Pipeline) ticketsNaming(ctx context.Context, f Forget) (ids, damaged []string, err error) {
	after := ""
	for {
		var next string
		err := p.Store.View(ctx, func(tx store.Tx) error {
			list, cursor, err := tx.Tickets(store.Filter{Sort: store.SortCreated, Limit: forgetPage, After: after})
			if errors.Is(err, store.ErrBadRecord) {
				damaged = append(damaged, err.Error()) // the page goes on without it
			} else if err != nil {
				return err
			}
			for _, sum := range list {
				t, err := tx.TicketFull(sum.ID)
				if errors.Is(err, store.ErrBadRecord) {
					damaged = append(damaged, err.Error())
					continue
				}
				if err != nil {
					return err
				}
				if f.names(t) {
					ids = append(ids, t.ID)
				}
			}
			next = cursor
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("forget %s: %w", f.Addr, err)
		}
		if next == "" {
			return ids, damaged, nil
		}
		after = next
	}
}

func (f Forget) is(addr string) bool { return strings.EqualFold(strings.TrimSpace(addr), f.Addr) }

// in reports whether s holds the address, in any case, as an address of
// its own (not the end of jo-ann@… or the start of …example.org).
func (f Forget) in(s string) bool { return len(addrAt(s, f.Addr)) > 0 }

// addrAt returns where addr (in lower case) occurs in s as a whole
// address, ASCII letters in any case.
func addrAt(s, addr string) []int {
	low := asciiLower(s)
	var at []int
	for i := 0; ; {
		j := strings.Index(low[i:], addr)
		if j < 0 {
			return at
		}
		start, end := i+j, i+j+len(addr)
		if (start == 0 || !inLocalPart(s[start-1])) && (end == len(s) || !continuesDomain(s[end:])) {
			at = append(at, start)
		}
		i = start + 1
	}
}

// asciiLower lowers the ASCII letters of s only, so byte offsets stay.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// inLocalPart reports whether c may be part of an address's local part.
func inLocalPart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

// continuesDomain reports whether rest, what follows an address's domain,
// goes on with it: a letter, digit or hyphen, or a dot before one.
func continuesDomain(rest string) bool {
	alnum := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
	}
	return alnum(rest[0]) || rest[0] == '.' && len(rest) > 1 && alnum(rest[1])
}

// names reports whether ticket t (with its messages and events) names
// the address anywhere but in raw copies.
func (f Forget) names(t *store.Ticket) bool {
	if f.is(t.Requester) || f.is(t.Assignee) || slices.ContainsFunc(t.CC, f.is) || slices.ContainsFunc(t.Watchers, f.is) || f.in(t.Subject) {
		return true
	}
	for _, m := range t.Messages {
		if f.is(m.From) || slices.ContainsFunc(m.To, f.is) || slices.ContainsFunc(m.Cc, f.is) ||
			f.in(m.Subject+"\n"+m.Text+"\n"+m.VisibleText+"\n"+strings.Join(m.Notes, "\n")) {
			return true
		}
	}
	return slices.ContainsFunc(t.Events, func(e store.Event) bool { return f.in(e.Detail + "\n" + e.Actor) })
}

// replace puts the pseudonym (and, given, "[erased]" for the name) in
// place of the address in s, in any case.
func (f Forget) replace(s, name string) string {
	if at := addrAt(s, f.Addr); len(at) > 0 {
		var b strings.Builder
		last := 0
		for _, i := range at {
			b.WriteString(s[last:i])
			b.WriteString(f.Pseudonym)
			last = i + len(f.Addr)
		}
		s = b.String() + s[last:]
	}
	if len(name) >= 3 {
		s = foldReplace(s, name, "[erased]")
	}
	return s
}

// foldReplace replaces old, in any case, with repl where it stands as
// words of its own: not inside a longer word or an address (hannah@…,
// ann.lee@…, Ann-Marie for Ann).
func foldReplace(s, old, repl string) string {
	if old == "" || !strings.Contains(strings.ToLower(s), strings.ToLower(old)) {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range regexp.MustCompile(`(?i)`+regexp.QuoteMeta(old)).FindAllStringIndex(s, -1) {
		if joined(s[:m[0]], true) || joined(s[m[1]:], false) {
			continue
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(repl)
		last = m[1]
	}
	return b.String() + s[last:]
}

// joined reports whether the text next to a match (side, before it when
// before) goes on with the same word: a letter, digit, "_" or "@", or
// one of ".-+" followed by a letter or digit.
func joined(side string, before bool) bool {
	next := func(s string) (rune, string) {
		if before {
			r, n := utf8.DecodeLastRuneInString(s)
			return r, s[:len(s)-n]
		}
		r, n := utf8.DecodeRuneInString(s)
		return r, s[n:]
	}
	wordy := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '@' }
	if side == "" {
		return false
	}
	r, rest := next(side)
	if wordy(r) {
		return true
	}
	if strings.ContainsRune(".-+", r) && rest != "" {
		r, _ = next(rest)
		return wordy(r)
	}
	return false
}

// rawNames reports whether the raw copy of a message holds the address:
// as written, or once read (a base64 or quoted-printable body, an
// encoded subject, a delivery report), as whoever opens the copy sees it.
func (f Forget) rawNames(raw []byte) bool {
	if f.in(string(raw)) {
		return true
	}
	in, err := mailin.Parse(raw, mailin.Limits{})
	if err != nil {
		return false
	}
	return f.in(in.Subject + "\n" + in.Text + "\n" + in.HTML + "\n" + in.DeliveryStatus + "\n" + in.ReturnedHeader)
}

func (f Forget) list(l []string) []string {
	out := slices.Clone(l)
	for i, a := range out {
		if f.is(a) {
			out[i] = f.Pseudonym
		}
	}
	return out
}

// emptied reports whether m has no body, raw copy or files left.
func emptied(m *store.Message) bool {
	return m.Text == "" && m.VisibleText == "" && m.Raw == "" && len(m.Attachments) == 0
}

// eraseTicket decides the erasure on t (read with its messages and events
// from r): nil when t does not name the address, else the change and how
// many messages lost their body.
func eraseTicket(r store.Reader, t *store.Ticket, f Forget, now time.Time) (*Change, int, error) {
	if !f.names(t) {
		return nil, 0, nil
	}
	requester := f.is(t.Requester)
	name := ""
	if requester {
		name = t.RequesterName
	}
	msgs := slices.Clone(t.Messages)
	erased := 0
	for i := range msgs {
		m := &msgs[i]
		// The address's own messages, and what the desk sent it (which
		// quotes it); mail others wrote keeps its text.
		own := f.is(m.From) || m.Direction == "out" && (slices.ContainsFunc(m.To, f.is) || slices.ContainsFunc(m.Cc, f.is))
		m.From, m.To, m.Cc = f.replace(m.From, ""), f.list(m.To), f.list(m.Cc)
		m.Subject = f.replace(m.Subject, name)
		// A note may quote a header that names the address.
		m.Notes = slices.Clone(m.Notes)
		for j, n := range m.Notes {
			m.Notes[j] = f.replace(n, name)
		}
		if requester || own {
			if !emptied(m) {
				erased++
			}
			m.Text, m.VisibleText, m.Raw, m.Attachments = "", "", "", []store.Attachment{}
			m.Notes = append(m.Notes, "personal data erased on request")
			continue
		}
		m.Text, m.VisibleText = f.replace(m.Text, name), f.replace(m.VisibleText, name)
		if m.Raw != "" {
			// Another message's headers may name the address (To, Cc,
			// Reply-To): its raw copy goes.
			raw, err := r.Blob(m.Raw)
			if err != nil {
				return nil, 0, fmt.Errorf("message %s: %w", m.MessageID, err)
			}
			if f.rawNames(raw) {
				m.Raw = ""
				m.Notes = append(m.Notes, "raw copy erased on request: it named an erased address")
			}
		}
	}
	events := slices.Clone(t.Events)
	for i := range events {
		e := &events[i]
		if e.Type == rules.EventSatisfaction && (requester || f.is(e.Actor)) {
			// The comment is the customer's words, as their mail is; a
			// merge may have copied their rating to a ticket they are
			// only a participant of.
			e.Detail = ratingWithoutComment(e.Detail)
		}
		e.Detail, e.Actor = f.replace(e.Detail, name), f.replace(e.Actor, "")
	}
	nt := *t
	nt.Messages, nt.Events = nil, nil
	nt.Requester, nt.CC, nt.Watchers = f.replace(t.Requester, ""), f.list(t.CC), f.list(t.Watchers)
	if f.is(t.Assignee) {
		// A former agent's address (an agent's own is refused).
		nt.Assignee = f.Pseudonym
	}
	nt.Subject = f.replace(t.Subject, name)
	if requester {
		nt.RequesterName = ""
		nt.Files, nt.FileBytes = 0, 0
		if s := nt.Satisfaction; s != nil {
			nt.Satisfaction = &store.Satisfaction{Score: s.Score, At: s.At}
		}
	}
	c := &Change{Ticket: &nt, Rewrite: &Rewrite{Messages: msgs, Events: events}}
	c.log(store.Event{At: now, Type: rules.EventErased, Actor: f.Actor,
		Detail: fmt.Sprintf("personal data of %s erased on request: text, raw copies and files of %d messages (forget by %s via %s)",
			f.Pseudonym, erased, f.Actor, f.Via)})
	return c, erased, nil
}
