package desk

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// Inbound policy limits ([limits] in the configuration).
type Policies struct {
	PerSender, PerDomain, PerTicket int // messages per hour; 0 = no limit
	MaxAttachments                  int
	MaxAttachmentBytes              int64
	MaxAttachmentsTotal             int64
	BounceHold                      time.Duration
}

// attachmentPolicy keeps the files of the message in pl that fit the
// ticket's limits, given what the ticket already holds (files kept and
// their bytes; zero for a new ticket), and lists the others with the
// reason; the message and ticket are kept and the sender is told. It
// starts from the files the message came with each time, so it gives the
// same answer in every run of a transaction.
func (p *Pipeline) attachmentPolicy(pl *plan, files int, total int64) {
	lim := p.Policies
	var kept []mailin.Part
	pl.refused = nil
	for _, a := range pl.files {
		size := int64(len(a.Content))
		referenced := shownInline(pl, a)
		var why string
		switch {
		case lim.MaxAttachmentBytes > 0 && size > lim.MaxAttachmentBytes:
			why = fmt.Sprintf("it is %s, more than the %s allowed per file", humanBytes(size), humanBytes(lim.MaxAttachmentBytes))
		case !referenced && lim.MaxAttachments > 0 && files >= lim.MaxAttachments:
			why = fmt.Sprintf("only %d files are accepted per ticket", lim.MaxAttachments)
		case lim.MaxAttachmentsTotal > 0 && total+size > lim.MaxAttachmentsTotal:
			why = fmt.Sprintf("the ticket's files together would exceed %s", humanBytes(lim.MaxAttachmentsTotal))
		}
		if why != "" {
			pl.refused = append(pl.refused, fmt.Sprintf("%s: not accepted because %s", a.Filename, why))
			continue
		}
		if !referenced {
			files++
		}
		total += size
		kept = append(kept, a)
	}
	pl.in.Attachments = kept
}

// noteAttachments records in pl's trace what attachmentPolicy decided.
func noteAttachments(pl *plan) {
	var total int64
	for _, a := range pl.in.Attachments {
		total += int64(len(a.Content))
	}
	for _, r := range pl.refused {
		pl.note("attachment %s", r)
	}
	if len(pl.in.Attachments) > 0 {
		pl.note("attachments kept: %d (%s)", len(pl.in.Attachments), humanBytes(total))
	}
}

// shownInline reports whether a is an inline image the message's HTML
// refers to: it belongs to the message's text and is no file of its own.
func shownInline(pl *plan, a mailin.Part) bool {
	return a.Inline && a.ContentID != "" && strings.Contains(pl.in.HTML, "cid:"+a.ContentID)
}

// fileUsage counts the files the message in pl adds to its ticket's share,
// as attachmentPolicy counts them: the kept attachments other than inline
// images its text shows, and the bytes of all kept attachments.
func fileUsage(pl *plan) (files int, bytes int64) {
	for _, a := range pl.in.Attachments {
		if !shownInline(pl, a) {
			files++
		}
		bytes += int64(len(a.Content))
	}
	return files, bytes
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// floodWindow is the window of the inbound flood limits: messages per
// sender, domain or ticket in any hour.
const floodWindow = time.Hour

// floodKey is one hourly counter a message is held against.
type floodKey struct {
	key string
	max int
}

// floodKeys are the counters of the message's sender and sender's domain
// (ticketID ""), or of its ticket. Big freemail providers are not one
// sender: their domain is not counted.
func (p *Pipeline) floodKeys(pl *plan, ticketID string) []floodKey {
	if ticketID != "" {
		if p.Policies.PerTicket <= 0 {
			return nil
		}
		return []floodKey{{"in:ticket:" + ticketID, p.Policies.PerTicket}}
	}
	addr := pl.in.From.Address
	if addr == "" {
		addr = strings.ToLower(pl.d.MailFrom)
	}
	_, domain, _ := strings.Cut(addr, "@")
	var keys []floodKey
	if p.Policies.PerSender > 0 && addr != "" {
		keys = append(keys, floodKey{"in:sender:" + addr, p.Policies.PerSender})
	}
	if p.Policies.PerDomain > 0 && domain != "" && !rules.Freemail(domain) {
		keys = append(keys, floodKey{"in:domain:" + domain, p.Policies.PerDomain})
	}
	return keys
}

// overLimit refuses with ErrRateLimited when one more message would pass
// a counter's hourly limit.
func overLimit(tx store.Tx, now time.Time, keys []floodKey) error {
	for _, k := range keys {
		times, err := tx.RateTimes(k.key)
		if err != nil {
			return err
		}
		if !rules.Allow(times, now, rules.Limit{Per: floodWindow, Max: k.max}) {
			return fmt.Errorf("%s: more than %d messages in an hour: %w", strings.TrimPrefix(k.key, "in:"), k.max, mailin.ErrRateLimited)
		}
	}
	return nil
}

// admit runs in a read-only transaction before the message's write
// transaction and refuses, with ErrRateLimited, mail from a sender or
// domain past its hourly limit and mail that would join a ticket past its
// own. It follows the path commit will take (duplicates, bounces and
// agents' mail are not held against a ticket) so that commit itself
// never has to refuse. Messages racing each other between the two
// transactions may pass a limit by as many as arrive at once.
func (p *Pipeline) admit(tx store.Tx, pl *plan) error {
	if pl.verp != 0 {
		return nil // reports on our own mail are never a flood to refuse
	}
	if tid, err := p.duplicateOf(tx, pl); tid != "" || err != nil {
		return err // a retry is answered 250 again, whatever the counts
	}
	// An agent's mail to a signed address is the team at work, never a
	// flood: neither the agent's nor the desk's domain count holds it.
	if p.isAgentMail(tx, pl) {
		return nil
	}
	if err := overLimit(tx, pl.now, p.floodKeys(pl, "")); err != nil {
		return err
	}
	if p.Policies.PerTicket <= 0 || p.isListing(pl) {
		return nil
	}
	cand, err := p.candidate(tx, pl)
	if err != nil {
		return err
	}
	dec := p.decideThread(cand, pl)
	if dec.Action != rules.ThreadAppend && dec.Action != rules.ThreadReopen {
		return nil
	}
	return overLimit(tx, pl.now, p.floodKeys(pl, dec.TicketID))
}

// recordFlood counts the message against its sender and domain (ticketID
// "") or its ticket. It never refuses: admit did that before the
// transaction, and a refusal here would fail the whole group commit.
func (p *Pipeline) recordFlood(tx store.Tx, pl *plan, ticketID string) error {
	for _, k := range p.floodKeys(pl, ticketID) {
		lim := rules.Limit{Per: floodWindow, Max: k.max}
		times, err := tx.RateTimes(k.key)
		if err != nil {
			return err
		}
		if err := tx.PutRateTimes(k.key, append(rules.Prune(times, pl.now, lim), pl.now)); err != nil {
			return err
		}
	}
	return nil
}

// isAgentMail reports, without writing, whether agentMail will take the
// message as a verified agent's mail to an existing ticket.
func (p *Pipeline) isAgentMail(tx store.Tx, pl *plan) bool {
	from := strings.ToLower(pl.in.From.Address)
	agent, ok := p.agent(from)
	if !ok {
		return false
	}
	for _, s := range p.signedAddrs(pl) {
		if p.verifyAgent(pl, s, from, agent, true) != "" {
			continue
		}
		if _, err := tx.Ticket(s.ticket); err == nil {
			return true
		}
	}
	return false
}

// afterStore decides the notices a stored customer message may need:
// which attachments were refused, and that secrets were removed.
func (p *Pipeline) afterStore(c *Change, pl *plan) {
	if len(pl.redactions) > 0 {
		c.log(store.Event{At: pl.now, Type: rules.EventRedacted, Detail: describeRedactions(pl.redactions) + " removed before storing"})
	}
	if p.suppressReason(pl) != "" {
		return
	}
	to := []mail.Address{{Name: pl.in.From.Name, Address: pl.in.From.Address}}
	if len(pl.refused) > 0 {
		c.send(Intent{Out: mailout.Out{Kind: "refusal", To: to, Template: "attachment_refused",
			Data: map[string]any{"Refused": pl.refused}, Auto: "auto-replied", Record: true}})
		c.log(store.Event{At: pl.now, Type: rules.EventAttachmentsRefused, Detail: strings.Join(pl.refused, "; ")})
	}
	if len(pl.redactions) > 0 {
		c.send(Intent{Out: mailout.Out{Kind: "redaction", To: to, Template: "redaction_notice",
			Data: map[string]any{"Removed": describeRedactions(pl.redactions)}, Auto: "auto-replied", Record: true}})
	}
}

// commitBounce handles mail to the bounce address (VERP return path) of
// mail we sent. A delivery report about mail that went out records the
// failures on its ticket and marks the failed addresses as bouncing.
// Anything else arriving there (a vacation reply sent to the return path,
// RFC 5230; a report about mail still in the outbox) is only kept as a
// system message on that ticket. It creates no ticket, changes no status
// and sends nothing; a report delivered again adds nothing.
func (p *Pipeline) commitBounce(tx store.Tx, pl *plan, res *mailin.Result) error {
	if dup, err := p.duplicate(tx, pl, res); dup || err != nil {
		return err
	}
	ticketID, to, err := tx.SentTo(pl.verp)
	sent := err == nil
	if errors.Is(err, store.ErrNotFound) {
		if m, err2 := tx.OutboxEntry(pl.verp); err2 == nil {
			ticketID, to, err = m.TicketID, m.To, nil
		}
	}
	if err == nil {
		_, err = tx.Ticket(ticketID)
	}
	if err != nil {
		pl.note("bounce for unknown sent mail #%d: dropped", pl.verp)
		res.Action = "bounce-unknown"
		return nil
	}
	switch {
	case !pl.auto.Bounce:
		return p.apply(tx, pl.now, p.keepSystem(pl, res, ticketID, fmt.Sprintf("%s from %s to the bounce address of sent mail #%d kept; it is not a delivery report",
			pl.what(), orNone(pl.in.From.Address), pl.verp)))
	case !sent:
		return p.apply(tx, pl.now, p.keepSystem(pl, res, ticketID, fmt.Sprintf("delivery report from %s about mail #%d kept; that mail is still in the outbox, so no delivery failed",
			orNone(pl.in.From.Address), pl.verp)))
	}
	return p.recordBounce(tx, pl, res, ticketID, to)
}

// recordBounce keeps a delivery report as a system message on ticketID
// (raw copy included, also when nothing can be read from it), records
// each failed recipient as a delivery_failed event and marks the
// permanently failed ones as bouncing. to are the recipients of the
// reported mail when known (nil: unknown); only they are held.
func (p *Pipeline) recordBounce(tx store.Tx, pl *plan, res *mailin.Result, ticketID string, to []string) error {
	fails := rules.ParseDSN(pl.in.DeliveryStatus)
	if len(fails) == 0 {
		fails = rules.ParseBounceText(pl.in.Text)
	}
	if len(fails) == 0 && pl.verp != 0 && len(to) == 1 && rules.ReportUnread(pl.in.DeliveryStatus, pl.in.Text) {
		// A mangled report still names the exact message by its return
		// path; the recipient is the one it went to.
		fails = []rules.Failure{{Recipient: to[0], Diagnostic: "delivery failed (report could not be read)", Permanent: true}}
	}
	detail := fmt.Sprintf("delivery report from %s kept", orNone(pl.in.From.Address))
	if len(fails) == 0 {
		detail += "; no failed recipient could be read from it"
	}
	c := p.keepSystem(pl, res, ticketID, detail)
	hold := p.Policies.BounceHold
	if hold <= 0 {
		hold = 60 * 24 * time.Hour
	}
	res.Action = "bounce"
	mailed := func(addr string) bool {
		return slices.ContainsFunc(to, func(a string) bool { return strings.EqualFold(a, addr) })
	}
	for _, f := range fails {
		rcpt := f.Recipient
		if f.Original != "" && (to == nil || !mailed(rcpt) && mailed(f.Original)) {
			// The receiving side forwarded the address we mailed to
			// another that failed: the address we mail is the one
			// that bounces.
			rcpt, f.Recipient = fmt.Sprintf("%s (forwarded to %s)", f.Original, f.Recipient), f.Original
		}
		detail := fmt.Sprintf("delivery to %s failed: %s", rcpt, strings.TrimSpace(f.Status+" "+f.Diagnostic))
		pl.note("bounce: %s", detail)
		// Only the reported mail's own recipients are held: a report
		// naming anyone else (forged by someone who saw the return path)
		// must not stop that person's automatic mail.
		if f.Permanent && to != nil && !mailed(f.Recipient) {
			detail += "; not a recipient of the reported mail, so not held"
			f.Permanent = false
		}
		c.log(store.Event{At: pl.now, Type: rules.EventDeliveryFailed, Detail: detail})
		if f.Permanent {
			if c.Bouncing == nil {
				c.Bouncing = map[string]time.Time{}
			}
			c.Bouncing[f.Recipient] = pl.now.Add(hold)
		}
	}
	return p.apply(tx, pl.now, c)
}

// keepSystem is the change that stores the message as a "system" message
// on ticketID with an event saying why, and changes nothing else on the
// ticket.
func (p *Pipeline) keepSystem(pl *plan, res *mailin.Result, ticketID, detail string) *Change {
	res.TicketID, res.Action = ticketID, "system"
	pl.note("kept on %s: %s", ticketID, detail)
	c := &Change{ID: ticketID, Messages: []Stored{p.message(pl, "system")}}
	c.log(store.Event{At: pl.now, Type: rules.EventMessage, Detail: detail})
	return c
}

// what names the kind of mail the message was classified as.
func (pl *plan) what() string {
	switch {
	case pl.auto.Bounce:
		return "delivery report"
	case pl.auto.OutOfOffice:
		return "out-of-office reply"
	case pl.auto.Automatic:
		return "automatic mail (" + pl.auto.Reason + ")"
	}
	return "mail"
}

// bounceTicket finds the ticket a bounce that came to a routing address
// is about, through the Message-IDs of our mail it quotes (in its text or
// the header a report returns), and the
// recipients of the quoted mail when it is one we sent and recorded
// (empty, not nil, when it is not: nobody it names may be held).
func (p *Pipeline) bounceTicket(tx store.Tx, pl *plan) (string, []string, error) {
	ids := append(append([]string(nil), pl.in.InReplyTo...), pl.in.References...)
	for _, line := range strings.Split(pl.in.Text+"\n"+pl.in.ReturnedHeader, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Message-ID") {
			ids = append(ids, mailin.MsgIDs(v)...)
		}
	}
	for _, id := range ids {
		t, err := tx.TicketByMessageID(id)
		if t == "" || err != nil {
			if err != nil {
				return "", nil, err
			}
			continue
		}
		to := []string{}
		if m, ok, err := tx.MessageByID(t, id); err != nil {
			return "", nil, err
		} else if ok && m.Direction == "out" {
			to = append(append(to, m.To...), m.Cc...)
		}
		return t, to, nil
	}
	return "", nil, nil
}

// IsBounceAddress reports whether addr is a valid VERP return path of mail
// the gateway sent.
func (p *Pipeline) IsBounceAddress(addr string) bool {
	_, ok := rules.ParseVERP(p.Desk.VERPKeys, mailout.VERPPrefix, addr)
	return ok
}
