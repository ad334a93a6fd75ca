// Package rules holds ticketgate's decisions: routing, threading, loop
// detection, sender trust, agent commands, lifecycle deadlines and SLA.
// It is pure: its inputs are values, its outputs are decisions, and it never
// touches the network, the disk or the clock (callers pass "now").
package rules

// Status is where a ticket stands in its life.
type Status string

// The ticket statuses, in the order a ticket usually walks them.
const (
	StatusNew      Status = "new"
	StatusOpen     Status = "open"
	StatusWaiting  Status = "waiting"
	StatusOnHold   Status = "on_hold"
	StatusResolved Status = "resolved"
	StatusClosed   Status = "closed"
)

// ParseStatus returns the status named s, or false.
func ParseStatus(s string) (Status, bool) {
	switch st := Status(s); st {
	case StatusNew, StatusOpen, StatusWaiting, StatusOnHold, StatusResolved, StatusClosed:
		return st, true
	}
	return "", false
}

// Priority says how urgent a ticket is. Medium is the default.
type Priority string

// The priorities, lowest first.
const (
	PriorityLow      Priority = "low"
	PriorityMedium   Priority = "medium"
	PriorityHigh     Priority = "high"
	PriorityCritical Priority = "critical"
)

var priorityRank = map[Priority]int{PriorityLow: 0, PriorityMedium: 1, PriorityHigh: 2, PriorityCritical: 3}

// ParsePriority returns the priority named s, or false.
func ParsePriority(s string) (Priority, bool) {
	p := Priority(s)
	_, ok := priorityRank[p]
	return p, ok
}

// Rank orders priorities: low 0 … critical 3.
func (p Priority) Rank() int { return priorityRank[p] }

// Up returns the next higher priority, capped at max.
func (p Priority) Up(max Priority) Priority {
	order := []Priority{PriorityLow, PriorityMedium, PriorityHigh, PriorityCritical}
	r := p.Rank() + 1
	if r >= len(order) {
		r = len(order) - 1
	}
	if r > max.Rank() {
		r = max.Rank()
	}
	if r < p.Rank() {
		return p
	}
	return order[r]
}
