package store

import (
	"slices"
	"strings"
	"time"

	"ticketgate/rules"
)

// Ticket is a support ticket. Its JSON form is a public contract (CLI -json
// and the admin API).
type Ticket struct {
	ID            string         `json:"id"`
	Subject       string         `json:"subject"`
	Status        rules.Status   `json:"status"`
	Priority      rules.Priority `json:"priority"`
	Queue         string         `json:"queue"`
	Route         string         `json:"route"`
	Category      string         `json:"category,omitempty"`
	Plan          string         `json:"plan,omitempty"`
	Requester     string         `json:"requester"`
	RequesterName string         `json:"requester_name,omitempty"`
	CC            []string       `json:"cc"`
	Assignee      string         `json:"assignee"`
	Escalated     bool           `json:"escalated,omitempty"`
	Watchers      []string       `json:"watchers,omitempty"`
	Linked        []string       `json:"linked,omitempty"`
	// MergedInto is the ticket this one was merged into: mail naming this
	// ticket's token is threaded there.
	MergedInto string     `json:"merged_into,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ClosedAt   *time.Time `json:"closed_at,omitempty"`

	// LastInID is the Message-ID of the last message received on the
	// ticket; replies chain to it. Thread holds the ids of the ticket's
	// conversation, oldest first, for References.
	LastInID string   `json:"last_in_id,omitempty"`
	Thread   []string `json:"thread,omitempty"`

	// Clock is the awaiting-customer lifecycle state; SLA the service
	// level targets and what was alerted; Due when the scheduler must look
	// at the ticket next (kept in the idx.due index, zero for never).
	Clock        rules.Clock   `json:"lifecycle"`
	SLA          *rules.SLA    `json:"sla,omitempty"`
	Satisfaction *Satisfaction `json:"satisfaction,omitempty"`
	SurveySent   bool          `json:"survey_sent,omitempty"`
	// Files and FileBytes count the customer's attachments kept on the
	// ticket, for the per-ticket attachment limits.
	Files     int       `json:"files,omitempty"`
	FileBytes int64     `json:"file_bytes,omitempty"`
	Due       time.Time `json:"due,omitzero"`
	// BodiesDeletedAt is when retention last deleted the bodies and
	// attachments of the ticket's messages.
	BodiesDeletedAt *time.Time `json:"bodies_deleted_at,omitempty"`

	// Messages and Events are filled by Tx.TicketFull; they are stored
	// in their own buckets, not in the ticket record.
	Messages []Message `json:"messages"`
	Events   []Event   `json:"events"`
}

// Message is one mail on a ticket.
type Message struct {
	MessageID   string       `json:"message_id"`
	Direction   string       `json:"direction"` // "in" or "out"
	Kind        string       `json:"kind"`      // customer, agent, note, auto, system
	From        string       `json:"from"`
	To          []string     `json:"to"`
	Cc          []string     `json:"cc,omitempty"`
	Subject     string       `json:"subject"`
	Text        string       `json:"text"`
	VisibleText string       `json:"visible_text"`
	CreatedAt   time.Time    `json:"created_at"`
	Attachments []Attachment `json:"attachments"`
	// Raw is the blob id of the raw message kept in the blob store (see
	// Tx.PutRawBlob): its SHA-256, or in bbolt since schema 14 its number.
	Raw string `json:"raw_sha256,omitempty"`
	// Notes lists what happened while reading the message (parse
	// problems, limits hit), for people reading the ticket.
	Notes []string `json:"notes,omitempty"`
	// TicketCreated, when the caller of AddMessage sets it, is when the
	// message's ticket was opened: with it a store may file the message
	// of a ticket it has no record of yet (one opened in the same
	// transaction) where that ticket's other messages will go (bbolt
	// keeps a ticket's messages and events in the order tickets were
	// opened). Not stored.
	TicketCreated time.Time `json:"-"`
}

// Satisfaction is the customer's answer to the closing survey.
type Satisfaction struct {
	Score   int       `json:"score"`
	Comment string    `json:"comment"`
	At      time.Time `json:"at"`
}

// Attachment describes a file attached to a message; its content is kept
// once per SHA-256 in the blob store.
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
	At     time.Time       `json:"at"`
	Type   rules.EventType `json:"type"`
	Detail string          `json:"detail"`
	Actor  string          `json:"actor,omitempty"`
	// TicketCreated: as Message.TicketCreated, for AddEvent. Not stored.
	TicketCreated time.Time `json:"-"`
}

// OutMail is one message waiting in the durable outbox. It is written in the
// same transaction as the ticket change that caused it, so a committed
// decision to send is never lost; the outbox worker removes it once the
// relay accepted it (or failed it permanently).
type OutMail struct {
	ID       uint64   `json:"id"`
	TicketID string   `json:"ticket_id"`
	Kind     string   `json:"kind"` // auto, agent, notify, reminder, ...
	From     string   `json:"from"` // envelope sender (return path)
	To       []string `json:"to"`   // envelope recipients
	// Raw is the mail to send. Enqueue stores it; reads leave it nil
	// (Tx.OutboxRaw returns it), so a wake does not load every body.
	Raw []byte `json:"raw"`
	// Carries, when set, is the Message-ID of the message on TicketID
	// whose text and files the mail carries: Raw then holds the rest of
	// the mail, completed from that stored message when it is sent
	// (mailout.OutboxMail), so the outbox keeps no copy of them.
	Carries  string    `json:"carries,omitempty"`
	Attempts int       `json:"attempts"`
	NextAt   time.Time `json:"next_at"`
	Created  time.Time `json:"created"`
	LastErr  string    `json:"last_error,omitempty"`
	// TicketCreated, when the caller of Enqueue sets it, is when TicketID
	// was opened: with it a store may file the mail of a ticket it has no
	// record of yet (one opened in the same transaction) where that
	// ticket's other entries will go (bbolt's queue index). Not stored.
	TicketCreated time.Time `json:"-"`
	// ClaimedBy is the owner holding a claim on the entry (see
	// Tx.ClaimOutbox), until ClaimedUntil; "" when unclaimed.
	ClaimedBy    string    `json:"claimed_by,omitempty"`
	ClaimedUntil time.Time `json:"claimed_until,omitzero"`
	// Done lists the recipients of To this mail needs no more attempts
	// for: the relay took it for them, or refused them for good. The
	// outbox worker writes it before it hands the relay the end of the
	// mail, so a restart never sends the mail to them again, and sends
	// later attempts to the others only (Pending).
	Done []string `json:"done,omitempty"`
}

// DueAt is when m is due, or fell due: its NextAt, or when it was
// queued for mail queued to go at once (with no NextAt).
func (m *OutMail) DueAt() time.Time {
	if m.NextAt.IsZero() {
		return m.Created
	}
	return m.NextAt
}

// Pending lists the recipients of To not in Done, in To's order.
func (m *OutMail) Pending() []string {
	var out []string
	for _, r := range m.To {
		if !slices.Contains(m.Done, r) {
			out = append(out, r)
		}
	}
	return out
}

// Instance is a serving process's report of itself, so that the
// processes sharing one database can be compared: ID names the
// installation (host and configuration file), Fingerprint the signing
// keys and admin token it uses (a hash that reveals nothing of them), and
// Seen when it last reported (serve: at its start, then as long as it
// runs).
type Instance struct {
	ID          string    `json:"id"`
	Fingerprint string    `json:"fingerprint"`
	Seen        time.Time `json:"seen"`
}

// DefaultLease is how long a claim on an outbox entry holds unless the
// worker says otherwise: long enough to hand one mail to a relay, short
// enough that another process sends a crashed one's mail within a minute.
const DefaultLease = 30 * time.Second

// Queue names the queue m belongs to: the mail about one ticket to one
// list of recipients (TicketID and To, joined by 0x00). The entries of a
// queue are delivered in id order; an entry waiting for a retry holds back
// the later ones of its queue and no other mail.
func (m *OutMail) Queue() string {
	return m.TicketID + "\x00" + strings.Join(m.To, "\x00")
}

// SentMail is an outgoing mail the relay took for at least one recipient,
// as Tx.Sent recorded it.
type SentMail struct {
	ID   uint64
	Kind string
	To   []string  // the envelope recipients of the outbox entry
	At   time.Time // when the relay's acceptance was recorded
}

// Blobs lists the blobs m names: its raw copy and its attachments'.
func (m *Message) Blobs() []string {
	var hs []string
	if m.Raw != "" {
		hs = append(hs, m.Raw)
	}
	for _, a := range m.Attachments {
		if a.SHA256 != "" {
			hs = append(hs, a.SHA256)
		}
	}
	return hs
}

// Rate is a rate counter: the times recorded under its key (Tx.RateTimes).
type Rate struct {
	Key   string
	Times []time.Time
}

// Checkpoint is how far an IMAP mailbox has been taken: the mailbox's
// UIDVALIDITY and the highest UID whose message is committed. It is written
// in the same transaction as the ticket change for that message.
type Checkpoint struct {
	Mailbox     string `json:"mailbox"`
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
}

// NormMessageID is a Message-ID as indexed: angle brackets and surrounding
// space removed.
func NormMessageID(id string) string {
	return strings.TrimSpace(strings.Trim(strings.TrimSpace(id), "<>"))
}
