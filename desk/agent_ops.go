package desk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"ticketgate/desk/view"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// ErrBadAction is wrapped by Act's errors for an action that is malformed
// or refused; the ticket is unchanged.
var ErrBadAction = errors.New("action not applied")

// Action is a change an operator makes to a ticket from the command line or
// the admin API.
type Action struct {
	Name  string `json:"action"` // assign, status, priority, note, merge or link
	Value string `json:"value"`  // "me", an agent address or "none"; a status; a priority; the note's text; the other ticket (HS-123456)
	Actor string `json:"actor"`  // who acts, recorded on the events; "operator" when empty
	// Via says how the action came in, for the events: "the command
	// line" when empty. Set by the receiving side, never read from JSON.
	Via string `json:"-"`
}

// ActionResult is the ticket after an action and the events it recorded.
// Its JSON is the public view (view.ActionResult), not the store record.
type ActionResult struct {
	Ticket *store.Ticket
	Events []store.Event
}

// MarshalJSON writes the result as view.ActionResult.
func (r ActionResult) MarshalJSON() ([]byte, error) {
	return view.Marshal(view.NewActionResult(r.Ticket, r.Events))
}

// Act applies an operator's action to ticket id in one committed
// transaction. Operators may do everything agents may and more; notes go
// to the ticket's agents, never to the customer, and closing asks the
// customer for a satisfaction rating as an agent's #close does. An unknown ticket wraps
// store.ErrNotFound, a bad or refused action ErrBadAction.
func (p *Pipeline) Act(ctx context.Context, id string, a Action) (ActionResult, error) {
	actor := strings.ToLower(strings.TrimSpace(a.Actor))
	if actor == "" {
		actor = "operator"
	}
	cmd, err := actionCommand(a)
	if err != nil {
		return ActionResult{}, err
	}
	id = strings.ToUpper(strings.TrimSpace(id))
	msgID := mailout.NewMessageID(p.Hostname)
	var out ActionResult
	err = p.Store.Update(ctx, func(tx store.Tx) error {
		t, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		now := p.now()
		j, err := readJoins(tx, id, []rules.Command{cmd})
		if err != nil {
			return err
		}
		c, others, err := p.decideAction(t, j, cmd, actor, a.Via, msgID, a.Value, now)
		if err != nil {
			return err
		}
		if err := p.apply(tx, now, append([]*Change{c}, others...)...); err != nil {
			return err
		}
		out = ActionResult{Ticket: t, Events: c.Events}
		return nil
	})
	if err != nil {
		return ActionResult{}, fmt.Errorf("%s %s: %w", a.Name, id, err)
	}
	if out.Events == nil {
		out.Events = []store.Event{}
	}
	p.Log.Info("ticket changed", "ticket", id, "action", a.Name, "actor", actor, "events", len(out.Events))
	if p.OnCommit != nil {
		p.OnCommit()
	}
	return out, nil
}

// decideAction is one operator action's change to t: a note is stored and
// sent to the ticket's agents, any other action is a command under
// operator rights. A merge or link also changes the other ticket (in j),
// whose change comes second.
func (p *Pipeline) decideAction(t *store.Ticket, j joins, cmd rules.Command, actor, via, msgID, text string, now time.Time) (*Change, []*Change, error) {
	if err := rules.MayActOnMerged(cmd, t.ID, t.MergedInto); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", err, ErrBadAction)
	}
	// An action taken as an agent (-as, or the agent the API caller is)
	// has that agent's rights, the rights its mail would have; anyone else
	// acts as the operator, with every right.
	who := rules.Actor{Email: actor, Operator: true}
	if a, ok := p.agent(actor); ok {
		who = a.actor()
	}
	c := &Change{Ticket: t}
	t.UpdatedAt = now
	if cmd.Name == "note" {
		// A note is stored, not applied as a command, but it needs the
		// same rights as the agent's #note by mail.
		if err := rules.Authorize(cmd, who, p.ownerView(t)); err != nil {
			why := strings.TrimPrefix(err.Error(), rules.ErrNotAllowed.Error()+": ")
			return nil, nil, fmt.Errorf("%q: %s: %w", cmd.Line, why, ErrBadAction)
		}
		// Card and social security numbers leave the text before it is
		// stored or mailed to the agents, as they leave a mailed note.
		text, removed := rules.Redact(text)
		c.Messages = []Stored{{Message: &store.Message{MessageID: msgID, Direction: "in", Kind: "note", From: actor, Subject: "Note: " + t.Subject,
			Text: text, VisibleText: text, CreatedAt: now, Attachments: []store.Attachment{}}}}
		p.addNote(c, &plan{now: now}, actor, text)
		if len(removed) > 0 {
			c.log(store.Event{At: now, Type: rules.EventRedacted, Actor: actor, Detail: describeRedactions(removed) + " removed before storing"})
		}
		return c, nil, nil
	}
	before := viewOf(t)
	done := p.applyCommands(t, []rules.Command{cmd}, who, now, false)
	if len(done.problems) == 0 {
		done.problems = p.joinProblems(t, []rules.Command{cmd}, j, who)
	}
	if len(done.problems) > 0 {
		return nil, nil, fmt.Errorf("%s: %w", strings.Join(done.problems, "; "), ErrBadAction)
	}
	if via == "" {
		via = "the command line"
	}
	how := " (" + cmd.Name + " by " + actor + " via " + via + ")"
	for i := range done.events {
		done.events[i].Detail += how
	}
	c.log(done.events...)
	// The agent given the ticket hears of it as of a note.
	handover(c, p.Signer, p.agentRefs(), rules.Handing{By: actor, Before: before}, p.authorName(actor), p.authorName(actor)+" via "+p.Desk.FromName, cmd.Line, now)
	others := p.decideJoins(c, t, []rules.Command{cmd}, j, who, how, now)
	for _, mv := range done.moves {
		c.send(p.Policy.noticeIntents(t, mv, nil)...)
	}
	return c, others, nil
}

// actionCommand reads an action the way an agent's mail command is read,
// so both give the same answers and errors.
func actionCommand(a Action) (rules.Command, error) {
	v := strings.TrimSpace(a.Value)
	line := ""
	switch a.Name {
	case "note":
		if v == "" {
			return rules.Command{}, fmt.Errorf("a note needs text: %w", ErrBadAction)
		}
		return rules.Command{Name: "note", Line: "#note"}, nil
	case "assign":
		line = "#assign " + v
		if strings.EqualFold(v, "none") || v == "-" {
			line = "#unassign"
		}
	case "status", "priority", "merge", "link":
		line = "#" + a.Name + " " + v
	default:
		return rules.Command{}, fmt.Errorf("unknown action %q (assign, status, priority, note, merge or link): %w", a.Name, ErrBadAction)
	}
	cmds, _, errs := rules.ParseCommands(line)
	if len(errs) > 0 {
		return rules.Command{}, fmt.Errorf("%s: %w", errs[0].Reason, ErrBadAction)
	}
	if len(cmds) != 1 {
		return rules.Command{}, fmt.Errorf("cannot read %q: %w", line, ErrBadAction)
	}
	return cmds[0], nil
}
