package desk

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// applied is what a mail's (or an operator's) commands did to a ticket.
type applied struct {
	events   []store.Event
	problems []string     // refusals and impossible commands
	moves    []statusMove // status changes, whose notices are still to send
}

// applyCommands applies cmds to t in order, each authorized against the
// ticket as the commands before it left it. Only t is touched, so a dry
// run on a copy is the same call; withReply says an agent's public reply
// goes out with them (it carries a resolution notice). The status changes'
// notices become mails by noticeIntents, after any reply.
func (p *Pipeline) applyCommands(t *store.Ticket, cmds []rules.Command, actor rules.Actor, now time.Time, withReply bool) applied {
	var out applied
	who := strings.ToLower(actor.Email)
	for _, c := range cmds {
		if err := rules.Authorize(c, actor, p.ownerView(t)); err != nil {
			out.problems = append(out.problems, fmt.Sprintf("%q: %s", c.Line, strings.TrimPrefix(err.Error(), rules.ErrNotAllowed.Error()+": ")))
			continue
		}
		if st, ok := statusOf(c); ok {
			cause := rules.CauseCommand
			if actor.Operator {
				cause = rules.CauseOperator
			}
			mv := p.Policy.changeStatus(t, rules.StatusChange{To: st, Cause: cause, Why: string(cause), At: now, WithReply: withReply}, who)
			if mv.Changed {
				out.events = append(out.events, mv.Events...)
				out.moves = append(out.moves, mv)
			}
			continue
		}
		ev, err := p.applyCommand(t, c, who, now)
		if err != nil {
			out.problems = append(out.problems, fmt.Sprintf("%q: %s", c.Line, err))
			continue
		}
		if ev != nil {
			out.events = append(out.events, *ev)
		}
	}
	return out
}

// statusOf is the status a #status or #close command sets.
func statusOf(c rules.Command) (rules.Status, bool) {
	switch c.Name {
	case "status":
		return c.Status, true
	case "close":
		return rules.StatusClosed, true
	}
	return "", false
}

// replyNotice is the notice an accompanying public reply is written as,
// "" for a plain reply.
func (a applied) replyNotice() rules.Notice {
	var n rules.Notice
	for _, mv := range a.moves {
		if mv.ReplyNotice != "" {
			n = mv.ReplyNotice
		}
	}
	return n
}

// applyCommand makes one authorized command's change other than a status
// change; nil event when the ticket already was that way.
func (p *Pipeline) applyCommand(t *store.Ticket, c rules.Command, who string, now time.Time) (*store.Event, error) {
	switch c.Name {
	case "priority":
		if c.Priority == t.Priority {
			return nil, nil
		}
		ev := store.Event{At: now, Type: rules.EventPriority, Actor: who, Detail: fmt.Sprintf("%s → %s", t.Priority, c.Priority)}
		t.Priority = c.Priority
		p.Policy.PriorityChanged(t, now)
		return &ev, nil
	case "assign":
		return p.assign(t, c.Assign, who, now)
	case "unassign":
		if t.Assignee == "" {
			return nil, nil
		}
		ev := store.Event{At: now, Type: rules.EventUnassigned, Actor: who, Detail: t.Assignee + " no longer assigned"}
		t.Assignee = ""
		return &ev, nil
	case "cc":
		return p.changeCc(t, c, who, now)
	case "note", "reply", "merge", "link":
		// #reply changes the text; #merge and #link are decideJoins'.
		return nil, nil
	case "escalate":
		if t.Escalated {
			return nil, nil
		}
		return &store.Event{At: now, Type: rules.EventEscalated, Actor: who, Detail: "#escalate" + p.escalateTicket(t, now)}, nil
	}
	return nil, fmt.Errorf("unknown command #%s", c.Name)
}

// errNotAgent is returned for #assign to an address that is no agent.
var errNotAgent = errors.New("is not an agent")

func (p *Pipeline) assign(t *store.Ticket, to, who string, now time.Time) (*store.Event, error) {
	if to == "me" {
		to = who
	}
	to = strings.ToLower(to)
	if _, ok := p.agent(to); !ok {
		if to == who {
			return nil, fmt.Errorf("%s %w; only agents can take tickets (give an agent's address)", orNone(to), errNotAgent)
		}
		return nil, fmt.Errorf("%s %w; write #assign me or the address of a configured agent", to, errNotAgent)
	}
	if t.Assignee == to {
		return nil, nil
	}
	detail := to
	if t.Assignee != "" {
		detail = fmt.Sprintf("%s (was %s)", to, t.Assignee)
	}
	t.Assignee = to
	return &store.Event{At: now, Type: rules.EventAssigned, Actor: who, Detail: detail}, nil
}

func (p *Pipeline) changeCc(t *store.Ticket, c rules.Command, who string, now time.Time) (*store.Event, error) {
	has := slices.Contains(t.CC, c.Cc)
	switch {
	case c.CcOp == "add" && p.Routes.IsOwn(c.Cc):
		return nil, fmt.Errorf("%s is one of the gateway's own addresses", c.Cc)
	case c.CcOp == "add" && strings.EqualFold(c.Cc, t.Requester):
		return nil, fmt.Errorf("%s is the requester and gets every reply anyway", c.Cc)
	case c.CcOp == "add" && p.isAgent(c.Cc):
		// publicReply copies no agent: the address would be listed and
		// never get a reply.
		return nil, fmt.Errorf("%s is an agent, and agents are not copied on replies to the customer: assign the ticket, or forward them its notification", c.Cc)
	case c.CcOp == "add" && has, c.CcOp == "remove" && !has:
		return nil, nil
	case c.CcOp == "add" && len(t.CC) >= p.maxParticipants():
		return nil, fmt.Errorf("the ticket has %d participants already, the limit", len(t.CC))
	case c.CcOp == "add":
		t.CC = append(t.CC, c.Cc)
	default:
		t.CC = slices.DeleteFunc(t.CC, func(a string) bool { return a == c.Cc })
	}
	return &store.Event{At: now, Type: rules.EventCc, Actor: who, Detail: c.CcOp + " " + c.Cc}, nil
}
