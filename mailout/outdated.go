package mailout

import (
	"bytes"
	"errors"
	"log/slog"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// outdated says why m, about to be sent, tells what is no longer so of
// its ticket (rules.Outdated): a reminder or notice queued while the
// relay was down, the ticket changed since; or is an SLA alert of a
// target met since (rules.OutdatedAlert). It is "" when m may
// go, and when its ticket is gone or does not decode (m goes as queued).
// raw is the mail: one without Auto-Submitted a person wrote.
func outdated(r store.Reader, m *store.OutMail, raw []byte) (string, error) {
	var alert rules.Alert
	switch {
	case m.TicketID == "":
		return "", nil
	case m.Kind == "alert":
		var ok bool
		if alert, ok = alertOf(m.TicketID, raw); !ok {
			return "", nil
		}
	case !rules.OutdatedKind(m.Kind):
		return "", nil
	}
	t, err := r.Ticket(m.TicketID)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrBadRecord) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s := rules.StatusState{Status: t.Status, Clock: t.Clock, SLA: t.SLA}
	if t.ClosedAt != nil {
		s.ClosedAt = *t.ClosedAt
	}
	if m.Kind == "alert" {
		return rules.OutdatedAlert(alert, s, t.MergedInto), nil
	}
	return rules.Outdated(m.Kind, m.Created, automatic(raw), s, t.MergedInto), nil
}

// alertOf returns the SLA alert raw, an alert mail about ticket id, is
// (its subject: "[id] " and the alert's title), or false.
func alertOf(id string, raw []byte) (rules.Alert, bool) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return rules.Alert{}, false
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return rules.Alert{}, false
	}
	title, ok := strings.CutPrefix(subject, "["+id+"] ")
	if !ok {
		return rules.Alert{}, false
	}
	return rules.ParseAlertTitle(title)
}

// bouncing returns the recipients of rcpts that m, about to be sent, may
// not go to: automatic mail to customers (rules.BounceHeldKind; raw
// says it is automatic) does not go to an address held for its bounces
// at now, whether the bounce came back before m was queued (Mailer.Queue
// holds it then) or while m waited.
func bouncing(r store.Reader, m *store.OutMail, raw []byte, rcpts []string, now time.Time) ([]string, error) {
	if !rules.BounceHeldKind(m.Kind) {
		return nil, nil
	}
	var held []string
	for _, a := range rcpts {
		b, err := r.Bouncing(strings.ToLower(a), now)
		if err != nil {
			return nil, err
		}
		if b {
			held = append(held, a)
		}
	}
	// The header is read only when an address is held: almost every mail
	// goes to none, and each auto-reply passes here.
	if len(held) == 0 || !automatic(raw) {
		return nil, nil
	}
	return held, nil
}

// hold records that m does not go to held, addresses whose mail bounced
// since it was queued, with a mail_suppressed event as Mailer.Queue
// leaves: m leaves the outbox, or is due at once for its other
// recipients.
func (w *Worker) hold(log *slog.Logger, m *store.OutMail, held []string) bool {
	why := make([]string, len(held))
	for i, a := range held {
		why[i] = strings.ToLower(a) + " is bouncing"
	}
	reason := errors.New(strings.Join(why, "; "))
	log.Warn("mail not sent", "err", reason)
	m.Done = append(slices.Clone(m.Done), held...)
	left := len(m.Pending()) > 0
	if left {
		m.NextAt = w.now()
	}
	w.record(log, m.ID, func(tx store.Tx) error {
		err := tx.Dequeue(m.ID)
		if left {
			err = tx.Enqueue(m)
		}
		if err != nil {
			return err
		}
		return w.event(tx, m, rules.EventMailSuppressed, SuppressedDetail(m, held, reason))
	}, nil)
	return !left
}

// automatic reports whether raw's header says it is automatic mail
// (Auto-Submitted other than "no").
func automatic(raw []byte) bool {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return false
	}
	v := strings.ToLower(strings.TrimSpace(msg.Header.Get("Auto-Submitted")))
	return v != "" && v != "no"
}
