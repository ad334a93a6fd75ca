package mailout

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// Mailer builds and queues the mail the gateway sends about tickets, so every
// kind (auto-replies, agent replies, notifications, reminders, alerts)
// threads the same way, carries the same loop protection and lands in the
// outbox in the caller's transaction.
type Mailer struct {
	Hostname  string // domain of generated Message-IDs and our HELO name
	FromName  string // display name, e.g. "Example Support"
	Templates *Templates
	// VERPKeys sign bounce return paths (first key signs); nil sends with
	// the routing address as envelope sender.
	VERPKeys [][]byte
	// AutoLimits cap automatic mail per recipient address.
	AutoLimits []rules.Limit
	// BounceHold is how long automatic mail to a bouncing address is held.
	BounceHold time.Duration
	// MaxRecipients caps the envelope recipients of one outbox entry; a
	// mail to more is queued as several (0: DefaultMaxRecipients).
	MaxRecipients int
}

// DefaultMaxRecipients is the envelope recipients of one outbox entry when
// none is configured.
const DefaultMaxRecipients = 50

// chunks splits list into runs of at most n (DefaultMaxRecipients when n
// is not positive).
func chunks(list []string, n int) [][]string {
	if n <= 0 {
		n = DefaultMaxRecipients
	}
	var out [][]string
	for len(list) > n {
		out = append(out, list[:n:n])
		list = list[n:]
	}
	return append(out, list)
}

// VERPPrefix is the local part of bounce return paths: bounces+<code>@<host>.
const VERPPrefix = "bounces"

// LoopTag is the X-Loop value the gateway writes and recognises.
func (d *Mailer) LoopTag() string { return "ticketgate " + d.Hostname }

// Out is one mail to queue for a ticket.
type Out struct {
	Kind string // auto, agent, notify, note, reminder, waiting, closed, survey, resolution, alert, refusal, redaction, error, list
	To   []mail.Address
	Cc   []mail.Address
	// FromName overrides the display name on From (e.g. "Ana Lima via
	// Example Support"); the address is always the ticket's routing address.
	FromName string
	ReplyTo  *mail.Address
	Subject  string // default "[<id>] <ticket subject>"
	// Template and Data render the body; Text is used when Template is "".
	Template    string
	Data        map[string]any
	Text        string
	Auto        string // Auto-Submitted value for automatic mail, "" for mail a person wrote
	Attachments []Attachment
	// Record stores the mail as a message on the ticket (what the customer
	// was sent); otherwise only its Message-ID is indexed for threading.
	Record bool
	// Internal marks mail to the team (notifications, notes, alerts): it is
	// automatic mail (Auto-Submitted: auto-generated unless Auto says
	// otherwise) but never held by customer rate limits or bounce holds.
	Internal bool
	// Carries, when set, is the message stored on the ticket this mail
	// brings to its reader: the template gets its visible text, trimmed,
	// as Text, and Attachments must be its files. The outbox then keeps
	// the mail without them and refers to the message (see OutboxMail),
	// when the template prints Text once as it is.
	Carries *store.Message
	// Prepared, when set, is this mail composed before the transaction
	// (see Mailer.Prepare); Queue uses it when it still fits.
	Prepared *Prepared
}

// Queued says what Queue did.
type Queued struct {
	MessageID string
	Skipped   string // why nothing was queued ("" when queued)
	Message   *store.Message
	// Precomposed says the mail went out as o.Prepared had it; Stale says
	// why a Prepared mail was composed again instead ("" when it was not).
	Precomposed bool
	Stale       string
}

// Queue composes o for ticket t and puts it in the outbox within tx. It
// threads to the ticket's last received message and conversation, sends
// no mail to a forgotten customer's pseudonym, and holds back automatic
// mail to addresses that bounce or have had their share of automatic
// replies (reported in Skipped, with an event). When o
// carries a Prepared mail built from what still holds, its bytes are
// queued as they are instead of being composed again.
func (d *Mailer) Queue(tx store.Tx, t *store.Ticket, o Out, now time.Time) (Queued, error) {
	if o.Internal && o.Auto == "" {
		o.Auto = "auto-generated"
	}
	to, skipped, err := d.admit(tx, &o, now)
	if err != nil || len(to) == 0 {
		if skipped != "" {
			err = tx.AddEvent(t.ID, store.Event{At: now, Type: rules.EventMailSuppressed, Detail: o.Kind + " mail not sent: " + skipped, TicketCreated: t.CreatedAt})
		}
		return Queued{Skipped: skipped}, err
	}
	var q Queued
	var subject, body, carries string
	var raw []byte
	if p := o.Prepared; p != nil {
		if q.Stale = p.fits(d, t, o, to, now); q.Stale == "" {
			q.Precomposed = true
			q.MessageID, subject, body, raw = p.MessageID, p.subject, p.body, p.raw
		}
	}
	if o.Carries != nil && !q.Precomposed {
		m, draft, before, after, err := d.carry(t, o, to, now)
		if err != nil {
			return Queued{}, err
		}
		if m != nil {
			carries, raw = o.Carries.MessageID, draft
			q.MessageID, subject = m.MessageID, m.Subject
			if o.Record { // the body is only kept when the mail is recorded
				body = before + carriedText(o.Carries) + after
			}
		} else {
			o.Data = withValue(o.Data, "Text", carriedText(o.Carries))
		}
	}
	if !q.Precomposed && carries == "" {
		m, text, err := d.compose(t, o, to, now)
		if err != nil {
			return Queued{}, err
		}
		if raw, err = Compose(m); err != nil {
			return Queued{}, err
		}
		q.MessageID, subject, body = m.MessageID, m.Subject, text
	}
	if err := d.enqueue(tx, t, t.Route, o.Kind, Addrs(append(append([]mail.Address(nil), to...), o.Cc...)), raw, carries, now); err != nil {
		return Queued{}, err
	}
	if o.Record {
		q.Message = &store.Message{MessageID: q.MessageID, Direction: "out", Kind: o.Kind, From: t.Route, To: Addrs(to), Cc: Addrs(o.Cc),
			Subject: subject, Text: body, VisibleText: body, CreatedAt: now, Attachments: []store.Attachment{}, TicketCreated: t.CreatedAt}
		if err := tx.AddMessage(t.ID, q.Message); err != nil {
			return Queued{}, err
		}
		t.Thread = AppendThread(t.Thread, q.MessageID)
	} else if err := tx.IndexMessageID(q.MessageID, t.ID); err != nil {
		return Queued{}, err
	}
	return q, nil
}

// compose is the mail o makes for ticket t to recipients to at now, with
// a fresh Message-ID, and its rendered text.
func (d *Mailer) compose(t *store.Ticket, o Out, to []mail.Address, now time.Time) (*Mail, string, error) {
	body, err := d.body(o, map[string]any{"Ticket": t, "TicketID": t.ID, "Subject": t.Subject})
	if err != nil {
		return nil, "", err
	}
	subject := o.Subject
	if subject == "" {
		subject = fmt.Sprintf("[%s] %s", t.ID, t.Subject)
	}
	fromName := o.FromName
	if fromName == "" {
		fromName = d.FromName
	}
	from := mail.Address{Name: fromName, Address: t.Route}
	replyTo := o.ReplyTo
	if replyTo == nil {
		replyTo = &mail.Address{Name: d.FromName, Address: t.Route}
	}
	return &Mail{From: from, ReplyTo: replyTo, To: to, Cc: o.Cc, Subject: subject,
		MessageID: NewMessageID(d.Hostname), InReplyTo: t.LastInID, References: t.Thread,
		Auto: o.Auto, LoopTag: d.LoopTag(), ThreadTopic: t.Subject, ThreadKey: t.ID, Text: body, Attachments: o.Attachments, Date: now}, body, nil
}

// QueueDirect composes o, a mail about no one ticket (a customer's list
// of their tickets), and puts it in the outbox within tx: from the
// routing address route, answering the message inReplyTo ("" for none),
// recorded on no ticket. Automatic mail is held back as Queue holds it
// (forgotten addresses, bouncing ones, the automatic-mail rate limit),
// reported in Skipped only. The Subject of o is required.
func (d *Mailer) QueueDirect(tx store.Tx, route, inReplyTo string, o Out, now time.Time) (Queued, error) {
	if o.Subject == "" {
		return Queued{}, fmt.Errorf("%s mail about no ticket has no subject", o.Kind)
	}
	to, skipped, err := d.admit(tx, &o, now)
	if err != nil || len(to) == 0 {
		return Queued{Skipped: skipped}, err
	}
	body, err := d.body(o, nil)
	if err != nil {
		return Queued{}, err
	}
	from := mail.Address{Name: d.FromName, Address: route}
	m := &Mail{From: from, ReplyTo: &from, To: to, Cc: o.Cc, Subject: o.Subject,
		MessageID: NewMessageID(d.Hostname), InReplyTo: inReplyTo, Auto: o.Auto, LoopTag: d.LoopTag(), Text: body, Date: now}
	if inReplyTo != "" {
		m.References = []string{inReplyTo}
	}
	raw, err := Compose(m)
	if err != nil {
		return Queued{}, err
	}
	if err := d.enqueue(tx, nil, route, o.Kind, Addrs(append(append([]mail.Address(nil), to...), o.Cc...)), raw, "", now); err != nil {
		return Queued{}, err
	}
	return Queued{MessageID: m.MessageID}, nil
}

// body renders o's template with base (the ticket's fields), the common
// fields and o.Data, or is o.Text when o names no template.
func (d *Mailer) body(o Out, base map[string]any) (string, error) {
	if o.Template == "" {
		return o.Text, nil
	}
	data := map[string]any{"FromName": d.FromName, "SavedReplies": d.Templates.ReplyNames()}
	for k, v := range base {
		data[k] = v
	}
	for k, v := range o.Data {
		data[k] = v
	}
	return d.Templates.Render(o.Template, data)
}

// enqueue puts raw in the outbox for rcpts: one entry per envelope of at
// most MaxRecipients, so a relay that caps recipients (Postfix: 1,000)
// takes each whole; each entry keeps its own copy of raw. When carries is
// not "", raw is a draft, completed when sent with the stored message
// carries names. The return path is a VERP address when keys are set,
// else route. t is the mail's ticket, nil for mail about none.
func (d *Mailer) enqueue(tx store.Tx, t *store.Ticket, route, kind string, rcpts []string, raw []byte, carries string, now time.Time) error {
	var ticketID string
	var opened time.Time
	if t != nil {
		ticketID, opened = t.ID, t.CreatedAt
	}
	for _, part := range chunks(rcpts, d.MaxRecipients) {
		id, err := tx.NextOutboxID()
		if err != nil {
			return err
		}
		envFrom := route
		if len(d.VERPKeys) > 0 {
			envFrom = rules.VERP(d.VERPKeys[0], VERPPrefix, d.Hostname, id)
		}
		if err := tx.Enqueue(&store.OutMail{ID: id, TicketID: ticketID, Kind: kind, From: envFrom, To: part, Raw: raw, Carries: carries,
			Created: now, TicketCreated: opened}); err != nil { // zero NextAt: due at once
			return err
		}
	}
	return nil
}

// AutoKey is the rate counter of the automatic mail sent to addr.
func AutoKey(addr string) string { return "auto:" + strings.ToLower(addr) }

// admit returns the recipients o may reach and says why any other was
// dropped. No mail, whoever wrote it, goes to the pseudonym of a forgotten
// customer (rules.Forgotten) or to an empty address: those leave o.To and
// o.Cc. Automatic mail
// to the team goes to the rest; automatic mail to customers does not reach
// bouncing addresses or those over the automatic-reply rate limit
// (recorded when admitted).
func (d *Mailer) admit(tx store.Tx, o *Out, now time.Time) ([]mail.Address, string, error) {
	var to []mail.Address
	var why []string
	for _, a := range o.To {
		switch {
		case a.Address == "":
			// A ticket whose sender could not be read has no requester.
			why = append(why, "no address to send to")
			continue
		case rules.Forgotten(a.Address):
			why = append(why, "the customer was forgotten ("+strings.ToLower(a.Address)+")")
			continue
		}
		to = append(to, a)
	}
	o.Cc = slices.DeleteFunc(slices.Clone(o.Cc), func(a mail.Address) bool { return a.Address == "" || rules.Forgotten(a.Address) })
	if len(to) == 0 && len(why) > 0 {
		// The customer was forgotten, or has no address: those copied
		// still get the mail.
		to, o.Cc = o.Cc, nil
	}
	if o.Auto == "" || o.Internal {
		return to, strings.Join(why, "; "), nil
	}
	cand := to
	to = nil
	for _, a := range cand {
		addr := strings.ToLower(a.Address)
		bouncing, err := tx.Bouncing(addr, now)
		if err != nil {
			return nil, "", err
		}
		if bouncing {
			why = append(why, addr+" is bouncing")
			continue
		}
		if len(d.AutoLimits) > 0 {
			times, err := tx.RateTimes(AutoKey(addr))
			if err != nil {
				return nil, "", err
			}
			if !rules.Allow(times, now, d.AutoLimits...) {
				why = append(why, "automatic-mail rate limit reached for "+addr)
				continue
			}
			if err := tx.PutRateTimes(AutoKey(addr), append(rules.Prune(times, now, d.AutoLimits...), now)); err != nil {
				return nil, "", err
			}
		}
		to = append(to, a)
	}
	return to, strings.Join(why, "; "), nil
}

// Addrs lists the addresses of l, lower-cased, each once.
func Addrs(l []mail.Address) []string {
	out := make([]string, 0, len(l))
	for _, a := range l {
		if a.Address != "" && !slices.Contains(out, strings.ToLower(a.Address)) {
			out = append(out, strings.ToLower(a.Address))
		}
	}
	return out
}

// AppendThread adds id to a ticket's conversation ids, keeping the first
// and the last 19 so References headers stay short.
func AppendThread(thread []string, id string) []string {
	if slices.Contains(thread, id) {
		return thread
	}
	thread = append(thread, id)
	if len(thread) > 20 {
		thread = append(thread[:1], thread[len(thread)-19:]...)
	}
	return thread
}
