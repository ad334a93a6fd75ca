package rules

import "strings"

// Told is who of a ticket's team is to hear, by mail, of a change that
// handed the ticket on without a word written for them.
type Told struct {
	// Assignee is the agent to tell, "" for none.
	Assignee string
	// Queue is the queue whose agents are told, "" for none.
	Queue string
	// Watchers says the ticket's watchers (the managers an escalation
	// added) are told.
	Watchers bool
}

// Handover decides who hears of a change by by ("" for the sweep) that
// took a ticket from before to after, as a helpdesk tells a group of a
// ticket handed to it. An escalation (escalated) is told to the ticket's
// people at level 2, as a note on it would be: its assignee, the agents
// of its queue and its watchers; otherwise level 2 would first hear of
// it at their SLA warning. Any other change tells the agent it gave the
// ticket to (#assign NAME, an operator's assign), and the agents of a
// queue the ticket moved to unassigned. Whoever made the change is never
// told of it: an agent who takes a ticket (#assign me) hears nothing.
func Handover(by string, before, after TicketView, escalated bool) Told {
	var t Told
	if escalated {
		if !strings.EqualFold(strings.TrimSpace(after.Assignee), strings.TrimSpace(by)) {
			t.Assignee = after.Assignee
		}
		t.Queue, t.Watchers = after.Queue, true
		return t
	}
	if a := strings.TrimSpace(after.Assignee); a != "" && !strings.EqualFold(a, strings.TrimSpace(before.Assignee)) && !strings.EqualFold(a, strings.TrimSpace(by)) {
		t.Assignee = after.Assignee
	}
	if strings.TrimSpace(after.Assignee) == "" && !strings.EqualFold(before.Queue, after.Queue) {
		t.Queue = after.Queue
	}
	return t
}
