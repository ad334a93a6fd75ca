// Package view holds the public JSON of tickets: what "ticketgate show
// -json", "ticketgate tickets -json", the admin API and the result of an
// operator's action write. The views are built from store records, which
// keep fields for the gateway alone (threading, the lifecycle clock, the
// scheduler's due time, the raw copy's hash, the SLA's pause accounting);
// none of those appear here. Every time is in UTC.
package view

import (
	"cmp"
	"slices"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// Summary is a ticket without its messages and events.
type Summary struct {
	ID            string         `json:"id"`
	Subject       string         `json:"subject"`
	Status        rules.Status   `json:"status"`
	Priority      rules.Priority `json:"priority"`
	Queue         string         `json:"queue"`
	Category      string         `json:"category,omitempty"`
	Plan          string         `json:"plan,omitempty"`
	Requester     string         `json:"requester"`
	RequesterName string         `json:"requester_name,omitempty"`
	CC            []string       `json:"cc"`
	Assignee      string         `json:"assignee"`
	Escalated     bool           `json:"escalated,omitempty"`
	Watchers      []string       `json:"watchers,omitempty"`
	// Links are the tickets this one is linked to. Linked is the same
	// list under its older name, kept for consumers that read it.
	Links  []string `json:"links,omitempty"`
	Linked []string `json:"linked,omitempty"`
	// MergedInto is the ticket this one was merged into.
	MergedInto   string        `json:"merged_into,omitempty"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
	ClosedAt     *time.Time    `json:"closed_at,omitempty"`
	SLA          *SLA          `json:"sla,omitempty"`
	Satisfaction *Satisfaction `json:"satisfaction,omitempty"`
}

// Ticket is a ticket with its messages and events, oldest first.
type Ticket struct {
	Summary
	Messages []Message `json:"messages"`
	Events   []Event   `json:"events"`
	// Mail is every mail sent or queued for the ticket (auto-replies,
	// notifications to agents, notices, replies), oldest first: "show"
	// and GET /api/tickets/{id} fill it in.
	Mail []Mail `json:"mail,omitempty"`
}

// Mail is one outgoing mail of a ticket and where it stands.
type Mail struct {
	ID   uint64   `json:"id"` // its outbox id ("outbox show ID" while queued)
	Kind string   `json:"kind"`
	To   []string `json:"to"`
	// State is "sent" once the relay took it (for some recipients at
	// least: a mail still queued for the others is listed again as
	// "queued"), or "queued" while it waits in the outbox.
	State string `json:"state"`
	// At is when it was sent, or when it is next tried.
	At        time.Time `json:"at"`
	Attempts  int       `json:"attempts,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// NewMail returns the views of a ticket's queued and sent mail, by outbox
// id (the order they were made in); never nil.
func NewMail(queued []*store.OutMail, sent []store.SentMail) []Mail {
	out := make([]Mail, 0, len(queued)+len(sent))
	for _, s := range sent {
		out = append(out, Mail{ID: s.ID, Kind: s.Kind, To: nonNil(s.To), State: "sent", At: s.At.UTC()})
	}
	for _, q := range queued {
		out = append(out, Mail{ID: q.ID, Kind: q.Kind, To: nonNil(q.Pending()), State: "queued", At: q.DueAt().UTC(),
			Attempts: q.Attempts, LastError: q.LastErr})
	}
	slices.SortStableFunc(out, func(a, b Mail) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// SLA is the public part of a ticket's service level state: the due
// times, when an agent first answered (null until then) and the kinds
// ("first_response", "resolution") whose breach was alerted; on an
// escalated ticket, level 2's clock.
type SLA struct {
	FirstResponseDue time.Time   `json:"first_response_due"`
	ResolutionDue    time.Time   `json:"resolution_due"`
	FirstResponseAt  *time.Time  `json:"first_response_at"`
	Breached         []string    `json:"breached"`
	Escalation       *Escalation `json:"escalation,omitempty"`
}

// Escalation is level 2's clock: when the ticket was escalated, level 2's
// due times counted from then in its own calendar, its first public reply
// since (null until then) and the kinds whose level-2 breach was alerted.
type Escalation struct {
	Level            int        `json:"level"`
	At               time.Time  `json:"at"`
	FirstResponseDue *time.Time `json:"first_response_due"`
	FirstResponseAt  *time.Time `json:"first_response_at"`
	ResolutionDue    *time.Time `json:"resolution_due"`
	Breached         []string   `json:"breached"`
}

// Satisfaction is the customer's answer to the closing survey.
type Satisfaction struct {
	Score   int       `json:"score"`
	Comment string    `json:"comment"`
	At      time.Time `json:"at"`
}

// Message is one mail on a ticket.
type Message struct {
	MessageID   string       `json:"message_id"`
	Direction   string       `json:"direction"` // "in" or "out"
	Kind        string       `json:"kind"`      // customer, agent, note, system; auto and the notices (README)
	From        string       `json:"from"`
	To          []string     `json:"to"`
	Cc          []string     `json:"cc,omitempty"`
	Subject     string       `json:"subject"`
	Text        string       `json:"text"`
	VisibleText string       `json:"visible_text"`
	CreatedAt   time.Time    `json:"created_at"`
	Attachments []Attachment `json:"attachments"`
	Notes       []string     `json:"notes,omitempty"`
}

// Attachment describes a file attached to a message.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256,omitempty"`
	ContentID   string `json:"content_id,omitempty"`
	Inline      bool   `json:"inline,omitempty"`
}

// Event is one entry in a ticket's activity log.
type Event struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Detail string    `json:"detail"`
	Actor  string    `json:"actor,omitempty"`
}

// ActionResult is the ticket after an operator's action and the events
// the action recorded.
type ActionResult struct {
	Ticket *Ticket `json:"ticket"`
	Events []Event `json:"events"`
}

// NewSummary returns the public view of ticket record t, leaving out its
// messages and events.
func NewSummary(t *store.Ticket) Summary {
	return Summary{
		ID:            t.ID,
		Subject:       t.Subject,
		Status:        t.Status,
		Priority:      t.Priority,
		Queue:         t.Queue,
		Category:      t.Category,
		Plan:          t.Plan,
		Requester:     t.Requester,
		RequesterName: t.RequesterName,
		CC:            list(t.CC),
		Assignee:      t.Assignee,
		Escalated:     t.Escalated,
		Watchers:      t.Watchers,
		Links:         t.Linked,
		Linked:        t.Linked,
		MergedInto:    t.MergedInto,
		CreatedAt:     t.CreatedAt.UTC(),
		UpdatedAt:     t.UpdatedAt.UTC(),
		ClosedAt:      utcPtr(t.ClosedAt),
		SLA:           newSLA(t.SLA),
		Satisfaction:  newSatisfaction(t.Satisfaction),
	}
}

// NewTicket returns the public view of ticket t with the messages and
// events it holds (as filled by store.Tx.TicketFull), oldest first. The
// store keeps them in the order they were added: a merge adds the
// source's, earlier ones included, after the target's own.
func NewTicket(t *store.Ticket) *Ticket {
	v := &Ticket{Summary: NewSummary(t), Messages: make([]Message, 0, len(t.Messages)), Events: NewEvents(t.Events)}
	for _, m := range t.Messages {
		v.Messages = append(v.Messages, newMessage(m))
	}
	slices.SortStableFunc(v.Messages, func(a, b Message) int { return a.CreatedAt.Compare(b.CreatedAt) })
	slices.SortStableFunc(v.Events, func(a, b Event) int { return a.At.Compare(b.At) })
	return v
}

// NewTickets returns the views of a list of tickets, in the same order;
// an empty list is [] in JSON, not null.
func NewTickets(ts []*store.Ticket) []*Ticket {
	out := make([]*Ticket, 0, len(ts))
	for _, t := range ts {
		out = append(out, NewTicket(t))
	}
	return out
}

// NewEvents returns the views of events, in the same order; never nil.
func NewEvents(es []store.Event) []Event {
	out := make([]Event, 0, len(es))
	for _, e := range es {
		out = append(out, Event{At: e.At.UTC(), Type: string(e.Type), Detail: e.Detail, Actor: e.Actor})
	}
	return out
}

// NewActionResult returns the view of an action's result: ticket t and
// the events the action recorded. A nil t gives a null ticket.
func NewActionResult(t *store.Ticket, events []store.Event) ActionResult {
	r := ActionResult{Events: NewEvents(events)}
	if t != nil {
		r.Ticket = NewTicket(t)
	}
	return r
}

func newMessage(m store.Message) Message {
	v := Message{
		MessageID:   m.MessageID,
		Direction:   m.Direction,
		Kind:        m.Kind,
		From:        m.From,
		To:          list(m.To),
		Cc:          m.Cc,
		Subject:     m.Subject,
		Text:        m.Text,
		VisibleText: m.VisibleText,
		CreatedAt:   m.CreatedAt.UTC(),
		Attachments: make([]Attachment, 0, len(m.Attachments)),
		Notes:       m.Notes,
	}
	for _, a := range m.Attachments {
		v.Attachments = append(v.Attachments, Attachment{Filename: a.Filename, ContentType: a.ContentType,
			Size: a.Size, SHA256: a.SHA256, ContentID: a.ContentID, Inline: a.Inline})
	}
	return v
}

func newSLA(s *rules.SLA) *SLA {
	if s == nil {
		return nil
	}
	return &SLA{
		FirstResponseDue: s.FirstResponseDue.UTC(),
		ResolutionDue:    s.ResolutionDue.UTC(),
		FirstResponseAt:  utcPtr(s.FirstResponseAt),
		Breached:         list(s.Breached),
		Escalation:       newEscalation(s.Escalation),
	}
}

func newEscalation(e *rules.Escalation) *Escalation {
	if e == nil {
		return nil
	}
	due := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil // no target
		}
		return utcPtr(&t)
	}
	return &Escalation{Level: e.Level, At: e.At.UTC(), FirstResponseDue: due(e.FirstResponseDue),
		FirstResponseAt: utcPtr(e.FirstResponseAt), ResolutionDue: due(e.ResolutionDue), Breached: list(e.Breached)}
}

func newSatisfaction(s *store.Satisfaction) *Satisfaction {
	if s == nil {
		return nil
	}
	return &Satisfaction{Score: s.Score, Comment: s.Comment, At: s.At.UTC()}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// list returns s, or an empty list for nil so that JSON has [] where the
// contract promises a list.
func list(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
