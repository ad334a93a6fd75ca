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

// joins are the tickets #merge and #link commands name, read before the
// decision (deciding does not read the store): the other tickets by id,
// nil for one that does not exist, and for a merge the source with its
// messages and events, which move into the target.
type joins struct {
	others map[string]*store.Ticket
	source *store.Ticket
}

// isJoin reports whether c is #merge or #link.
func isJoin(c rules.Command) bool { return c.Name == "merge" || c.Name == "link" }

// readJoins reads what the #merge and #link commands in cmds about ticket
// id need.
func readJoins(tx store.Reader, id string, cmds []rules.Command) (joins, error) {
	j := joins{others: map[string]*store.Ticket{}}
	for _, c := range cmds {
		if !isJoin(c) {
			continue
		}
		t, err := tx.Ticket(c.Ticket)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return j, err
		}
		j.others[c.Ticket] = t
		if c.Name == "merge" && j.source == nil {
			if j.source, err = tx.TicketFull(id); err != nil {
				return j, err
			}
		}
	}
	return j, nil
}

func joinView(t *store.Ticket) rules.JoinView {
	return rules.JoinView{ID: t.ID, Requester: t.Requester, CC: t.CC, Watchers: t.Watchers, MergedInto: t.MergedInto, Linked: t.Linked}
}

// joinProblems says why the #merge and #link commands in cmds cannot be
// done on t by actor, as the other commands' problems are said.
func (p *Pipeline) joinProblems(t *store.Ticket, cmds []rules.Command, j joins, actor rules.Actor) []string {
	var out []string
	merges := 0
	for _, c := range cmds {
		if !isJoin(c) {
			continue
		}
		if c.Name == "merge" {
			if merges++; merges == 2 {
				out = append(out, fmt.Sprintf("%q: a ticket is merged once; write one #merge", c.Line))
				continue
			}
		}
		dst := j.others[c.Ticket]
		if dst == nil {
			out = append(out, fmt.Sprintf("%q: there is no ticket %s", c.Line, c.Ticket))
			continue
		}
		if _, err := rules.DecideJoin(c, joinView(t), joinView(dst), p.maxParticipants()); err != nil {
			out = append(out, fmt.Sprintf("%q: %s", c.Line, err))
			continue
		}
		if c.Name == "merge" {
			if err := rules.AuthorizeMergeInto(actor, dst.ID, viewOf(dst)); err != nil {
				out = append(out, fmt.Sprintf("%q: %s", c.Line, err))
			}
		}
	}
	return out
}

// decideJoins makes the #merge and #link commands' changes, after the
// other commands: t (the ticket the commands are about, whose change is c)
// gets the links, and for a merge is closed and points to the target; the
// other tickets' changes are returned. joinProblems must have found
// nothing. how is added to the events' details (who acted through which
// door, for operator actions).
func (p *Pipeline) decideJoins(c *Change, t *store.Ticket, cmds []rules.Command, j joins, actor rules.Actor, how string, now time.Time) []*Change {
	var out []*Change
	for _, cmd := range cmds {
		if !isJoin(cmd) {
			continue
		}
		dst := j.others[cmd.Ticket]
		d, err := rules.DecideJoin(cmd, joinView(t), joinView(dst), p.maxParticipants())
		if err != nil || !d.Changed {
			continue
		}
		who := actor.Email
		if who == "" {
			who = "operator"
		}
		tc := &Change{Ticket: dst}
		t.Linked, dst.Linked = d.SourceLinks, d.TargetLinks
		dst.UpdatedAt, t.UpdatedAt = now, now
		if !d.Merge {
			c.log(store.Event{At: now, Type: rules.EventLinked, Actor: who, Detail: d.SourceDetail + how})
			tc.log(store.Event{At: now, Type: rules.EventLinked, Actor: who, Detail: d.TargetDetail + how})
			out = append(out, tc)
			continue
		}
		before := viewOf(dst)
		p.moveInto(tc, j.source, d)
		// The mail that merges (its reply to the customer, or its
		// commands kept as a note) is not in j.source, read before it:
		// the target gets its copy too, where the conversation goes on.
		// The source's change is applied first, so the copy finds the
		// blobs stored.
		for _, m := range c.Messages {
			tc.Messages = append(tc.Messages, Stored{Message: m.Message, Copy: true})
		}
		t.MergedInto = dst.ID
		c.log(store.Event{At: now, Type: rules.EventMerged, Actor: who, Detail: d.SourceDetail + how})
		tc.log(store.Event{At: now, Type: rules.EventMerged, Actor: who, Detail: d.TargetDetail + how})
		// An escalated source's customer asked for level 2: the target,
		// where the conversation goes on, is escalated on its clock.
		told := d.TargetDetail
		e := p.Policy.TakeEscalation(dst, t, now)
		if e != "" {
			tc.log(store.Event{At: now, Type: rules.EventEscalated, Actor: who, Detail: e + how})
			told += "; " + e
		}
		// The target's assignee hears of the merge, and level 2 of an
		// escalated target, as of an agent's #escalate.
		handover(tc, p.Signer, p.agentRefs(), rules.Handing{By: who, Before: before, Escalated: e != "", Merged: true},
			p.authorName(who), p.authorName(who)+" via "+p.Desk.FromName, told, now)
		cause := rules.CauseCommand
		if actor.Operator {
			cause = rules.CauseOperator
		}
		// Closed quietly: the customer's conversation goes on in the
		// target. No survey goes out, so none is asked for: the source
		// keeps the one it sent before, if any.
		mv := p.Policy.changeStatus(t, rules.StatusChange{To: rules.StatusClosed, Cause: cause, Why: "merged into " + dst.ID, At: now, Quiet: true}, who)
		for _, e := range mv.Events {
			e.Detail += how
			c.log(e)
		}
		out = append(out, tc)
	}
	return out
}

// MergedCopy reports whether e is one of another ticket's events that a
// merge copied here (its detail starts with "[HS-123456] "): it happened
// on the other ticket, where it is counted.
func MergedCopy(e store.Event) bool {
	rest, ok := strings.CutPrefix(e.Detail, "[")
	if !ok {
		return false
	}
	id, _, ok := strings.Cut(rest, "] ")
	if !ok {
		return false
	}
	_, ok = rules.ParseTicketID(id)
	return ok
}

// moveInto copies the source's messages, events, participants, watchers
// and conversation into the target's change tc, so that mail naming either
// ticket threads to the target.
func (p *Pipeline) moveInto(tc *Change, src *store.Ticket, d rules.Join) {
	dst := tc.Ticket
	dst.CC, dst.Watchers = d.TargetCC, d.TargetWatchers
	dst.Files += src.Files
	dst.FileBytes += src.FileBytes
	for i := range src.Messages {
		m := src.Messages[i]
		tc.Messages = append(tc.Messages, Stored{Message: &m, Copy: true})
	}
	for _, e := range src.Events {
		e.Detail = "[" + src.ID + "] " + e.Detail
		tc.log(e)
	}
	ids := slices.Clone(src.Thread)
	if src.LastInID != "" {
		ids = append(ids, src.LastInID)
	}
	tc.Reindex = append(tc.Reindex, ids...)
}
