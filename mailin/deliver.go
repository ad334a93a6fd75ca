package mailin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// Config is the [inbound] section of the configuration file.
type Config struct {
	SMTPListen      string `toml:"smtp_listen"`
	LMTPListen      string `toml:"lmtp_listen"`
	Hostname        string `toml:"hostname"`
	MaxMessageBytes int64  `toml:"max_message_bytes"`
	MaxRecipients   int    `toml:"max_recipients"`
	MaxConnections  int    `toml:"max_connections"`
	ReadTimeout     string `toml:"read_timeout"`
	WriteTimeout    string `toml:"write_timeout"`
	MaxHeaderBytes  int    `toml:"max_header_bytes"`
	MaxMIMEDepth    int    `toml:"max_mime_depth"`
	MaxMIMEParts    int    `toml:"max_mime_parts"`
}

// Delivery is one message handed to the pipeline by a listener, the IMAP
// poller or inject.
type Delivery struct {
	MailFrom string   // reverse path; "" is the null sender
	Rcpts    []string // recipients, each a routing address (or a plus variant)
	Raw      []byte
	Source   string // "smtp", "lmtp", "inject", "imap:<name>"
	Remote   string
	// Checkpoint, when set, is committed in the same transaction as the
	// message (the IMAP poller's exactly-once promise).
	Checkpoint *store.Checkpoint
}

// Result says what became of a delivered message.
type Result struct {
	TicketID  string
	MessageID string
	NewTicket bool
	Duplicate bool
	Action    string // thread action, or "duplicate"
}

var (
	// ErrUnknownRecipient is returned when no recipient is a routing address.
	ErrUnknownRecipient = errors.New("no such routing address")
)

// Pipeline turns delivered messages into ticket changes. Deliver returns
// only after the change is committed to disk.
type Pipeline struct {
	Store     *store.Store
	Routes    rules.Routes
	Prefix    string // ticket id prefix, e.g. "HS"
	Hostname  string // domain of generated Message-IDs
	Desk      *mailout.Desk
	Limits    Limits
	Thread    rules.ThreadPolicy
	Log       *slog.Logger
	Now       func() time.Time
	// Agents, Signer and Plans drive agent mail and customer plans.
	Agents []Agent
	Signer rules.Signer
	Plans  []rules.Plan
	// Policy keeps lifecycle and SLA state in step with every change.
	Policy *mailout.Policy
	// OnCommit is called after a commit that queued outgoing mail.
	OnCommit func()
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

// Route returns the route of the first recipient that is a routing address.
func (p *Pipeline) Route(rcpts []string) (rules.Route, string, bool) {
	for _, r := range rcpts {
		if rt, tag, ok := p.Routes.Match(r); ok {
			return rt, tag, true
		}
	}
	return rules.Route{}, "", false
}

// Deliver parses, threads and commits one message. The returned error wraps
// ErrUnknownRecipient or ErrNotMail for mail that must be refused; any
// other error is temporary (the sender should retry).
func (p *Pipeline) Deliver(ctx context.Context, d *Delivery) (Result, error) {
	route, _, ok := p.Route(d.Rcpts)
	if !ok {
		return Result{}, fmt.Errorf("%v: %w", d.Rcpts, ErrUnknownRecipient)
	}
	in, err := Parse(d.Raw, p.Limits)
	if err != nil {
		return Result{}, err
	}
	plan := p.plan(d, in, route)
	var res Result
	err = p.Store.Update(func(tx *store.Tx) error {
		res = Result{MessageID: in.MessageID}
		return p.commit(tx, plan, &res)
	})
	if err != nil {
		return Result{}, fmt.Errorf("commit message %s: %w", in.MessageID, err)
	}
	p.Log.Info("message stored", "ticket", res.TicketID, "msgid", in.MessageID, "action", res.Action, "source", d.Source, "remote", d.Remote)
	if p.OnCommit != nil {
		p.OnCommit()
	}
	return res, nil
}

// plan is everything decided about a message before its transaction.
type plan struct {
	d     *Delivery
	in    *Inbound
	route rules.Route
	auto  rules.Auto
	now   time.Time
}

func (p *Pipeline) plan(d *Delivery, in *Inbound, route rules.Route) *plan {
	return &plan{d: d, in: in, route: route, now: p.now(),
		auto: rules.ClassifyAuto(in.Header, d.MailFrom, in.From.Address, p.Identity())}
}

// commit runs inside the store transaction. It may run more than once
// (batched commits retry), so it only writes to tx and res.
func (p *Pipeline) commit(tx *store.Tx, pl *plan, res *Result) error {
	if pl.d.Checkpoint != nil {
		if err := tx.PutCheckpoint(*pl.d.Checkpoint); err != nil {
			return err
		}
	}
	in := pl.in
	if tid := tx.TicketByMessageID(in.MessageID); tid != "" {
		dup, err := tx.HasMessage(tid, in.MessageID)
		if err != nil {
			return err
		}
		if dup {
			res.TicketID, res.Duplicate, res.Action = tid, true, "duplicate"
			return nil
		}
	}
	if handled, err := p.agentMail(tx, pl, res); handled || err != nil {
		return err
	}
	cand, err := p.candidate(tx, in)
	if err != nil {
		return err
	}
	decision := p.Thread.DecideThread(cand, in.From.Address, false, pl.now)
	res.Action = string(decision.Action)
	switch decision.Action {
	case rules.ThreadAppend, rules.ThreadReopen:
		return p.appendTo(tx, pl, decision, res)
	default:
		return p.newTicket(tx, pl, decision, res)
	}
}

// candidate finds the ticket a message names: by subject token first, then
// by In-Reply-To, then References (newest first).
func (p *Pipeline) candidate(tx *store.Tx, in *Inbound) (*rules.Candidate, error) {
	if id, ok := rules.TicketToken(in.Subject, p.Prefix); ok {
		if t, err := tx.Ticket(id); err == nil {
			return candidateOf(t, "token"), nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	refs := append([]string(nil), in.InReplyTo...)
	for i := len(in.References) - 1; i >= 0; i-- {
		refs = append(refs, in.References[i])
	}
	for _, ref := range refs {
		if id := tx.TicketByMessageID(ref); id != "" {
			t, err := tx.Ticket(id)
			if err != nil {
				return nil, err
			}
			return candidateOf(t, "reference"), nil
		}
	}
	return nil, nil
}

func candidateOf(t *store.Ticket, via string) *rules.Candidate {
	c := &rules.Candidate{ID: t.ID, Status: t.Status, Requester: t.Requester, Participants: t.CC, Via: via}
	if t.ClosedAt != nil {
		c.ClosedAt = *t.ClosedAt
	}
	return c
}

func (p *Pipeline) message(tx *store.Tx, pl *plan, kind string) (*store.Message, error) {
	in := pl.in
	rawHash, err := tx.PutBlob(in.Raw)
	if err != nil {
		return nil, err
	}
	m := &store.Message{
		MessageID: in.MessageID, Direction: "in", Kind: kind,
		From: in.From.Address, To: in.To, Cc: in.Cc, Subject: in.Subject,
		Text: in.Text, VisibleText: visibleText(in.Text), CreatedAt: pl.now,
		Attachments: []store.Attachment{}, Raw: rawHash, Notes: in.Notes,
	}
	for _, a := range in.Attachments {
		h, err := tx.PutBlob(a.Content)
		if err != nil {
			return nil, err
		}
		m.Attachments = append(m.Attachments, store.Attachment{Filename: a.Filename, ContentType: a.ContentType,
			Size: int64(len(a.Content)), SHA256: h, ContentID: a.ContentID, Inline: a.Inline})
	}
	return m, nil
}

func (p *Pipeline) kind(pl *plan) string {
	if pl.auto.Automatic || pl.auto.OutOfOffice || pl.auto.Bounce {
		return "system"
	}
	return "customer"
}

func (p *Pipeline) newTicket(tx *store.Tx, pl *plan, dec rules.Thread, res *Result) error {
	in := pl.in
	id, err := tx.NewTicketID(p.Prefix)
	if err != nil {
		return err
	}
	subject := rules.BaseSubject(in.Subject, p.Prefix)
	if subject == "" {
		subject = "(no subject)"
	}
	t := &store.Ticket{
		ID: id, Subject: subject, Status: rules.StatusNew, Priority: rules.PriorityMedium,
		Queue: pl.route.Queue, Route: strings.ToLower(pl.route.Address), Category: pl.route.Category,
		Requester: in.From.Address, RequesterName: in.From.Name, CC: p.participants(in),
		Assignee: "", CreatedAt: pl.now, UpdatedAt: pl.now, LastInID: in.MessageID,
		Thread: []string{in.MessageID},
	}
	if t.Requester == "" {
		t.Requester = strings.ToLower(pl.d.MailFrom)
	}
	m, err := p.message(tx, pl, p.kind(pl))
	if err != nil {
		return err
	}
	if err := tx.AddMessage(id, m); err != nil {
		return err
	}
	events := []store.Event{{At: pl.now, Type: "created", Detail: fmt.Sprintf("from %s to %s via %s", t.Requester, t.Route, pl.d.Source)}}
	if dec.Action == rules.ThreadLinked {
		t.Linked = append(t.Linked, dec.TicketID)
		events = append(events, store.Event{At: pl.now, Type: "linked", Detail: dec.TicketID + ": " + dec.Reason})
		if err := p.linkBack(tx, dec, id, pl.now); err != nil {
			return err
		}
	}
	p.Policy.Created(t, pl.now)
	if m.Kind == "customer" {
		if err := p.afterCustomer(tx, t, pl, m, true); err != nil {
			return err
		}
	}
	if reason := p.suppressReason(pl); reason != "" {
		events = append(events, store.Event{At: pl.now, Type: "auto_reply_suppressed", Detail: reason})
	} else {
		ev, err := p.queueAutoReply(tx, t, pl)
		if err != nil {
			return err
		}
		events = append(events, ev)
	}
	for _, e := range events {
		if err := tx.AddEvent(id, e); err != nil {
			return err
		}
	}
	res.TicketID, res.NewTicket = id, true
	return tx.PutTicket(t)
}

func (p *Pipeline) linkBack(tx *store.Tx, dec rules.Thread, newID string, now time.Time) error {
	old, err := tx.Ticket(dec.TicketID)
	if err != nil {
		return err
	}
	if !slices.Contains(old.Linked, newID) {
		old.Linked = append(old.Linked, newID)
	}
	if err := tx.AddEvent(old.ID, store.Event{At: now, Type: "linked", Detail: newID + ": " + dec.Reason}); err != nil {
		return err
	}
	return tx.PutTicket(old)
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
	return ""
}

// participants are the addresses on a customer's To/Cc other than the
// gateway's own; they may write to the ticket and receive agent replies.
func (p *Pipeline) participants(in *Inbound) []string {
	out := []string{}
	for _, a := range append(append([]string(nil), in.To...), in.Cc...) {
		a = strings.ToLower(a)
		if a == "" || a == in.From.Address || p.Routes.IsOwn(a) || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	return out
}

func (p *Pipeline) appendTo(tx *store.Tx, pl *plan, dec rules.Thread, res *Result) error {
	t, err := tx.Ticket(dec.TicketID)
	if err != nil {
		return err
	}
	kind := p.kind(pl)
	m, err := p.message(tx, pl, kind)
	if err != nil {
		return err
	}
	if err := tx.AddMessage(t.ID, m); err != nil {
		return err
	}
	events := []store.Event{{At: pl.now, Type: "message", Detail: fmt.Sprintf("%s message from %s (matched by %s)", kind, m.From, dec.Rule)}}
	if kind == "customer" && t.Status == rules.StatusClosed && t.SurveySent {
		handled, err := p.Policy.SurveyReply(tx, p.Desk, t, m.VisibleText, pl.now)
		if err != nil {
			return err
		}
		if handled {
			dec.Action = rules.ThreadAppend
			kind = "survey"
		}
	}
	if kind == "customer" {
		if dec.Action == rules.ThreadReopen {
			events = append(events, store.Event{At: pl.now, Type: "reopened", Detail: "customer replied to the closed ticket"})
			t.ClosedAt = nil
		}
		if next := rules.StatusOnCustomerReply(t.Status); next != t.Status {
			events = append(events, store.Event{At: pl.now, Type: "status", Detail: fmt.Sprintf("%s → %s (customer replied)", t.Status, next)})
			from := t.Status
			t.Status = next
			p.Policy.StatusChanged(t, from, pl.now)
		}
		p.Policy.CustomerReplied(t, pl.now)
		t.LastInID = pl.in.MessageID
		if err := p.afterCustomer(tx, t, pl, m, false); err != nil {
			return err
		}
	}
	t.Thread = mailout.AppendThread(t.Thread, pl.in.MessageID)
	t.UpdatedAt = pl.now
	for _, e := range events {
		if err := tx.AddEvent(t.ID, e); err != nil {
			return err
		}
	}
	res.TicketID = t.ID
	return tx.PutTicket(t)
}

func (p *Pipeline) queueAutoReply(tx *store.Tx, t *store.Ticket, pl *plan) (store.Event, error) {
	q, err := p.Desk.Queue(tx, t, mailout.Out{
		Kind: "auto", To: []mail.Address{{Name: t.RequesterName, Address: t.Requester}},
		Template: "auto_reply", Data: map[string]any{"Name": pl.in.From.Name},
		Auto: "auto-replied", Record: true,
	}, pl.now)
	if err != nil {
		return store.Event{}, err
	}
	if q.Skipped != "" {
		return store.Event{At: pl.now, Type: "auto_reply_suppressed", Detail: q.Skipped}, nil
	}
	return store.Event{At: pl.now, Type: "auto_reply", Detail: "confirmation queued to " + t.Requester}, nil
}

// visibleText is the new part of a reply.
func visibleText(text string) string { return rules.VisibleText(text) }
