package mailin

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// ErrRateLimited is returned when a sender, domain or ticket is flooding
// the gateway; the listener answers 451 4.7.1 so the sender retries later.
var ErrRateLimited = errors.New("too much mail, try again later")

// Inbound policy limits ([limits] in the configuration).
type Policies struct {
	PerSender, PerDomain, PerTicket int // messages per hour; 0 = no limit
	MaxAttachments                  int
	MaxAttachmentBytes              int64
	MaxAttachmentsTotal             int64
	BounceHold                      time.Duration
}

// redact removes card numbers and social security numbers from the
// subject, the text and the raw copy before anything is stored.
func (p *Pipeline) redact(pl *plan) {
	in := pl.in
	var all []rules.Redaction
	var r []rules.Redaction
	in.Subject, r = rules.Redact(in.Subject)
	all = append(all, r...)
	in.Text, r = rules.Redact(in.Text)
	all = append(all, r...)
	in.HTML, _ = rules.Redact(in.HTML)
	// The raw copy holds the same secrets again; count them once.
	in.Raw, r = rules.RedactMessage(in.Raw)
	if len(all) == 0 {
		all = r
	}
	if len(all) == 0 {
		return
	}
	counts := map[string]int{}
	for _, x := range all {
		counts[x.Kind] += x.Count
	}
	for _, k := range []string{"card", "ssn"} {
		if counts[k] > 0 {
			pl.redactions = append(pl.redactions, rules.Redaction{Kind: k, Count: counts[k]})
		}
	}
	pl.note("redacted: %s", describeRedactions(pl.redactions))
}

func describeRedactions(rs []rules.Redaction) string {
	var parts []string
	for _, r := range rs {
		name := map[string]string{"card": "card number", "ssn": "social security number"}[r.Kind]
		parts = append(parts, fmt.Sprintf("%d %s(s)", r.Count, name))
	}
	return strings.Join(parts, ", ")
}

// attachmentPolicy drops attachments past the configured limits; the
// message and ticket are kept and the sender is told which and why.
func (p *Pipeline) attachmentPolicy(pl *plan) {
	lim := p.Policies
	var kept []Part
	var total int64
	files := 0
	for _, a := range pl.in.Attachments {
		size := int64(len(a.Content))
		// Inline images the HTML refers to belong to the message's text.
		referenced := a.Inline && a.ContentID != "" && strings.Contains(pl.in.HTML, "cid:"+a.ContentID)
		var why string
		switch {
		case lim.MaxAttachmentBytes > 0 && size > lim.MaxAttachmentBytes:
			why = fmt.Sprintf("it is %s, more than the %s allowed per file", humanBytes(size), humanBytes(lim.MaxAttachmentBytes))
		case !referenced && lim.MaxAttachments > 0 && files >= lim.MaxAttachments:
			why = fmt.Sprintf("only %d files are accepted per message", lim.MaxAttachments)
		case lim.MaxAttachmentsTotal > 0 && total+size > lim.MaxAttachmentsTotal:
			why = fmt.Sprintf("the files together would exceed %s per message", humanBytes(lim.MaxAttachmentsTotal))
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
	for _, r := range pl.refused {
		pl.note("attachment %s", r)
	}
	if len(kept) > 0 {
		pl.note("attachments kept: %d (%s)", len(kept), humanBytes(total))
	}
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

// checkFlood counts this message against the hourly limits of its sender,
// its sender's domain and (when known) its ticket, and refuses it with
// ErrRateLimited past any of them.
func (p *Pipeline) checkFlood(tx *store.Tx, pl *plan, ticketID string) error {
	addr := pl.in.From.Address
	if addr == "" {
		addr = strings.ToLower(pl.d.MailFrom)
	}
	_, domain, _ := strings.Cut(addr, "@")
	checks := []struct {
		key string
		max int
	}{{"in:sender:" + addr, p.Policies.PerSender}, {"in:domain:" + domain, p.Policies.PerDomain}}
	if ticketID != "" {
		checks = []struct {
			key string
			max int
		}{{"in:ticket:" + ticketID, p.Policies.PerTicket}}
	}
	for _, c := range checks {
		if c.max <= 0 || strings.HasSuffix(c.key, ":") {
			continue
		}
		lim := rules.Limit{Per: time.Hour, Max: c.max}
		times, err := tx.RateTimes(c.key)
		if err != nil {
			return err
		}
		if !rules.Allow(times, pl.now, lim) {
			return fmt.Errorf("%s: more than %d messages in an hour: %w", strings.TrimPrefix(c.key, "in:"), c.max, ErrRateLimited)
		}
		if err := tx.PutRateTimes(c.key, append(rules.Prune(times, pl.now, lim), pl.now)); err != nil {
			return err
		}
	}
	return nil
}

// afterStore sends the notices a stored customer message may need: which
// attachments were refused, and that secrets were removed.
func (p *Pipeline) afterStore(tx *store.Tx, t *store.Ticket, pl *plan) error {
	if len(pl.redactions) > 0 {
		if err := tx.AddEvent(t.ID, store.Event{At: pl.now, Type: "redacted", Detail: describeRedactions(pl.redactions) + " removed before storing"}); err != nil {
			return err
		}
	}
	if p.suppressReason(pl) != "" {
		return nil
	}
	to := []mail.Address{{Name: pl.in.From.Name, Address: pl.in.From.Address}}
	if len(pl.refused) > 0 {
		if _, err := p.Desk.Queue(tx, t, mailout.Out{Kind: "refusal", To: to, Template: "attachment_refused",
			Data: map[string]any{"Refused": pl.refused}, Auto: "auto-replied", Record: true}, pl.now); err != nil {
			return err
		}
		if err := tx.AddEvent(t.ID, store.Event{At: pl.now, Type: "attachments_refused", Detail: strings.Join(pl.refused, "; ")}); err != nil {
			return err
		}
	}
	if len(pl.redactions) > 0 {
		if _, err := p.Desk.Queue(tx, t, mailout.Out{Kind: "redaction", To: to, Template: "redaction_notice",
			Data: map[string]any{"Removed": describeRedactions(pl.redactions)}, Auto: "auto-replied", Record: true}, pl.now); err != nil {
			return err
		}
	}
	return nil
}

// commitBounce attaches a delivery report for mail we sent (recognised by
// its VERP return path) to the ticket it belongs to, marks the failed
// addresses as bouncing, and creates no ticket and sends nothing.
func (p *Pipeline) commitBounce(tx *store.Tx, pl *plan, res *Result) error {
	ticketID, to, err := tx.SentTo(pl.verp)
	if errors.Is(err, store.ErrNotFound) {
		if m, err2 := tx.OutboxEntry(pl.verp); err2 == nil {
			ticketID, to, err = m.TicketID, m.To, nil
		}
	}
	if err != nil {
		pl.note("bounce for unknown sent mail #%d: dropped", pl.verp)
		res.Action = "bounce-unknown"
		return nil
	}
	return p.recordBounce(tx, pl, res, ticketID, to)
}

func (p *Pipeline) recordBounce(tx *store.Tx, pl *plan, res *Result, ticketID string, to []string) error {
	fails := rules.ParseDSN(pl.in.DeliveryStatus)
	if len(fails) == 0 {
		fails = rules.ParseBounceText(pl.in.Text)
	}
	if len(fails) == 0 && len(to) == 1 {
		// A mangled report still names the exact message by its return
		// path; the recipient is the one it went to.
		fails = []rules.Failure{{Recipient: to[0], Diagnostic: "delivery failed (report could not be read)", Permanent: true}}
	}
	hold := p.Policies.BounceHold
	if hold <= 0 {
		hold = 60 * 24 * time.Hour
	}
	res.TicketID, res.Action = ticketID, "bounce"
	for _, f := range fails {
		detail := fmt.Sprintf("delivery to %s failed: %s", f.Recipient, strings.TrimSpace(f.Status+" "+f.Diagnostic))
		pl.note("bounce: %s", detail)
		if err := tx.AddEvent(ticketID, store.Event{At: pl.now, Type: "delivery_failed", Detail: detail}); err != nil {
			return err
		}
		if f.Permanent {
			if err := tx.MarkBouncing(f.Recipient, pl.now.Add(hold)); err != nil {
				return err
			}
		}
	}
	return nil
}

// bounceTicket finds the ticket a bounce that came to a routing address
// is about, through the Message-IDs of our mail it quotes.
func (p *Pipeline) bounceTicket(tx *store.Tx, pl *plan) string {
	ids := append(append([]string(nil), pl.in.InReplyTo...), pl.in.References...)
	for _, line := range strings.Split(pl.in.Text, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Message-ID") {
			ids = append(ids, msgIDs(v)...)
		}
	}
	for _, id := range ids {
		if t := tx.TicketByMessageID(id); t != "" {
			return t
		}
	}
	return ""
}

// IsBounceAddress reports whether addr is a valid VERP return path of mail
// the gateway sent.
func (p *Pipeline) IsBounceAddress(addr string) bool {
	_, ok := rules.ParseVERP(p.Desk.VERPKeys, mailout.VERPPrefix, addr)
	return ok
}
