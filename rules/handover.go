package rules

import "strings"

// Told is who of a ticket's team is to hear, by mail, of a change that
// handed the ticket on without a word written for them.
type Told struct {
	// Queue is the queue whose agents are told: the one the ticket moved
	// to with nobody assigned (an escalation to level 2's queue), so
	// that it is somebody's to take. "" tells no queue.
	Queue string
}

// Handover decides who hears of a change by by ("" for the sweep) that
// took a ticket from before to after: the agents of a queue it moved to
// unassigned, as a helpdesk tells a group of a ticket handed to it.
// Otherwise they would first hear of it at their SLA warning. Whoever
// made the change is never told of it (the desk leaves by out).
func Handover(by string, before, after TicketView) Told {
	var t Told
	if strings.TrimSpace(after.Assignee) == "" && !strings.EqualFold(before.Queue, after.Queue) {
		t.Queue = after.Queue
	}
	return t
}
