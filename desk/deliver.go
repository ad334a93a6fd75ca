package desk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// Pipeline turns delivered messages into ticket changes. Deliver returns
// only after the change is committed to disk.
type Pipeline struct {
	Store    store.Store
	Routes   rules.Routes
	Prefix   string // ticket id prefix, e.g. "HS"
	Hostname string // domain of generated Message-IDs
	Desk     *mailout.Mailer
	Limits   mailin.Limits
	Thread   rules.ThreadPolicy
	Log      *slog.Logger
	Now      func() time.Time
	// Agents, Signer and Plans drive agent mail and customer plans.
	Agents []Agent
	Signer rules.Signer
	Plans  []rules.Plan
	// Policies are the inbound limits (floods, attachments, bounces).
	Policies Policies
	// Policy keeps lifecycle and SLA state in step with every change.
	Policy *Policy
	// OnCommit is called after a commit that queued outgoing mail.
	OnCommit func()
	// MaxParticipants caps a ticket's participants besides the requester
	// (0: DefaultMaxParticipants).
	MaxParticipants int
	// RequestTypes map subject tags to category and priority (nil:
	// rules.DefaultRequestTypes).
	RequestTypes []rules.RequestType

	// Sequential numbers new tickets one after another ([tickets]
	// numbers = "sequential") instead of at random.
	Sequential bool
	// Shared says other gateways open tickets in the same store
	// (PostgreSQL): sequential numbering then reads where the numbers
	// stand before each message, as the others move them on too.
	Shared bool

	// draw draws candidate ticket ids (nil: the next sequential number,
	// or at random as the store does).
	draw    func(prefix string) (string, error)
	numbers numbers
	// drafts count the drafted auto-replies by outcome (see DraftStats).
	drafts [3]atomic.Uint64
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Identity is what loop detection knows about the gateway.
func (p *Pipeline) Identity() rules.Identity {
	return rules.Identity{Addresses: p.Routes.Addresses(), MsgIDDomain: p.Hostname, LoopTag: p.loopTag()}
}

func (p *Pipeline) loopTag() string { return p.Desk.LoopTag() }

// Route returns the route of the first recipient that is a routing address,
// or of the first escalation address among them: mail copied to the
// escalation address asks to escalate, whatever the order of recipients.
// A status address counts only when no other routing address is there:
// mail to support@ that copies status@ is stored, not answered with a
// list alone, whatever the order of recipients.
func (p *Pipeline) Route(rcpts []string) (rules.Route, string, bool) {
	var first rules.Route
	var firstTag string
	found := false
	for _, r := range rcpts {
		rt, tag, ok := p.Routes.Match(r)
		if !ok {
			continue
		}
		if rt.Kind == rules.RouteEscalation {
			return rt, tag, true
		}
		if !found || (first.Kind == rules.RouteStatus && rt.Kind != rules.RouteStatus) {
			first, firstTag, found = rt, tag, true
		}
	}
	return first, firstTag, found
}

// Expect implements mailin.Expecter: a listener announces each message to
// the store's committer as its transfer begins, and Deliver ends the
// announcement (Delivery.Arrived) as it queues the message's commit.
func (p *Pipeline) Expect() func() { return p.Store.Expect() }

// Deliver parses, threads and commits one message. The returned error wraps
// ErrUnknownRecipient or ErrNotMail for mail that must be refused,
// ErrRateLimited for a flood (retry later); any other error is temporary.
func (p *Pipeline) Deliver(ctx context.Context, d *mailin.Delivery) (mailin.Result, error) {
	arrived := d.Arrived // the listener's announcement (mailin.Expecter)
	if arrived == nil {
		arrived = func() {}
	}
	defer arrived()
	pl, err := p.prepare(d)
	if err != nil {
		return mailin.Result{}, err
	}
	// Floods are refused from a read-only look at the counts, which needs
	// no writer: an error inside the group commit would roll back the
	// whole batch, and bbolt would redo the others and then the refused
	// one alone, each time holding the single writer.
	err = p.Store.View(ctx, func(tx store.Tx) error {
		if err := p.admit(tx, pl); err != nil {
			return err
		}
		if p.Sequential && p.Shared {
			return pl.numbers.catchUp(tx, p.idPrefix())
		}
		return nil
	})
	if errors.Is(err, mailin.ErrRateLimited) {
		p.Log.Warn("inbound rate limit", "msgid", pl.in.MessageID, "from", pl.in.From.Address, "err", err, "remote", d.Remote)
		return mailin.Result{}, err
	}
	if err != nil {
		return mailin.Result{}, fmt.Errorf("check limits for %s: %w", pl.in.MessageID, err)
	}
	p.draft(pl)
	var res mailin.Result
	commit := p.commit
	if pl.verp != 0 {
		commit = p.commitBounce
	}
	arrived() // the call comes now: a commit waiting for it takes it
	err = p.Store.Update(ctx, func(tx store.Tx) error {
		res = mailin.Result{MessageID: pl.in.MessageID}
		return commit(tx, pl, &res)
	})
	if err != nil {
		return mailin.Result{}, fmt.Errorf("commit message %s: %w", pl.in.MessageID, err)
	}
	if pl.draft != nil && pl.draft.reply != nil {
		p.drafts[pl.draft.outcome].Add(1)
	}
	// The caller writes the one info line per message, with its outcome.
	p.Log.Debug("message stored", "ticket", res.TicketID, "msgid", pl.in.MessageID, "action", res.Action, "source", d.Source, "remote", d.Remote)
	if p.OnCommit != nil {
		p.OnCommit()
	}
	return res, nil
}

// plan is everything decided about a message before its transaction.
type plan struct {
	d     *mailin.Delivery
	in    *mailin.Inbound
	route rules.Route
	auto  rules.Auto
	now   time.Time
	// verp is the outbox id a bounce address names (0: not a bounce address).
	verp uint64
	// origID is the Message-ID the message came with; in.MessageID may be
	// a derived one when a different message already uses origID, and
	// idNote then says so on the stored message.
	origID string
	idNote string
	// redactions made to subject, text and raw copy.
	redactions []rules.Redaction
	// refused lists attachments not accepted, with the reason; files are
	// the attachments the message came with.
	refused []string
	files   []mailin.Part
	// requestType names the request type a new ticket's subject tags chose.
	requestType string
	// visible is the new part of the text (quotes and signature cut, a
	// message forwarded inline kept), computed before the transaction to
	// keep the single writer short.
	visible string
	// asksEscalation says the sender's own words ask to escalate
	// (rules.AsksEscalation), judged before the transaction too.
	asksEscalation bool
	// listing says the message asks for the sender's list of tickets.
	listing bool
	// draft is the candidate ticket id and auto-reply prepared before the
	// transaction (nil: none).
	draft *draft
	// trace collects what was decided and why, for "explain".
	trace []string
	// numbers hands out sequential ticket numbers: the pipeline's, or
	// for "explain" a copy, so that explaining takes no number.
	numbers *numbers
}

func (pl *plan) note(format string, a ...any) { pl.trace = append(pl.trace, fmt.Sprintf(format, a...)) }

// prepare does everything that needs no transaction: route, parse, redact,
// classify, attachment policy.
func (p *Pipeline) prepare(d *mailin.Delivery) (*plan, error) {
	pl := &plan{d: d, now: p.now(), numbers: &p.numbers}
	for _, r := range d.Rcpts {
		if id, ok := rules.ParseVERP(p.Desk.VERPKeys, mailout.VERPPrefix, r); ok {
			pl.verp = id
		}
	}
	route, tag, ok := p.Route(d.Rcpts)
	if !ok && pl.verp == 0 {
		return nil, fmt.Errorf("%v: %w", d.Rcpts, mailin.ErrUnknownRecipient)
	}
	pl.route = route
	if pl.verp != 0 {
		pl.note("recipient is the bounce address of sent mail #%d", pl.verp)
	} else if route.Kind == rules.RouteStatus {
		pl.note("route: %s (kind status: answers with the sender's open tickets)", route.Address)
	} else {
		pl.note("route: %s (queue %s)%s", route.Address, route.Queue, map[bool]string{true: ", plus tag " + tag}[tag != ""])
	}
	in, err := mailin.Parse(d.Raw, p.Limits)
	if err != nil {
		return nil, err
	}
	pl.in = in
	pl.origID = in.MessageID
	for _, n := range in.Notes {
		pl.note("parse: %s", n)
	}
	if pl.verp == 0 && route.Kind == rules.RouteTickets {
		// A copy to the escalation address the header names escalates
		// too: mail without an envelope (IMAP) has the recipients its
		// header names, and an MTA may hand the copies over apart (the
		// pipe, one recipient at a time), the one to escalation@ then
		// a duplicate of the message already stored.
		if rt, _, ok := p.Route(append(append([]string(nil), in.To...), in.Cc...)); ok && rt.Kind == rules.RouteEscalation {
			pl.route = rt
			pl.note("route: %s (queue %s): the header copies the escalation address", rt.Address, rt.Queue)
		}
	}
	p.redact(pl)
	if in.SenderProblem != "" {
		pl.note("sender unknown: %s", in.SenderProblem)
	} else {
		pl.note("sender: %s (read from %s)", in.From.Address, in.SenderRule)
	}
	pl.visible = rules.VisibleText(in.Text)
	pl.asksEscalation = rules.AsksEscalation(pl.visible)
	if fwd := rules.Forwarded(in.Subject, in.Text); fwd != "" && !strings.Contains(pl.visible, fwd) {
		// The message a customer forwards is what the ticket is about:
		// it stays below their words, and the agents' notification
		// carries it.
		pl.visible = strings.TrimSpace(pl.visible + "\n\n" + fwd)
	}
	pl.auto = rules.ClassifyAuto(in.Header, d.MailFrom, in.From.Address, p.Identity())
	if p.isAgent(in.From.Address) {
		pl.auto = rules.AgentAuto(pl.auto, in.Subject)
	}
	switch {
	case pl.auto.Bounce:
		pl.note("classified: bounce (%s)", pl.auto.Reason)
	case pl.auto.OutOfOffice:
		pl.note("classified: out-of-office reply (%s)", pl.auto.Reason)
	case pl.auto.Automatic:
		pl.note("classified: automatic mail (%s)", pl.auto.Reason)
	default:
		pl.note("classified: written by a person")
	}
	pl.files = in.Attachments
	p.attachmentPolicy(pl, 0, 0)
	pl.listing = p.isListing(pl)
	return pl, nil
}

// commit runs inside the store transaction. It may run more than once
// (batched commits retry), so it only writes to tx and res.
func (p *Pipeline) commit(tx store.Tx, pl *plan, res *mailin.Result) error {
	if pl.draft != nil {
		pl.draft.outcome = draftDropped // until this run uses it
	}
	if pl.d.Checkpoint != nil {
		if err := tx.PutCheckpoint(*pl.d.Checkpoint); err != nil {
			return err
		}
	}
	in := pl.in
	if dup, err := p.duplicate(tx, pl, res); dup || err != nil {
		return err
	}
	if !p.isAgentMail(tx, pl) {
		if err := p.recordFlood(tx, pl, ""); err != nil {
			return err
		}
	}
	if pl.auto.Bounce {
		tid, to, err := p.bounceTicket(tx, pl)
		if err != nil {
			return err
		}
		if tid != "" {
			return p.recordBounce(tx, pl, res, tid, to)
		}
	}
	if pl.listing {
		return p.commitListing(tx, pl, res)
	}
	if handled, err := p.agentMail(tx, pl, res); handled || err != nil {
		return err
	}
	cand, err := p.candidate(tx, pl)
	if err != nil {
		return err
	}
	decision := p.decideThread(cand, pl)
	res.Action = string(decision.Action)
	pl.note("thread: %s by rule %q: %s", decision.Action, decision.Rule, decision.Reason)
	if decision.Action == rules.ThreadDrop {
		p.Log.Info("message dropped: "+decision.Reason, "msgid", in.MessageID, "remote", pl.d.Remote)
		return nil
	}
	if decision.Action == rules.ThreadAppend || decision.Action == rules.ThreadReopen {
		if err := p.recordFlood(tx, pl, decision.TicketID); err != nil {
			return err
		}
	}
	switch decision.Action {
	case rules.ThreadAppend, rules.ThreadReopen:
		draftOutcome(pl, nil, "the message joins "+decision.TicketID)
		return p.appendTo(tx, pl, decision, res)
	default:
		return p.newTicket(tx, pl, decision, res)
	}
}

// decideThread is where the message in pl goes, cand being the ticket it
// names (nil for none): an agent's automatic mail by
// rules.AgentAutomaticThread (it opens no ticket), the rest by the
// threading rules.
func (p *Pipeline) decideThread(cand *rules.Candidate, pl *plan) rules.Thread {
	if p.agentAutomatic(pl) {
		return rules.AgentAutomaticThread(cand)
	}
	return p.Thread.DecideThread(cand, pl.in.From.Address, false, pl.now)
}

// agentAutomatic reports whether the message in pl is automatic mail
// (a vacation reply) from one of the agents.
func (p *Pipeline) agentAutomatic(pl *plan) bool {
	return (pl.auto.Automatic || pl.auto.OutOfOffice || pl.auto.Bounce) && p.isAgent(pl.in.From.Address)
}

// duplicate reports whether the message is already stored (an MTA retry, a
// copy to a second routing address, an IMAP message taken twice) and fills
// res for it. A different message reusing a known Message-ID (scanners and
// web forms send them all with one) is not a duplicate: it gets a derived
// id, so it is stored and threaded on its own.
func (p *Pipeline) duplicate(tx store.Tx, pl *plan, res *mailin.Result) (bool, error) {
	tid, err := p.duplicateOf(tx, pl)
	res.MessageID = pl.in.MessageID
	if pl.idNote != "" {
		pl.note("%s", pl.idNote)
	}
	if tid == "" || err != nil {
		return false, err
	}
	res.TicketID, res.Duplicate, res.Action = tid, true, "duplicate"
	pl.note("duplicate of message <%s> on %s", pl.in.MessageID, tid)
	return true, nil
}

// duplicateOf returns the ticket that already holds this message, or "".
// It only reads, and starts from the original Message-ID each time, so it
// gives the same answer before the transaction and in each of its runs.
func (p *Pipeline) duplicateOf(tx store.Tx, pl *plan) (string, error) {
	pl.in.MessageID, pl.idNote = pl.origID, ""
	tid, err := tx.TicketByMessageID(pl.origID)
	if tid == "" || err != nil {
		return "", err
	}
	m, ok, err := tx.MessageByID(tid, pl.origID)
	if err != nil || !ok {
		return "", err
	}
	if sameMessage(m, pl.in, pl.files) {
		return tid, nil
	}
	derived := derivedID(pl.origID, pl.in, pl.files)
	pl.in.MessageID = derived
	pl.idNote = fmt.Sprintf("Message-ID <%s> was already used by a different message on %s; stored as <%s>", pl.origID, tid, derived)
	if tid, err = tx.TicketByMessageID(derived); tid == "" || err != nil {
		return "", err
	}
	// The derived id names the content, so finding it means this very
	// message was stored before.
	if _, ok, err := tx.MessageByID(tid, derived); err != nil || !ok {
		return "", err
	}
	return tid, nil
}

// sameMessage reports whether stored message m is in again: same sender,
// subject, text and files (files are those the message came with; m
// keeps those the attachment limits let in). Trace headers added on the
// way may differ.
func sameMessage(m *store.Message, in *mailin.Inbound, files []mailin.Part) bool {
	return strings.EqualFold(m.From, in.From.Address) && m.Subject == in.Subject && m.Text == in.Text && keptFrom(m.Attachments, files)
}

// keptFrom reports whether each attachment kept is one of files, by name
// and content: a scanner sends every scan with the same Message-ID,
// subject and text, and only the file tells them apart.
func keptFrom(kept []store.Attachment, files []mailin.Part) bool {
	used := make([]bool, len(files))
next:
	for _, a := range kept {
		for i, f := range files {
			if !used[i] && f.Filename == a.Filename && int64(len(f.Content)) == a.Size && (a.SHA256 == "" || a.SHA256 == sha256Hex(f.Content)) {
				used[i] = true
				continue next
			}
		}
		return false
	}
	return true
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// derivedID is the Message-ID given to a message whose own id is taken by
// a different one: the original with "+" and a short hash of the content
// (files included) added to its left part, e.g. fixed+3f2a9c1d7e@scanner.
func derivedID(orig string, in *mailin.Inbound, files []mailin.Part) string {
	content := strings.ToLower(in.From.Address) + "\x00" + in.Subject + "\x00" + in.Text
	for _, f := range files {
		content += "\x00" + f.Filename + "\x00" + sha256Hex(f.Content)
	}
	sum := sha256.Sum256([]byte(content))
	h := hex.EncodeToString(sum[:5])
	if i := strings.LastIndexByte(orig, '@'); i > 0 {
		return orig[:i] + "+" + h + orig[i:]
	}
	return orig + "+" + h
}

// message is the message in pl as it is stored on a ticket, kind as given,
// with its raw copy and files.
func (p *Pipeline) message(pl *plan, kind string) Stored {
	in := pl.in
	m := &store.Message{
		MessageID: in.MessageID, Direction: "in", Kind: kind,
		From: in.From.Address, To: in.To, Cc: in.Cc, Subject: in.Subject,
		Text: in.Text, VisibleText: pl.visible, CreatedAt: pl.now,
		Attachments: []store.Attachment{}, Notes: append(append([]string(nil), in.Notes...), pl.refused...),
	}
	if pl.idNote != "" {
		m.Notes = append(m.Notes, pl.idNote)
	}
	s := Stored{Message: m, Raw: in.Raw}
	for _, a := range in.Attachments {
		m.Attachments = append(m.Attachments, store.Attachment{Filename: a.Filename, ContentType: a.ContentType,
			Size: int64(len(a.Content)), ContentID: a.ContentID, Inline: a.Inline})
		s.Files = append(s.Files, a.Content)
	}
	return s
}

func (p *Pipeline) kind(pl *plan) string {
	if pl.auto.Automatic || pl.auto.OutOfOffice || pl.auto.Bounce {
		return "system"
	}
	return "customer"
}

// ticketFor is the record of a new ticket opened by the message in pl.
func (p *Pipeline) ticketFor(id string, pl *plan) *store.Ticket {
	in := pl.in
	subject := rules.BaseSubject(in.Subject, p.Prefix)
	if subject == "" {
		subject = "(no subject)"
	}
	t := &store.Ticket{
		ID: id, Subject: subject, Status: rules.StatusNew, Priority: rules.PriorityMedium,
		Queue: pl.route.Queue, Route: strings.ToLower(pl.route.Address), Category: pl.route.Category,
		Requester: in.From.Address, RequesterName: personName(in.From.Name),
		CreatedAt: pl.now, UpdatedAt: pl.now, LastInID: in.MessageID, Thread: []string{in.MessageID},
	}
	if t.Requester == "" && !p.forgedFrom(pl) {
		t.Requester = strings.ToLower(pl.d.MailFrom)
	}
	return t
}

func (p *Pipeline) newTicket(tx store.Tx, pl *plan, dec rules.Thread, res *mailin.Result) error {
	id, err := p.newTicketID(tx, pl)
	if err != nil {
		return err
	}
	changes, err := p.decideNewTicket(tx, pl, dec, id)
	if err != nil {
		return err
	}
	res.TicketID, res.NewTicket = id, true
	if err := p.apply(tx, pl.now, changes...); err != nil {
		return err
	}
	draftOutcome(pl, changes[0], "no auto-reply was queued")
	return nil
}

// decideNewTicket is the ticket the message in pl opens as id, and the
// link back from the ticket it names when it may not join it.
func (p *Pipeline) decideNewTicket(r store.Reader, pl *plan, dec rules.Thread, id string) ([]*Change, error) {
	t := p.ticketFor(id, pl)
	p.attachmentPolicy(pl, 0, 0)
	noteAttachments(pl)
	m := p.message(pl, p.kind(pl))
	if m.Kind == "customer" {
		t.Files, t.FileBytes = fileUsage(pl)
	}
	c := &Change{Ticket: t, Messages: []Stored{m}}
	// The creation comes first in the activity log.
	c.log(store.Event{At: pl.now, Type: rules.EventCreated, Detail: fmt.Sprintf("from %s to %s via %s", t.Requester, t.Route, pl.d.Source)})
	var left []string
	t.CC, left = p.participants(pl.in)
	if len(left) > 0 {
		c.log(store.Event{At: pl.now, Type: rules.EventParticipantsLimited,
			Detail: fmt.Sprintf("%d participants kept (the limit), %d left out: %s", len(t.CC), len(left), strings.Join(left, ", "))})
	}
	changes := []*Change{c}
	if dec.Action == rules.ThreadLinked {
		t.Linked = append(t.Linked, dec.TicketID)
		c.log(store.Event{At: pl.now, Type: rules.EventLinked, Detail: dec.TicketID + ": " + dec.Reason})
		back, err := linkBack(r, dec, id, pl.now)
		if err != nil {
			return nil, err
		}
		changes = append(changes, back)
	}
	if p.forgedFrom(pl) {
		p.Log.Warn("security: unreadable From", "ticket", id, "msgid", pl.in.MessageID, "remote", pl.d.Remote)
		c.log(store.Event{At: pl.now, Type: rules.EventSecurity, Detail: "sender unknown, kept on a new ticket and not answered: " + pl.in.SenderProblem})
	}
	p.Policy.Created(t, pl.now)
	if m.Kind == "customer" {
		p.afterCustomer(c, pl, m.Message, true)
	}
	if reason := p.suppressReason(pl); reason != "" {
		c.log(store.Event{At: pl.now, Type: rules.EventAutoReplySuppressed, Detail: reason})
	} else {
		c.send(p.autoReply(t, pl))
	}
	if m.Kind == "customer" {
		p.afterStore(c, pl)
	}
	return changes, nil
}

// personName is a display name fit to stand for a person: one that holds
// an "@", or the fullwidth or small sign that looks like one (＠, ﹫),
// could pose as another address wherever it is shown, so it is none.
func personName(name string) string {
	if strings.ContainsAny(name, "@＠﹫") {
		return ""
	}
	return name
}

// forgedFrom reports whether the message has a From header that names no
// sender that can be trusted (malformed, or several mailboxes without a
// Sender): a message that may pose as someone else.
func (p *Pipeline) forgedFrom(pl *plan) bool {
	return pl.in.SenderProblem != "" && pl.in.Header.Get("From") != ""
}

// linkBack links the ticket a stranger's mail named to the new ticket the
// mail opened instead.
func linkBack(r store.Reader, dec rules.Thread, newID string, now time.Time) (*Change, error) {
	old, err := r.Ticket(dec.TicketID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(old.Linked, newID) {
		old.Linked = append(old.Linked, newID)
	}
	c := &Change{Ticket: old}
	c.log(store.Event{At: now, Type: rules.EventLinked, Detail: newID + ": " + dec.Reason})
	return c, nil
}

// suppressReason says why no auto-reply may go out, or "".
func (p *Pipeline) suppressReason(pl *plan) string {
	switch {
	case pl.auto.Automatic || pl.auto.Bounce || pl.auto.OutOfOffice:
		if pl.auto.Reason != "" {
			return "automatic mail: " + pl.auto.Reason
		}
		return "automatic mail"
	case pl.in.From.Address == "":
		return "no sender address"
	}
	if _, isAgent := p.agent(pl.in.From.Address); isAgent {
		return "the sender " + pl.in.From.Address + " is an agent"
	}
	return ""
}

// DefaultMaxParticipants caps a ticket's participants when the
// configuration sets no cap.
const DefaultMaxParticipants = 20

func (p *Pipeline) maxParticipants() int {
	if p.MaxParticipants > 0 {
		return p.MaxParticipants
	}
	return DefaultMaxParticipants
}

// participants are the addresses on a customer's To/Cc other than the
// gateway's own, at most maxParticipants of them; they may write to the
// ticket and receive agent replies. left are the ones past the cap.
func (p *Pipeline) participants(in *mailin.Inbound) (kept, left []string) {
	kept = []string{}
	// A header may name many thousands of addresses: each is looked up
	// once, not among all those before it, in the single writer's time.
	seen := map[string]bool{}
	for _, a := range append(append([]string(nil), in.To...), in.Cc...) {
		a = strings.ToLower(a)
		if a == "" || a == in.From.Address || seen[a] || p.Routes.IsOwn(a) {
			continue
		}
		seen[a] = true
		if len(kept) >= p.maxParticipants() {
			left = append(left, a)
			continue
		}
		kept = append(kept, a)
	}
	return kept, left
}

func (p *Pipeline) appendTo(tx store.Tx, pl *plan, dec rules.Thread, res *mailin.Result) error {
	t, err := tx.Ticket(dec.TicketID)
	if err != nil {
		return err
	}
	c := p.decideAppend(t, pl, dec, res)
	res.TicketID = t.ID
	return p.apply(tx, pl.now, c)
}

// decideAppend is what the message in pl does to the ticket t it joins: a
// rating of a closed ticket's survey is taken as such; a customer's mail
// moves the status (reopening), stops the wait and notifies the agents.
func (p *Pipeline) decideAppend(t *store.Ticket, pl *plan, dec rules.Thread, res *mailin.Result) *Change {
	kind := p.kind(pl)
	p.attachmentPolicy(pl, t.Files, t.FileBytes)
	noteAttachments(pl)
	m := p.message(pl, kind)
	if kind == "customer" {
		// Only the customer's files count: not those of automatic mail.
		files, bytes := fileUsage(pl)
		t.Files, t.FileBytes = t.Files+files, t.FileBytes+bytes
	}
	c := &Change{Ticket: t, Messages: []Stored{m}}
	c.log(store.Event{At: pl.now, Type: rules.EventMessage, Detail: fmt.Sprintf("%s message from %s (matched by %s)", kind, m.From, dec.Rule)})
	if kind == "customer" && t.Status == rules.StatusClosed && t.SurveySent && strings.EqualFold(m.From, t.Requester) && p.Policy.surveyReply(c, m.VisibleText, pl.now) {
		kind = "survey"
		res.Action = "survey rating"
		// The thanks answers the rating.
		t.LastInID = pl.in.MessageID
	}
	if kind == "customer" {
		if next := rules.StatusOnCustomerReply(t.Status); next != t.Status {
			mv := p.Policy.changeStatus(t, rules.StatusChange{To: next, Cause: rules.CauseCustomer, Why: "customer replied", At: pl.now}, "")
			c.log(mv.Events...)
			c.send(p.Policy.noticeIntents(t, mv, nil)...)
		}
		p.Policy.CustomerReplied(t, pl.now)
		t.LastInID = pl.in.MessageID
		p.afterCustomer(c, pl, m.Message, false)
	}
	t.Thread = mailout.AppendThread(t.Thread, pl.in.MessageID)
	t.UpdatedAt = pl.now
	if kind == "customer" {
		p.afterStore(c, pl)
	}
	return c
}

// autoReply is the confirmation of a new ticket to its requester, with
// the copy composed before the transaction when there is one (Queue uses
// it only if it still fits t).
func (p *Pipeline) autoReply(t *store.Ticket, pl *plan) Intent {
	in := autoReply(t, pl, pl.requestType)
	if pl.draft != nil {
		in.Prepared = pl.draft.reply
	}
	return in
}

// autoReply is the confirmation of a new ticket t opened by the message in
// pl, which asked for requestType.
func autoReply(t *store.Ticket, pl *plan, requestType string) Intent {
	return Intent{
		Out: mailout.Out{Kind: "auto", To: []mail.Address{{Name: t.RequesterName, Address: t.Requester}},
			Template: "auto_reply", Data: map[string]any{"Name": personName(pl.in.From.Name), "RequestType": requestType}, Auto: "auto-replied", Record: true},
		Queued: store.Event{At: pl.now, Type: rules.EventAutoReply, Detail: "confirmation queued to " + t.Requester},
		Held:   store.Event{At: pl.now, Type: rules.EventAutoReplySuppressed},
	}
}

// Accepts reports whether mail to addr is taken: a routing address, one of
// its plus variants, or a bounce address of mail we sent.
func (p *Pipeline) Accepts(addr string) bool {
	if _, _, ok := p.Routes.Match(addr); ok {
		return true
	}
	return p.IsBounceAddress(addr)
}
