package desk

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// customerOutcome is what the rules made of a customer message, for the
// notifications that follow.
type customerOutcome struct {
	events    []store.Event
	urgent    bool // [Urgent]/[Critical] in the subject: alert the queue at once
	escalated bool // the ticket was escalated by this message
	isNew     bool // the message opened the ticket
}

// customerRules applies the requester's plan, the subject tags and
// escalation to t.
func (p *Pipeline) customerRules(c *Change, pl *plan, m *store.Message, isNew bool) customerOutcome {
	t := c.Ticket
	out := customerOutcome{isNew: isNew}
	now := pl.now
	plan := rules.PlanFor(p.Plans, t.Requester)
	tagged := rules.Tags(p.requestTypes(), pl.in.Subject)
	clean, urgent, category := tagged.Clean, tagged.Urgent, tagged.Type.Category
	if isNew {
		pl.requestType = tagged.Type.Name
		if tagged.Urgent && tagged.Type.Name == "" {
			pl.requestType = "urgent request"
		}
	}
	if isNew || t.Plan == "" {
		t.Plan = plan.Name
	}
	if isNew {
		if s := rules.BaseSubject(clean, p.Prefix); s != "" {
			t.Subject = s
		}
	}
	if category != "" && (isNew || t.Category == "") && t.Category != category {
		t.Category = category
		out.events = append(out.events, store.Event{At: now, Type: rules.EventCategory, Detail: category + " (subject tag)"})
	}
	before := t.Priority
	if prio := tagged.Type.Priority; isNew && prio != "" && prio != t.Priority && !urgent {
		if prio.Rank() > plan.MaxPriority.Rank() {
			prio = plan.MaxPriority
		}
		out.events = append(out.events, store.Event{At: now, Type: rules.EventPriority, Detail: fmt.Sprintf("%s → %s (%s)", t.Priority, prio, tagged.Type.Name)})
		t.Priority = prio
	}
	if urgent {
		out.urgent = true
		p.raise(t, plan.MaxPriority, "the customer marked the mail urgent", &out, now)
	}
	viaRoute := pl.route.Kind == "escalation"
	if viaRoute || pl.asksEscalation { // m.VisibleText is pl.visible
		why := "the customer asked to escalate"
		if viaRoute {
			why = "mail to the escalation address " + strings.ToLower(pl.route.Address)
		}
		if t.Escalated {
			// Escalation happens once; asking again is kept on the record
			// (the managers watch the ticket and see the mail) without a
			// second acknowledgement.
			out.events = append(out.events, store.Event{At: now, Type: rules.EventEscalationRequested,
				Detail: why + "; already escalated, priority " + string(t.Priority)})
		} else {
			p.escalate(c, pl, plan, isNew && viaRoute, why, &out)
		}
	}
	switch {
	case isNew:
		// The clocks were started before the plan and priority were known.
		// Level 1 counts in the calendar of the route's queue, not the
		// escalation queue the ticket may have moved to.
		p.Policy.createdIn(t, pl.route.Queue, now)
	case t.Priority != before:
		p.Policy.PriorityChanged(t, now)
	}
	c.log(out.events...)
	return out
}

// requestTypes are the configured request types, or the shipped ones.
func (p *Pipeline) requestTypes() []rules.RequestType {
	if p.RequestTypes != nil {
		return p.RequestTypes
	}
	return rules.DefaultRequestTypes()
}

// raise lifts t's priority to target (never lowers it).
func (p *Pipeline) raise(t *store.Ticket, target rules.Priority, why string, out *customerOutcome, now time.Time) {
	if target.Rank() <= t.Priority.Rank() {
		return
	}
	out.events = append(out.events, store.Event{At: now, Type: rules.EventPriority, Detail: fmt.Sprintf("%s → %s (%s)", t.Priority, target, why)})
	t.Priority = target
}

// escalate raises t one level (to high for a new ticket opened at the
// escalation address), capped by the customer's plan, flags it, adds the
// managers as watchers, and acknowledges an existing ticket's escalation
// to the customer who asked (a new ticket's is told by its auto-reply
// alone).
func (p *Pipeline) escalate(c *Change, pl *plan, plan rules.Plan, opened bool, why string, out *customerOutcome) {
	t, now := c.Ticket, pl.now
	target := t.Priority.Up(plan.MaxPriority)
	if opened {
		target = rules.PriorityHigh
		if plan.MaxPriority.Rank() < target.Rank() {
			target = plan.MaxPriority
		}
	}
	p.raise(t, target, "escalation", out, now)
	out.escalated = true
	detail := why + "; priority " + string(t.Priority) + p.escalateTicket(t, now)
	out.events = append(out.events, store.Event{At: now, Type: rules.EventEscalated, Detail: detail})
	// The one who asked is told, as of the other notices about their
	// own mail: the requester, or a participant.
	from := pl.in.From
	if out.isNew || pl.auto.Automatic || from.Address == "" {
		return // a new ticket gets the auto-reply; machines get nothing
	}
	name := personName(from.Name)
	c.send(Intent{
		Out: mailout.Out{Kind: "escalated", To: []mail.Address{{Name: name, Address: from.Address}},
			Template: "escalated", Data: map[string]any{"Name": name}, Auto: "auto-replied", Record: true},
		Queued: store.Event{At: now, Type: rules.EventEscalationAck, Detail: "acknowledgement queued to " + from.Address},
	})
}

// notifyAgents mails the agents concerned about a customer message: the
// queue's agents on a new ticket, else the assignee (the queue while
// unassigned) and watchers; the queue and the managers as well, whatever
// the queue, when the mail is urgent, the ticket critical, or the mail
// escalated it.
func (p *Pipeline) notifyAgents(c *Change, pl *plan, m *store.Message, out customerOutcome) {
	t := c.Ticket
	var to []string
	alarm := out.urgent || out.escalated || t.Priority == rules.PriorityCritical
	// An assignee no longer among the agents works on nothing: the queue
	// hears of the mail as if the ticket were unassigned.
	_, owned := p.agent(t.Assignee)
	if !owned || alarm {
		to = append(to, p.queueAgents(t.Queue)...)
	}
	if owned {
		to = append(to, t.Assignee)
	}
	if alarm {
		to = append(to, p.managers()...)
	}
	to = append(to, t.Watchers...)
	// An agent writing in as a customer is not told of their own mail.
	to = slices.DeleteFunc(p.agentsOnly(to), func(a string) bool { return strings.EqualFold(a, m.From) })
	data := map[string]any{"Urgent": out.urgent, "Escalated": out.escalated, "IsNew": out.isNew}
	if sent := p.notify(c, pl, m, dedupe(to, ""), data); len(sent) > 0 {
		c.log(store.Event{At: pl.now, Type: rules.EventNotified, Detail: "agents notified: " + strings.Join(sent, ", ")})
	}
}

// escalateTicket moves t to level 2 (see Policy.Escalate) and adds the
// managers as watchers; it returns what changed as "; …" parts of the
// escalated event's detail.
func (p *Pipeline) escalateTicket(t *store.Ticket, now time.Time) string {
	detail := ""
	if d := p.Policy.Escalate(t, now); d != "" {
		detail += "; " + d
	}
	var added []string
	for _, addr := range p.managers() {
		if !slices.Contains(t.Watchers, addr) {
			t.Watchers = append(t.Watchers, addr)
			added = append(added, addr)
		}
	}
	if len(added) > 0 {
		detail += "; watchers " + strings.Join(added, ", ")
	}
	return detail
}

// managers are the addresses of the agents who manage the desk.
func (p *Pipeline) managers() []string {
	var out []string
	for _, a := range p.Agents {
		if a.Manager {
			out = append(out, strings.ToLower(a.Email))
		}
	}
	return out
}

// queueAgents are the addresses of the agents working on queue.
func (p *Pipeline) queueAgents(queue string) []string {
	var out []string
	for _, a := range p.Agents {
		if slices.ContainsFunc(a.Queues, func(q string) bool { return strings.EqualFold(q, queue) }) {
			out = append(out, strings.ToLower(a.Email))
		}
	}
	return out
}

// agentsOnly keeps the addresses of configured agents: someone removed
// from the agents (an assignee or watcher of old) gets no more ticket mail.
func (p *Pipeline) agentsOnly(list []string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(a string) bool {
		_, ok := p.agent(a)
		return !ok
	})
}

// dedupe lowercases and removes duplicates, empties and skip.
func dedupe(list []string, skip string) []string {
	var out []string
	for _, a := range list {
		a = strings.ToLower(strings.TrimSpace(a))
		if a != "" && a != strings.ToLower(skip) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// signedAddress is the ticket's routing address with a signed token for
// agent, e.g. support+hs-123456-r-...@example.com; "" without a key.
func (p *Pipeline) signedAddress(t *store.Ticket, kind rules.TokenKind, agent string) string {
	return signedAddress(p.Signer, t, kind, agent)
}

// signedAddress is t's routing address with a token signed by s for
// agent; "" without a key. The pipeline's notifications and the sweep's
// alerts hand out the same addresses.
func signedAddress(s rules.Signer, t *store.Ticket, kind rules.TokenKind, agent string) string {
	tok := s.Token(kind, t.ID, agent)
	local, domain, ok := strings.Cut(t.Route, "@")
	if tok == "" || !ok {
		return ""
	}
	return local + "+" + tok + "@" + domain
}

// notify queues one notification per agent address in to, each with the
// agent's own signed Reply-To, carrying the message's text and files (the
// outbox refers to the stored message for them).
func (p *Pipeline) notify(c *Change, pl *plan, m *store.Message, to []string, extra map[string]any) []string {
	t := c.Ticket
	var files []mailout.Attachment
	for _, a := range pl.in.Attachments {
		files = append(files, mailout.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content})
	}
	// A display name that holds an "@" may pose as another address in the
	// agent's mail client: the customer's own address is shown instead.
	writer := personName(pl.in.From.Name)
	if writer == "" {
		writer = m.From
	}
	var sent []string
	for _, addr := range to {
		agent, ok := p.agent(addr)
		if !ok {
			agent = Agent{Email: addr}
		}
		reply := p.signedAddress(t, rules.TokenReply, addr)
		if reply == "" {
			p.Log.Warn("agent notification not sent: no signing key for reply addresses", "ticket", t.ID, "agent", addr)
			continue
		}
		data := markerData(map[string]any{
			"AgentName": agent.displayName(), "Writer": writer, "WriterAddress": m.From, "IsNew": false, "Urgent": false, "Escalated": false,
			"SLADue": slaDue(t), "Files": fileNames(m), "Refused": pl.refused,
			"ReplyAddress": reply, "NoteAddress": p.signedAddress(t, rules.TokenNote, addr),
		})
		for k, v := range extra {
			data[k] = v
		}
		c.send(Intent{Out: mailout.Out{
			Kind: "notify", To: []mail.Address{{Name: agent.Name, Address: addr}},
			FromName: writer + " via " + p.Desk.FromName, ReplyTo: &mail.Address{Address: reply},
			Template: "notify", Data: data, Carries: m, Attachments: files, Internal: true,
		}})
		sent = append(sent, addr)
	}
	return sent
}

func fileNames(m *store.Message) []string {
	out := []string{}
	for _, a := range m.Attachments {
		out = append(out, fmt.Sprintf("%s (%s, %d bytes)", a.Filename, a.ContentType, a.Size))
	}
	return out
}

// slaDue is the first-response (or, after it, the resolution) due time of
// t in UTC, level 2's on an escalated ticket, or "" without an SLA. A
// resolution clock paused (on hold) has no due time yet: it says since
// when it stands.
func slaDue(t *store.Ticket) string {
	if t.SLA == nil {
		return ""
	}
	level, firstAt, first, res := "", t.SLA.FirstResponseAt, t.SLA.FirstResponseDue, t.SLA.ResolutionDue
	if e := t.SLA.Escalation; e != nil {
		level, firstAt, first, res = "level 2 ", e.FirstResponseAt, e.FirstResponseDue, e.ResolutionDue
	}
	if firstAt == nil && !first.IsZero() {
		return level + "first response by " + first.UTC().Format("2006-01-02 15:04 MST")
	}
	if p := t.SLA.PausedAt; !res.IsZero() && !p.IsZero() {
		// On hold: the due time moves later by the pause once it ends.
		return level + "resolution paused since " + p.UTC().Format("2006-01-02 15:04 MST")
	}
	if !res.IsZero() {
		return level + "resolution by " + res.UTC().Format("2006-01-02 15:04 MST")
	}
	return ""
}
