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

// applyCommands applies cmds to t in order, each authorized against the
// ticket as the commands before it left it, and returns an event per
// change and the problems (refusals and impossible commands). With hooks
// false nothing but t is touched (a dry run on a copy).
func (p *Pipeline) applyCommands(t *store.Ticket, cmds []rules.Command, actor rules.Actor, now time.Time, hooks bool) (events []store.Event, problems []string) {
	who := strings.ToLower(actor.Email)
	for _, c := range cmds {
		view := rules.TicketView{Queue: t.Queue, Assignee: t.Assignee, Status: t.Status, Priority: t.Priority}
		if err := rules.Authorize(c, actor, view); err != nil {
			problems = append(problems, fmt.Sprintf("%q: %s", c.Line, strings.TrimPrefix(err.Error(), rules.ErrNotAllowed.Error()+": ")))
			continue
		}
		ev, err := p.applyCommand(t, c, who, now, hooks)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%q: %s", c.Line, err))
			continue
		}
		if ev != nil {
			events = append(events, *ev)
		}
	}
	return events, problems
}

// applyCommand makes one authorized command's change; nil event when the
// ticket already was that way.
func (p *Pipeline) applyCommand(t *store.Ticket, c rules.Command, who string, now time.Time, hooks bool) (*store.Event, error) {
	switch c.Name {
	case "status", "close":
		st := c.Status
		if c.Name == "close" {
			st = rules.StatusClosed
		}
		if st == t.Status {
			return nil, nil
		}
		ev := p.setStatus(t, st, who, "command", now, hooks)
		return &ev, nil
	case "priority":
		if c.Priority == t.Priority {
			return nil, nil
		}
		ev := store.Event{At: now, Type: rules.EventPriority, Actor: who, Detail: fmt.Sprintf("%s → %s", t.Priority, c.Priority)}
		t.Priority = c.Priority
		if hooks {
			p.Policy.PriorityChanged(t, now)
		}
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
	case "note":
		return nil, nil
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
	case c.CcOp == "add" && has, c.CcOp == "remove" && !has:
		return nil, nil
	case c.CcOp == "add":
		t.CC = append(t.CC, c.Cc)
	default:
		t.CC = slices.DeleteFunc(t.CC, func(a string) bool { return a == c.Cc })
	}
	return &store.Event{At: now, Type: rules.EventCc, Actor: who, Detail: c.CcOp + " " + c.Cc}, nil
}

// setStatus moves t to st and returns the event; closing stamps ClosedAt,
// leaving closed clears it.
func (p *Pipeline) setStatus(t *store.Ticket, st rules.Status, who, why string, now time.Time, hooks bool) store.Event {
	from := t.Status
	t.Status = st
	switch {
	case st == rules.StatusClosed:
		at := now
		t.ClosedAt = &at
	case from == rules.StatusClosed:
		t.ClosedAt = nil
	}
	if hooks {
		p.Policy.StatusChanged(t, from, now)
	}
	return store.Event{At: now, Type: rules.EventStatus, Actor: who, Detail: fmt.Sprintf("%s → %s (%s)", from, st, why)}
}

// closing asks the requester for a satisfaction rating when t has just been
// closed by an agent or operator (from is its status before the change),
// the way the sweep's closing does; it returns the event to record.
func (p *Pipeline) closing(tx store.Tx, t *store.Ticket, from rules.Status, now time.Time) ([]store.Event, error) {
	if from == rules.StatusClosed || t.Status != rules.StatusClosed {
		return nil, nil
	}
	ev, err := p.Policy.Survey(tx, p.Desk, t, now)
	if err != nil || ev == nil {
		return nil, err
	}
	return []store.Event{*ev}, nil
}
