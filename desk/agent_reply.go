package desk

import (
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
	now := pl.now
	if pl.auto.Automatic || pl.auto.OutOfOffice || pl.auto.Bounce {
		res.Action = "agent-automatic"
		return p.keepAgentMail(tx, t, pl, "system", "", store.Event{At: now, Type: rules.EventMessage, Actor: agent.Email,
			Detail: "automatic mail from agent " + agent.Email + " kept, not sent to the customer: " + pl.auto.Reason})
	}
	cmds, rest, errs := rules.ParseCommands(cutNotification(pl.in.Text))
	visible := newText(rest)
	note := kind == rules.TokenNote || slices.ContainsFunc(cmds, func(c rules.Command) bool { return c.Name == "note" })
	var problems []string
	for _, e := range errs {
		problems = append(problems, e.Error())
	}
	if len(problems) == 0 {
		// Dry run on a copy: every command must pass before any applies.
		dry := cloneTicket(t)
		problems = p.applyCommands(dry, cmds, agent.actor(), now, false).problems
	}
	if len(problems) > 0 {
		res.Action = "agent-refused"
		return p.refuseAgentMail(tx, t, pl, agent, visible, problems)
	}
	var events []store.Event
	var opened applied
	switch {
	case note:
		res.Action = "note"
		ev, err := p.addNote(tx, t, pl, agent.Email, visible)
		if err != nil {
			return err
		}
		events = append(events, ev...)
	case visible != "":
		res.Action = "agent"
		opened = p.publicReplyState(t, agent, cmds, now)
		events = append(events, opened.events...)
	default:
		res.Action = "commands"
	}
	done := p.applyCommands(t, cmds, agent.actor(), now, res.Action == "agent")
	events = append(events, done.events...)
	if res.Action == "agent" {
		ev, err := p.sendPublicReply(tx, t, pl, agent, visible, done.replyNotice())
		if err != nil {
			return err
		}
		events = append(events, ev)
	}
	done.moves = append(opened.moves, done.moves...)
	notices, err := p.sendMoves(tx, t, done)
	if err != nil {
		return err
	}
	events = append(events, notices...)
	// A note was stored by addNote; a mail of only commands is kept as a note.
	msgKind := map[string]string{"agent": "agent", "commands": "note"}[res.Action]
	if res.Action == "commands" {
		visible = commandLines(cmds)
	}
	return p.keepAgentMail(tx, t, pl, msgKind, visible, events...)
}

// keepAgentMail stores the agent's mail as a message of kind (none when
// kind is ""), adds events and writes t. The agent's own Message-ID is not
// added to the ticket's thread, so it never shows in customer mail.
func (p *Pipeline) keepAgentMail(tx store.Tx, t *store.Ticket, pl *plan, kind, visible string, events ...store.Event) error {
	if kind != "" {
		m, err := p.message(tx, pl, kind)
		if err != nil {
			return err
		}
		if visible != "" || kind != "system" {
			m.VisibleText = visible
		}
		if err := tx.AddMessage(t.ID, m); err != nil {
			return err
		}
	}
	for _, e := range events {
		if err := tx.AddEvent(t.ID, e); err != nil {
			return err
		}
	}
	t.UpdatedAt = pl.now
	return tx.PutTicket(t)
}

// refuseAgentMail keeps a mail with bad or refused commands as a note and
// tells the agent what was wrong.
func (p *Pipeline) refuseAgentMail(tx store.Tx, t *store.Ticket, pl *plan, agent Agent, visible string, problems []string) error {
	now := pl.now
	ev := store.Event{At: now, Type: rules.EventCommandsRefused, Actor: agent.Email, Detail: strings.Join(problems, "; ")}
	reply := p.signedAddress(t, rules.TokenReply, agent.Email)
	o := mailout.Out{
		Kind: "error", To: []mail.Address{{Name: agent.Name, Address: agent.Email}},
		Subject:  fmt.Sprintf("[%s] Not applied: %s", t.ID, t.Subject),
		Template: "agent_error", Data: markerData(map[string]any{"AgentName": agent.displayName(), "Problems": problems}),
		Internal: true,
	}
	if reply != "" {
		o.ReplyTo = &mail.Address{Address: reply}
	}
	if _, err := p.Desk.Queue(tx, t, o, now); err != nil {
		return fmt.Errorf("queue command error reply: %w", err)
	}
	return p.keepAgentMail(tx, t, pl, "note", visible, ev)
}

// publicReplyState is what a public reply does to the ticket before the
// mail goes out: the first replying agent takes an unassigned ticket, and
// unless a command sets the status a new or waiting ticket is open, waiting
// on the customer. A ticket on hold, resolved or closed keeps its status:
// only a status command (under its own authorization) moves it, and its
// awaiting-customer clock does not start.
func (p *Pipeline) publicReplyState(t *store.Ticket, agent Agent, cmds []rules.Command, now time.Time) applied {
	var out applied
	addr := strings.ToLower(agent.Email)
	if t.Assignee == "" {
		t.Assignee = addr
		out.events = append(out.events, store.Event{At: now, Type: rules.EventAssigned, Actor: addr, Detail: addr + " (first reply)"})
	}
	if !setsStatus(cmds) && (t.Status == rules.StatusNew || t.Status == rules.StatusWaiting) {
		mv := p.Policy.changeStatus(t, rules.StatusChange{To: rules.StatusOpen, Cause: rules.CauseAgent, Why: "agent replied", At: now}, addr)
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

// sendPublicReply mails the reply text to the requester and the ticket's
// Cc participants, from "<agent> via <desk>" at the routing address; a
// reply whose commands changed the status to one the customer is told of
// is written as that notice (notice, e.g. the resolution mail: one mail
// with the agent's text), a plain follow-up as it is.
func (p *Pipeline) sendPublicReply(tx store.Tx, t *store.Ticket, pl *plan, agent Agent, visible string, notice rules.Notice) (store.Event, error) {
	var cc []mail.Address
	for _, a := range t.CC {
		if _, isAgent := p.agent(a); !isAgent && !p.Routes.IsOwn(a) {
			cc = append(cc, mail.Address{Address: a})
		}
	}
	var files []mailout.Attachment
	for _, a := range pl.in.Attachments {
		files = append(files, mailout.Attachment{Filename: a.Filename, ContentType: a.ContentType, Content: a.Content})
	}
	o := mailout.Out{
		Kind: "agent", To: []mail.Address{{Name: t.RequesterName, Address: t.Requester}}, Cc: cc,
		FromName: agent.displayName() + " via " + p.Desk.FromName, Text: visible + "\n", Attachments: files,
	}
	if notice != "" {
		o.Kind, o.Template, o.Text = string(notice), string(notice), ""
		o.Data = map[string]any{"Name": t.RequesterName, "Text": visible, "AgentName": agent.displayName(), "Status": string(t.Status)}
	}
	q, err := p.Desk.Queue(tx, t, o, pl.now)
	if err != nil {
		return store.Event{}, fmt.Errorf("queue agent reply: %w", err)
	}
	t.Thread = mailout.AppendThread(t.Thread, q.MessageID)
	to := append([]string{t.Requester}, addrList(cc)...)
	return store.Event{At: pl.now, Type: rules.EventReply, Actor: strings.ToLower(agent.Email),
		Detail: o.Kind + " mail by " + agent.displayName() + " queued to " + strings.Join(to, ", ")}, nil
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
// replyMarker to the one holding endMarker) and the attribution line
// ("... wrote:") right above it, wherever the agent's client put it.
func cutNotification(text string) string {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, replyMarker) })
	if start < 0 {
		return text
	}
	end := len(lines) - 1
	if i := slices.IndexFunc(lines[start:], func(l string) bool { return strings.Contains(l, endMarker) }); i >= 0 {
		end = start + i
	}
	k := start
	for k > 0 && strings.Trim(lines[k-1], "> \t") == "" {
		k--
	}
	if k > 0 && strings.HasSuffix(strings.TrimSpace(lines[k-1]), ":") {
		k--
	}
	return strings.Join(append(lines[:k:k], lines[end+1:]...), "\n")
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
func (p *Pipeline) addNote(tx store.Tx, t *store.Ticket, pl *plan, author, text string) ([]store.Event, error) {
	now := pl.now
	if pl.in != nil {
		m, err := p.message(tx, pl, "note")
		if err != nil {
			return nil, err
		}
		m.VisibleText = text
		if err := tx.AddMessage(t.ID, m); err != nil {
			return nil, err
		}
	}
	to := append(append([]string{t.Assignee}, p.queueAgents(t.Queue)...), t.Watchers...)
	var sent []string
	for _, addr := range dedupe(to, author) {
		agent, ok := p.agent(addr)
		if !ok {
			agent = Agent{Email: addr}
		}
		noteAddr := p.signedAddress(t, rules.TokenNote, addr)
		if noteAddr == "" {
			continue
		}
		_, err := p.Desk.Queue(tx, t, mailout.Out{
			Kind: "note", To: []mail.Address{{Name: agent.Name, Address: addr}},
			FromName: p.authorName(author) + " via " + p.Desk.FromName, ReplyTo: &mail.Address{Address: noteAddr},
			Subject:  fmt.Sprintf("[%s] Note: %s", t.ID, t.Subject),
			Template: "note", Data: markerData(map[string]any{"Author": p.authorName(author), "Text": text, "NoteAddress": noteAddr}),
			Internal: true,
		}, now)
		if err != nil {
			return nil, fmt.Errorf("queue note to %s: %w", addr, err)
		}
		sent = append(sent, addr)
	}
	detail := "internal note by " + author
	if len(sent) > 0 {
		detail += "; sent to " + strings.Join(sent, ", ")
	}
	return []store.Event{{At: now, Type: rules.EventNote, Actor: author, Detail: detail}}, nil
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
