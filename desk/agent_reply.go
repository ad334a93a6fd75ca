package desk

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// agentReply takes a verified agent's mail to ticket t: an out-of-office
// answer is only kept; otherwise the commands at its top are checked all
// together (one bad command refuses the whole mail: nothing changes and
// nothing reaches the customer), then the text goes to the customer as a
// public reply or to the other agents as an internal note. Commands that
// close the ticket ask the customer for a satisfaction rating.
func (p *Pipeline) agentReply(tx store.Tx, pl *plan, res *mailin.Result, t *store.Ticket, agent Agent, kind rules.TokenKind) error {
	res.TicketID = t.ID
	// The attachment limits are the customer's ([limits]: the ticket's
	// customer mail together): the files an agent sends all go on the
	// ticket and to the customer.
	pl.in.Attachments, pl.refused = pl.files, nil
	cmds, _, _ := rules.ParseCommands(cutNotification(pl.in.Text))
	j, err := readJoins(tx, t.ID, cmds)
	if err != nil {
		return err
	}
	c, others := p.decideAgentReply(t, j, pl, res, agent, kind)
	return p.apply(tx, pl.now, append([]*Change{c}, others...)...)
}

// decideAgentReply decides an agent's mail to t; j are the tickets its
// #merge and #link commands name. The changes to those come second.
func (p *Pipeline) decideAgentReply(t *store.Ticket, j joins, pl *plan, res *mailin.Result, agent Agent, kind rules.TokenKind) (*Change, []*Change) {
	now := pl.now
	c := &Change{Ticket: t}
	t.UpdatedAt = now
	if pl.auto.Automatic || pl.auto.OutOfOffice || pl.auto.Bounce {
		res.Action = "agent-automatic"
		c.Messages = []Stored{p.message(pl, "system")}
		c.log(store.Event{At: now, Type: rules.EventMessage, Actor: agent.Email,
			Detail: "automatic mail from agent " + agent.Email + " kept, not sent to the customer: " + pl.auto.Reason})
		return c, nil
	}
	cmds, rest, errs := rules.ParseCommands(cutNotification(pl.in.Text))
	visible := newText(rest)
	note := kind == rules.TokenNote || slices.ContainsFunc(cmds, func(c rules.Command) bool { return c.Name == "note" })
	if note {
		visible = withForwarded(visible, pl.in.Subject, pl.in.Text, rest)
	}
	var problems []string
	for _, e := range errs {
		problems = append(problems, e.Error())
	}
	saved, bad := p.savedReplies(t, agent, cmds)
	problems = append(problems, bad...)
	if saved != "" && len(problems) == 0 {
		visible = strings.TrimSpace(saved + "\n\n" + visible)
	}
	// Dry run on a copy: every command must pass before any applies.
	dry := cloneTicket(t)
	if len(problems) == 0 {
		problems = p.applyCommands(dry, cmds, agent.actor(), now, false).problems
	}
	if len(problems) == 0 {
		problems = p.joinProblems(dry, cmds, j, agent.actor())
	}
	if len(problems) > 0 {
		res.Action = "agent-refused"
		p.refuseAgentMail(c, pl, agent, kind, visible, problems)
		return c, nil
	}
	// Words or a file attached (the invoice asked for, without a word)
	// are something to send; a picture the text shows (a signature's) is
	// not, nor the winmail.dat Outlook packs a rich-text mail's formatting
	// in. A file Apple Mail attaches "inline" is a file all the same.
	said := visible != "" || slices.ContainsFunc(pl.in.Attachments, func(a mailin.Part) bool { return !shownInline(pl, a) && !richTextPacking(a) })
	// Who may answer is judged after the mail's commands ("#assign me"
	// first), in the queue the ticket was in when the agent wrote: a reply
	// that comes with #escalate answers at level 1, before the ticket
	// moves on.
	owner := p.ownerView(dry)
	owner.Queue = t.Queue
	before := viewOf(t)
	var opened applied
	switch {
	case note && said:
		// Added once the commands are applied: the note goes to the
		// ticket's people as they leave it (an #escalate's note to
		// level 2, an #assign's to the new assignee).
		res.Action = "note"
	case said && rules.MayReply(agent.actor(), owner) != nil:
		// Only the assignee's reply reaches the customer; another agent's
		// (or the second of two racing for an unassigned ticket, or one
		// of another queue's agents on an unassigned ticket) is kept as a
		// note, and its author told who owns the ticket.
		res.Action = "held"
		p.holdReply(c, pl, agent, visible, owner.Assignee)
	case said:
		res.Action = "agent"
		opened = p.publicReplyState(t, agent, cmds, now)
		c.log(opened.events...)
	default:
		res.Action = "commands"
	}
	done := p.applyCommands(t, cmds, agent.actor(), now, res.Action == "agent")
	c.log(done.events...)
	escalated := slices.ContainsFunc(done.events, func(e store.Event) bool { return e.Type == rules.EventEscalated })
	switch {
	case res.Action == "note":
		p.addNote(c, pl, agent.Email, visible)
	case res.Action == "commands" && escalated:
		// A bare #escalate: level 2 and the managers now watching hear
		// of it as of a note, not first at their SLA warning.
		p.addNote(c, pl, agent.Email, commandLines(cmds))
	case res.Action == "commands":
		// A mail of only commands is kept as a note.
		m := p.message(pl, "note")
		m.VisibleText = commandLines(cmds)
		c.Messages = append(c.Messages, m)
	}
	// Those the mail handed the ticket to and did not write to (the
	// level 2 of a reply that escalates) hear of it as of a note.
	handover(c, p.Signer, p.agentRefs(), rules.Handing{By: agent.Email, Before: before, Escalated: escalated}, agent.displayName(), agent.displayName()+" via "+p.Desk.FromName, commandLines(cmds), now)
	if res.Action == "agent" {
		// The agent's own Message-ID stays out of the ticket's thread, so
		// it never shows in customer mail.
		m := p.message(pl, "agent")
		m.VisibleText = visible
		c.Messages = append(c.Messages, m)
		notice := done.replyNotice()
		if notice == "" {
			notice = opened.replyNotice()
		}
		c.send(p.publicReply(t, pl, agent, visible, notice))
	}
	for _, mv := range append(opened.moves, done.moves...) {
		c.send(p.Policy.noticeIntents(t, mv, nil)...)
	}
	return c, p.decideJoins(c, t, cmds, j, agent.actor(), "", now)
}

// richTextPacking reports the winmail.dat (TNEF) part Outlook adds to a
// mail written in rich text: its formatting, not a file the writer chose.
func richTextPacking(a mailin.Part) bool {
	ct := strings.ToLower(a.ContentType)
	return ct == "application/ms-tnef" || ct == "application/vnd.ms-tnef" || strings.EqualFold(a.Filename, "winmail.dat")
}

// savedReplies renders the saved replies a mail's #reply commands name,
// in order, with the ticket's fields; problems name the unknown ones.
func (p *Pipeline) savedReplies(t *store.Ticket, agent Agent, cmds []rules.Command) (text string, problems []string) {
	var parts []string
	for _, c := range cmds {
		if c.Name != "reply" {
			continue
		}
		data := map[string]any{"Ticket": t, "TicketID": t.ID, "Subject": t.Subject, "Name": t.RequesterName,
			"Requester": t.Requester, "AgentName": agent.displayName(), "FromName": p.Desk.FromName}
		s, err := p.Desk.Templates.Reply(c.Reply, data)
		if errors.Is(err, mailout.ErrNoReply) {
			known := "there are no saved replies"
			if names := p.Desk.Templates.ReplyNames(); len(names) > 0 {
				known = "the saved replies are " + strings.Join(names, ", ")
			}
			problems = append(problems, fmt.Sprintf("%q: no saved reply is called %q; %s", c.Line, c.Reply, known))
			continue
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%q: %v", c.Line, err))
			continue
		}
		parts = append(parts, strings.TrimSpace(s))
	}
	return strings.Join(parts, "\n\n"), problems
}

// viewOf is what authorization sees of t.
func viewOf(t *store.Ticket) rules.TicketView {
	return rules.TicketView{Queue: t.Queue, Assignee: t.Assignee, Status: t.Status, Priority: t.Priority}
}

// ownerView is viewOf for the rights of an agent on t: an assignee no
// longer among the agents owns nothing, so the ticket is its queue's, as
// its notifications, alerts and follow-ups are.
func (p *Pipeline) ownerView(t *store.Ticket) rules.TicketView {
	v := viewOf(t)
	if _, ok := p.agent(v.Assignee); !ok {
		v.Assignee = ""
	}
	return v
}

// holdReply keeps an agent's public reply on a ticket someone else owns
// (owner), or on an unassigned one of a queue the agent does not work
// (owner ""), as an internal note, sent to the owner and the ticket's
// other agents as every note is, and tells the agent who owns it and how
// to take it over.
func (p *Pipeline) holdReply(c *Change, pl *plan, agent Agent, visible, owner string) {
	t := c.Ticket
	p.addNote(c, pl, agent.Email, visible)
	why := "the ticket is assigned to " + owner
	if owner == "" {
		why = fmt.Sprintf("the ticket is in the queue %s, which %s does not work", t.Queue, agent.Email)
	}
	c.log(store.Event{At: pl.now, Type: rules.EventReplyHeld, Actor: agent.Email,
		Detail: fmt.Sprintf("reply by %s kept as a note, not sent: %s", agent.Email, why)})
	o := mailout.Out{
		Kind: "held", To: []mail.Address{{Name: agent.Name, Address: agent.Email}},
		Subject:  fmt.Sprintf("[%s] Not sent: %s", t.ID, t.Subject),
		Template: "reply_held", Data: markerData(map[string]any{"AgentName": agent.displayName(), "Owner": p.authorName(owner), "OwnerAddress": owner,
			"Queue": t.Queue, "CanTakeOver": owner != "" && (agent.Manager || agent.TakeOver)}),
		Internal: true,
	}
	if reply := p.signedAddress(t, rules.TokenReply, agent.Email); reply != "" {
		o.ReplyTo = &mail.Address{Address: reply}
	}
	c.send(Intent{Out: o})
}

// refuseAgentMail keeps a mail with bad or refused commands as a note and
// tells the agent what was wrong. The mail telling them answers to the
// address the refused mail went to (kind): a note sent again with its
// commands corrected is a note again, never a reply to the customer.
func (p *Pipeline) refuseAgentMail(c *Change, pl *plan, agent Agent, kind rules.TokenKind, visible string, problems []string) {
	t := c.Ticket
	c.log(store.Event{At: pl.now, Type: rules.EventCommandsRefused, Actor: agent.Email, Detail: strings.Join(problems, "; ")})
	reply := p.signedAddress(t, kind, agent.Email)
	o := mailout.Out{
		Kind: "error", To: []mail.Address{{Name: agent.Name, Address: agent.Email}},
		Subject:  fmt.Sprintf("[%s] Not applied: %s", t.ID, t.Subject),
		Template: "agent_error", Data: markerData(map[string]any{"AgentName": agent.displayName(), "NotAgent": false, "Problems": problems}),
		Internal: true,
	}
	if reply != "" {
		o.ReplyTo = &mail.Address{Address: reply}
	}
	c.send(Intent{Out: o})
	m := p.message(pl, "note")
	m.VisibleText = visible
	c.Messages = append(c.Messages, m)
}

// publicReplyState is what a public reply does to the ticket before the
// mail goes out: the first replying agent takes an unassigned ticket (or
// one whose assignee is no longer an agent), and unless a command sets
// the status a new or waiting ticket is open, waiting on the customer. A
// ticket on hold, resolved or closed keeps its status: only a status
// command (under its own authorization) moves it, and its
// awaiting-customer clock starts only when that command sets it open or
// waiting.
func (p *Pipeline) publicReplyState(t *store.Ticket, agent Agent, cmds []rules.Command, now time.Time) applied {
	var out applied
	addr := strings.ToLower(agent.Email)
	if p.ownerView(t).Assignee == "" {
		detail := addr + " (first reply)"
		if t.Assignee != "" {
			detail = fmt.Sprintf("%s (first reply; was %s, no longer an agent)", addr, t.Assignee)
		}
		t.Assignee = addr
		out.events = append(out.events, store.Event{At: now, Type: rules.EventAssigned, Actor: addr, Detail: detail})
	}
	if !setsStatus(cmds) && (t.Status == rules.StatusNew || t.Status == rules.StatusWaiting) {
		// The reply carries the notice of this change when the customer
		// is told of open tickets: one mail, with the agent's text.
		mv := p.Policy.changeStatus(t, rules.StatusChange{To: rules.StatusOpen, Cause: rules.CauseAgent, Why: "agent replied", At: now, WithReply: true}, addr)
		out.events = append(out.events, mv.Events...)
		out.moves = append(out.moves, mv)
	}
	p.Policy.AgentReplied(t, now)
	return out
}

// setsStatus reports whether cmds set the ticket's status.
func setsStatus(cmds []rules.Command) bool {
	return slices.ContainsFunc(cmds, func(c rules.Command) bool { return c.Name == "status" || c.Name == "close" })
}

// publicReply is the mail of the reply text to the requester and the ticket's
// Cc participants, from "<agent> via <desk>" at the routing address; a
// reply whose commands changed the status to one the customer is told of
// is written as that notice (notice, e.g. the resolution mail: one mail
// with the agent's text), a plain follow-up as it is.
func (p *Pipeline) publicReply(t *store.Ticket, pl *plan, agent Agent, visible string, notice rules.Notice) Intent {
	var cc []mail.Address
	for _, a := range t.CC {
		if !p.isAgent(a) && !p.Routes.IsOwn(a) {
			cc = append(cc, mail.Address{Address: a})
		}
	}
	o := mailout.Out{
		Kind: "agent", To: []mail.Address{{Name: t.RequesterName, Address: t.Requester}}, Cc: cc,
		FromName: agent.displayName() + " via " + p.Desk.FromName, Text: visible + "\n", Attachments: agentFiles(pl),
	}
	if notice != "" {
		o.Kind, o.Template, o.Text = string(notice), string(notice), ""
		o.Data = map[string]any{"Name": t.RequesterName, "Text": visible, "AgentName": agent.displayName(), "Status": string(t.Status),
			"ReopenDays": p.Policy.reopenDays()}
	}
	// A forgotten customer's pseudonym gets no mail (mailout's admit),
	// nor does a ticket's missing requester.
	to := slices.DeleteFunc(append([]string{t.Requester}, addrList(cc)...), func(a string) bool { return a == "" || rules.Forgotten(a) })
	ev := store.Event{At: pl.now, Type: rules.EventReply, Actor: strings.ToLower(agent.Email),
		Detail: o.Kind + " mail by " + agent.displayName() + " queued to " + strings.Join(to, ", ")}
	// Held back (the customer was forgotten), the reply event says why.
	held := store.Event{At: pl.now, Type: rules.EventReply, Actor: ev.Actor}
	return Intent{Out: o, Queued: ev, Held: held, Thread: true}
}

// agentFiles are the files of the agent's mail in pl as they go on in
// its reply or note.
func agentFiles(pl *plan) []mailout.Attachment {
	var files []mailout.Attachment
	for _, a := range pl.in.Attachments {
		if richTextPacking(a) {
			// Outlook's formatting of the text, which goes out as
			// plain text: no other mail program opens it.
			continue
		}
		files = append(files, mailout.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content})
	}
	return files
}

func addrList(l []mail.Address) []string {
	out := make([]string, len(l))
	for i, a := range l {
		out[i] = a.Address
	}
	return out
}

// The first and last lines of every mail to agents. An agent's client
// quotes them with whatever prefix it likes ("> ", a tab, nothing), above
// or below the new text; everything between them is the gateway's own
// text and never goes back out.
const (
	replyMarker = "##- Please type your reply above this line -##"
	endMarker   = "##- End of ticket mail -##"
)

// markerData is the template data that writes the markers.
func markerData(data map[string]any) map[string]any {
	data["ReplyMarker"], data["EndMarker"] = replyMarker, endMarker
	return data
}

// cutNotification removes a quoted mail of ours (from the line holding
// replyMarker to the one holding endMarker) and the attribution ("...
// wrote:", on up to three lines) right above it, wherever the agent's
// client put it.
//
// Our mails quote the customer's text between the two markers, and a
// customer can write either marker. The template writes replyMarker as
// its first line and endMarker as its last, so the quote runs from the
// first replyMarker to the last endMarker: a marker the customer wrote
// lies inside and cannot end the quote early and turn the customer's
// next lines into the agent's commands.
func cutNotification(text string) string {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, replyMarker) })
	if start < 0 {
		return text
	}
	end := len(lines) - 1
	if i := lastIndexFunc(lines[start:], func(l string) bool { return strings.Contains(l, endMarker) }); i >= 0 {
		end = start + i
	}
	k := start
	for k > 0 && strings.Trim(lines[k-1], "> \t") == "" {
		k--
	}
	if k > 0 && rules.EndsInColon(lines[k-1]) {
		// Some clients wrap a long attribution: "On …, Alice via Support <"
		// and "support@example.com> wrote:" go together.
		k = min(k-1, rules.AttributionStart(lines, k))
	}
	return strings.Join(append(lines[:k:k], lines[end+1:]...), "\n")
}

// lastIndexFunc is the index of the last element of s satisfying f, or -1.
func lastIndexFunc(s []string, f func(string) bool) int {
	for i := len(s) - 1; i >= 0; i-- {
		if f(s[i]) {
			return i
		}
	}
	return -1
}

// newText is what an agent newly wrote in rest. Unlike customer mail, a
// mail that is only a quote has no new text: nothing of it may reach the
// customer. A marker line in front keeps VisibleText from falling back to
// the whole quote when the cut leaves nothing.
func newText(rest string) string {
	const marker = "ticketgate-new-text-marker"
	v := rules.VisibleText(marker + "\n" + rest)
	v, ok := strings.CutPrefix(v, marker)
	if !ok {
		return strings.TrimSpace(rules.VisibleText(rest))
	}
	return strings.TrimSpace(v)
}

// withForwarded is visible, an agent's note, with the mail that rest
// (the note's text below its commands) forwards inline kept below the
// agent's words, as a customer's forward is: an agent adding a customer's
// mail to a ticket by forwarding it to the note address adds that mail,
// not only the line written above it. A mail quoting one of the desk's
// own (text the desk wrote between its markers) forwards nothing of it.
func withForwarded(visible, subject, text, rest string) string {
	if strings.Contains(text, replyMarker) {
		return visible
	}
	fwd := rules.Forwarded(subject, rest)
	if fwd == "" || strings.Contains(visible, fwd) {
		return visible
	}
	return strings.TrimSpace(visible + "\n\n" + fwd)
}

// commandLines is the commands of a mail, one per line, for the record.
func commandLines(cmds []rules.Command) string {
	lines := make([]string, len(cmds))
	for i, c := range cmds {
		lines[i] = c.Line
	}
	return strings.Join(lines, "\n")
}

// addNote stores an internal note by author on t and sends it to the
// ticket's other agents (assignee, queue agents, watchers), never to the
// customer. Replies to the note mail are notes again.
func (p *Pipeline) addNote(c *Change, pl *plan, author, text string) {
	t, now := c.Ticket, pl.now
	if pl.in != nil {
		m := p.message(pl, "note")
		m.VisibleText = text
		c.Messages = append(c.Messages, m)
	}
	// The mail's files go with the note: agents see a ticket by mail.
	var files []mailout.Attachment
	if pl.in != nil {
		files = agentFiles(pl)
	}
	to := append(append([]string{t.Assignee}, p.queueAgents(t.Queue)...), t.Watchers...)
	var sent []string
	for _, addr := range dedupe(p.agentsOnly(to), author) {
		agent, ok := p.agent(addr)
		if !ok {
			agent = Agent{Email: addr}
		}
		in, ok := noteMail(p.Signer, t, mail.Address{Name: agent.Name, Address: addr}, p.authorName(author), p.authorName(author)+" via "+p.Desk.FromName, text)
		if !ok {
			continue
		}
		in.Attachments = files
		c.send(in)
		sent = append(sent, addr)
	}
	detail := "internal note by " + author
	if len(sent) > 0 {
		detail += "; sent to " + strings.Join(sent, ", ")
	}
	c.log(store.Event{At: now, Type: rules.EventNote, Actor: author, Detail: detail})
}

// noteMail is the mail of an internal note on t by author (from, the
// display name on From; "" for the desk's own) with text to one agent,
// to: it answers to their signed note address, so a reply to it is a
// note again. No mail (false) without a signing key.
func noteMail(s rules.Signer, t *store.Ticket, to mail.Address, author, from, text string) (Intent, bool) {
	noteAddr := signedAddress(s, t, rules.TokenNote, to.Address)
	if noteAddr == "" {
		return Intent{}, false
	}
	return Intent{Out: mailout.Out{
		Kind: "note", To: []mail.Address{to},
		FromName: from, ReplyTo: &mail.Address{Address: noteAddr},
		Subject:  fmt.Sprintf("[%s] Note: %s", t.ID, t.Subject),
		Template: "note", Data: markerData(map[string]any{"Author": author, "Text": text, "NoteAddress": noteAddr}),
		Internal: true,
	}}, true
}

// authorName is the configured name of an agent address, else the address.
func (p *Pipeline) authorName(addr string) string {
	if a, ok := p.agent(addr); ok {
		return a.displayName()
	}
	return addr
}

// cloneTicket copies the fields commands change.
func cloneTicket(t *store.Ticket) *store.Ticket {
	c := *t
	c.CC = slices.Clone(t.CC)
	if t.ClosedAt != nil {
		at := *t.ClosedAt
		c.ClosedAt = &at
	}
	return &c
}
