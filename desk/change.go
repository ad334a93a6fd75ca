package desk

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// Change is a decision about one ticket, as a value: its state after the
// change, the messages to store on it, the events for its activity log and
// the mails to send. The desk's handlers decide a Change from the input
// and the state they read (a store.Reader: deciding cannot write), and
// apply is the one function that writes it. explain runs the same two
// steps in a transaction that is rolled back.
type Change struct {
	// Ticket is the ticket's new state; nil leaves the record as it is
	// (a message or event added to a ticket that does not change).
	Ticket *store.Ticket
	// ID names the ticket when Ticket is nil.
	ID string
	// Messages are stored on the ticket, first, with their files.
	Messages []Stored
	// Events are logged in order, after the messages.
	Events []store.Event
	// Mails are composed and queued after the events, in order, so they
	// see the ticket's final state; the events they log are added to
	// Events as apply goes.
	Mails []Intent
	// Bouncing addresses are marked so until the given time.
	Bouncing map[string]time.Time
	// Reindex are Message-IDs (sent mail's, a merged ticket's) that from
	// now on thread to this ticket.
	Reindex []string
	// Rewrite, when set, replaces what the ticket already holds (data
	// protection): it is written first.
	Rewrite *Rewrite

	// Direct, on a change about no ticket (no ID and no Ticket), says
	// whom its mails are from and what they answer; such a change sends
	// mail and writes Counters, nothing else.
	Direct *Direct
	// Counters are rate counters written as given (key → times).
	Counters map[string][]time.Time

	// Queued and Held are filled by apply: how many mails went to the
	// outbox, and why the others were held back ("<kind> mail not sent: …").
	Queued int
	Held   []string
	// Precomposed and Recomposed are filled by apply too: how many of the
	// queued mails went out as composed before the transaction, and why
	// the others that came composed were composed again.
	Precomposed int
	Recomposed  []string
}

// Direct is where the mails of a change about no ticket come from: the
// routing address, and the Message-ID of the message they answer.
type Direct struct {
	Route     string
	InReplyTo string
}

// Stored is an inbound message and the bytes kept with it: the raw copy
// and the attachments' content, in the order of Message.Attachments.
type Stored struct {
	*store.Message
	Raw   []byte
	Files [][]byte
	// Copy says the message is a copy of one kept on another ticket (a
	// merge): its blobs are stored already and count one more reference.
	Copy bool
}

// Intent is a mail a change asks for. Queued and Held are logged when the
// mail goes to the outbox or is held back (rate limit, bouncing address);
// a zero Type logs nothing.
type Intent struct {
	mailout.Out
	Queued, Held store.Event
	// Thread adds the mail's Message-ID to the ticket's conversation, so
	// the customer's client threads later mail under it.
	Thread bool
}

func (c *Change) id() string {
	if c.Ticket != nil {
		return c.Ticket.ID
	}
	return c.ID
}

// log appends events to the change.
func (c *Change) log(events ...store.Event) { c.Events = append(c.Events, events...) }

// send appends mails to the change.
func (c *Change) send(mails ...Intent) { c.Mails = append(c.Mails, mails...) }

// apply writes changes in tx with the pipeline's mailer (see Apply).
func (p *Pipeline) apply(tx store.Tx, at time.Time, changes ...*Change) error {
	return Apply(tx, p.Desk, at, changes...)
}

// Apply writes changes in tx, each in this order: its rate counters, its
// rewrite of what the ticket holds (erasure, retention), its messages (and
// their blobs), its events, its mails (composed by m now, with the ticket's
// final state; each may log an event), bounce holds, and last the ticket
// record with its indexes. A change about no ticket (Direct) writes its
// counters and queues its mails, nothing else. It is the only code that
// writes a decision: customer and agent mail, operator actions, erasures
// and the sweep all end here.
func Apply(tx store.Tx, m *mailout.Mailer, at time.Time, changes ...*Change) error {
	for _, c := range changes {
		if err := applyChange(tx, m, at, c); err != nil {
			what := c.id()
			if c.Direct != nil {
				what = "no ticket"
			}
			return fmt.Errorf("apply change to %s: %w", what, err)
		}
	}
	return nil
}

func applyChange(tx store.Tx, m *mailout.Mailer, at time.Time, c *Change) error {
	for k, ts := range c.Counters {
		if err := tx.PutRateTimes(k, ts); err != nil {
			return err
		}
	}
	if c.Direct != nil {
		return applyDirect(tx, m, at, c)
	}
	id := c.id()
	if err := c.Rewrite.apply(tx, id); err != nil {
		return err
	}
	// When the ticket was opened lets the store file the messages and
	// events of a ticket this change opens with those it will have.
	var opened time.Time
	if c.Ticket != nil {
		opened = c.Ticket.CreatedAt
	}
	for _, s := range c.Messages {
		s.Message.TicketCreated = opened
		if err := storeMessage(tx, id, s); err != nil {
			return err
		}
	}
	for _, e := range c.Events {
		e.TicketCreated = opened
		if err := tx.AddEvent(id, e); err != nil {
			return err
		}
	}
	for _, msgid := range c.Reindex {
		if err := tx.IndexMessageID(msgid, id); err != nil {
			return err
		}
	}
	if err := queueMails(tx, m, at, c, id); err != nil {
		return err
	}
	for addr, until := range c.Bouncing {
		if err := tx.MarkBouncing(addr, until); err != nil {
			return err
		}
	}
	if c.Ticket == nil {
		return nil
	}
	if t := c.Ticket; t.Status == rules.StatusClosed && t.BodiesDeletedAt != nil && addsBodies(c) {
		// Retention emptied the ticket, closed too long: what it takes
		// now (a late rating and its thanks, automatic mail, a merge's
		// copies) is due for deletion too, at the next sweep.
		t.BodiesDeletedAt = nil
	}
	return tx.PutTicket(c.Ticket)
}

// addsBodies reports whether c stores a message with a body on its
// ticket: one of its own, or a mail it sends that the ticket keeps.
func addsBodies(c *Change) bool {
	for _, in := range c.Mails {
		if in.Record {
			return true
		}
	}
	return slices.ContainsFunc(c.Messages, func(s Stored) bool { return !emptied(s.Message) })
}

// queueMails puts the mails of c, a change to ticket id, in the outbox
// and notes on c what became of each.
func queueMails(tx store.Tx, m *mailout.Mailer, at time.Time, c *Change, id string) error {
	if len(c.Mails) == 0 {
		return nil
	}
	if c.Ticket == nil {
		// Mail changes the conversation's ids: the record is written.
		t, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		c.Ticket = t
	}
	for _, in := range c.Mails {
		ev, q, err := queueIntent(tx, m, c.Ticket, in, at)
		if err != nil {
			return err
		}
		if q.Skipped != "" {
			c.Held = append(c.Held, in.Kind+" mail not sent: "+q.Skipped)
		} else {
			c.Queued++
		}
		if q.Precomposed {
			c.Precomposed++
		} else if q.Stale != "" {
			c.Recomposed = append(c.Recomposed, in.Kind+" mail: "+q.Stale)
		}
		if ev.Type != "" {
			c.Events = append(c.Events, ev) // what was logged, for the caller
		}
	}
	return nil
}

// applyDirect queues the mails of a change about no ticket.
func applyDirect(tx store.Tx, m *mailout.Mailer, at time.Time, c *Change) error {
	if c.id() != "" || len(c.Messages) > 0 || len(c.Events) > 0 || len(c.Reindex) > 0 || len(c.Bouncing) > 0 {
		return errors.New("a change about no ticket may only send mail and count")
	}
	for _, in := range c.Mails {
		q, err := m.QueueDirect(tx, c.Direct.Route, c.Direct.InReplyTo, in.Out, at)
		if err != nil {
			return fmt.Errorf("queue %s mail: %w", in.Kind, err)
		}
		if q.Skipped != "" {
			c.Held = append(c.Held, in.Kind+" mail not sent: "+q.Skipped)
		} else {
			c.Queued++
		}
	}
	return nil
}

// storeMessage writes an inbound message and its blobs.
func storeMessage(tx store.Tx, id string, s Stored) error {
	if s.Copy {
		return storeCopy(tx, id, s.Message)
	}
	if s.Raw != nil {
		h, err := tx.PutRawBlob(s.Raw)
		if err != nil {
			return err
		}
		s.Message.Raw = h
	}
	for i, f := range s.Files {
		h, err := tx.PutBlob(f)
		if err != nil {
			return err
		}
		s.Message.Attachments[i].SHA256 = h
	}
	return tx.AddMessage(id, s.Message)
}

// queueIntent composes and queues one mail for t and logs what became of
// it, returning the event logged (zero Type: none) and what Queue did
// (Skipped: why the mail was held back).
func queueIntent(tx store.Tx, m *mailout.Mailer, t *store.Ticket, in Intent, at time.Time) (store.Event, mailout.Queued, error) {
	q, err := m.Queue(tx, t, in.Out, at)
	if err != nil {
		return store.Event{}, q, fmt.Errorf("queue %s mail: %w", in.Kind, err)
	}
	ev := in.Queued
	if q.Skipped != "" {
		ev = in.Held
		if ev.Detail == "" && ev.Type != "" {
			ev.Detail = q.Skipped
		}
	} else if in.Thread {
		t.Thread = mailout.AppendThread(t.Thread, q.MessageID)
	}
	if ev.Type == "" {
		return ev, q, nil
	}
	logged := ev
	logged.TicketCreated = t.CreatedAt
	return ev, q, tx.AddEvent(t.ID, logged)
}

// storeCopy adds a copy of a message kept on another ticket to ticket id,
// counting one more reference to each of its files and storing its raw
// copy again (as PutRawBlob keeps it: for one use).
func storeCopy(tx store.Tx, id string, m *store.Message) error {
	c := *m
	var err error
	if c.Raw != "" {
		if c.Raw, err = copyBlob(tx, c.Raw, tx.PutRawBlob); err != nil {
			return err
		}
	}
	for _, a := range c.Attachments {
		if a.SHA256 != "" {
			if _, err := copyBlob(tx, a.SHA256, tx.PutBlob); err != nil {
				return err
			}
		}
	}
	return tx.AddMessage(id, &c)
}

// copyBlob stores blob h's content again with put, for a copy's use, and
// returns the id the copy names: put's, or h when the content was erased
// already (the copy names what the original names).
func copyBlob(tx store.Tx, h string, put func([]byte) (string, error)) (string, error) {
	b, err := tx.Blob(h)
	if errors.Is(err, store.ErrNotFound) {
		return h, nil
	}
	if err != nil {
		return "", err
	}
	return put(b)
}
