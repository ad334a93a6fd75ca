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

// Handing is a change that may hand a ticket on: who made it (By, "" for
// the sweep), the ticket before and after it, and what else it did.
type Handing struct {
	By            string
	Before, After TicketView
	Escalated     bool // the change moved the ticket to level 2
	Merged        bool // the change merged another ticket into it
}

// Handover decides who hears of a change h, as a helpdesk tells a group
// of a ticket handed to it. An escalation is told to the ticket's people
// at level 2, as a note on it would be: its assignee, the agents of its
// queue and its watchers; otherwise level 2 would first hear of it at
// their SLA warning. Any other change tells the agent it gave the ticket
// to (#assign NAME, an operator's assign), the assignee of a ticket
// another was merged into (its participants and conversation grew), and
// the agents of a queue the ticket moved to unassigned. Whoever made the
// change is never told of it: an agent who takes a ticket (#assign me)
// hears nothing.
func Handover(h Handing) Told {
	var t Told
	after := strings.TrimSpace(h.After.Assignee)
	other := after != "" && !strings.EqualFold(after, strings.TrimSpace(h.By))
	if h.Escalated {
		if other {
			t.Assignee = h.After.Assignee
		}
		t.Queue, t.Watchers = h.After.Queue, true
		return t
	}
	if other && (h.Merged || !strings.EqualFold(after, strings.TrimSpace(h.Before.Assignee))) {
		t.Assignee = h.After.Assignee
	}
	if after == "" && !strings.EqualFold(h.Before.Queue, h.After.Queue) {
		t.Queue = h.After.Queue
	}
	return t
}
