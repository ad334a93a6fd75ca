package desk

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/mail"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/store"
)

// Explanation is what the gateway would do with a message, and why.
type Explanation struct {
	Steps  []string      `json:"steps"`
	Result mailin.Result `json:"result"`
	Mails  []PlannedMail `json:"mails"`
	Error  string        `json:"error,omitempty"`
}

// PlannedMail is one mail the gateway would send, composed as the
// outbox would send it: Text is its text as its reader sees it.
type PlannedMail struct {
	Kind    string   `json:"kind"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
}

// Explain runs the whole pipeline for d in a transaction that is rolled
// back: nothing is stored and nothing is sent, but every decision is the
// one a real delivery would make now.
func (p *Pipeline) Explain(ctx context.Context, d *mailin.Delivery) (*Explanation, error) {
	ex := &Explanation{Mails: []PlannedMail{}}
	pl, err := p.prepare(d)
	if err != nil {
		ex.Steps = append(ex.Steps, "refused: "+err.Error())
		ex.Error = err.Error()
		return ex, nil
	}
	pl.numbers = p.numbers.copy()
	if err := p.Store.View(ctx, func(tx store.Tx) error { return p.admit(tx, pl) }); err != nil {
		ex.Steps = append(pl.trace, "refused: "+err.Error())
		ex.Error = err.Error()
		return ex, nil
	}
	p.draft(pl)
	commit := p.commit
	if pl.verp != 0 {
		commit = p.commitBounce
	}
	err = p.Store.DryRun(ctx, func(tx store.Tx) error {
		pl.trace = append([]string(nil), pl.trace...)
		before, err := tx.NextOutboxID()
		if err != nil {
			return err
		}
		ex.Result = mailin.Result{MessageID: pl.in.MessageID}
		if err := commit(tx, pl, &ex.Result); err != nil {
			return err
		}
		queued, err := tx.Outbox(store.Forever, 0)
		if err != nil {
			return err
		}
		for _, m := range queued {
			if m.ID > before {
				raw, err := mailout.OutboxMail(tx, m)
				if err != nil {
					return err
				}
				ex.Mails = append(ex.Mails, PlannedMail{Kind: m.Kind, To: m.To, Subject: subjectOf(raw), Text: p.textOf(raw)})
			}
		}
		return nil
	})
	ex.Steps = pl.trace
	if err != nil {
		ex.Steps = append(ex.Steps, "refused: "+err.Error())
		ex.Error = err.Error()
		return ex, nil
	}
	switch {
	case ex.Result.Duplicate:
		ex.Steps = append(ex.Steps, fmt.Sprintf("result: duplicate of a message already on %s; nothing changes", ex.Result.TicketID))
	case ex.Result.NewTicket:
		ex.Steps = append(ex.Steps, "result: a new ticket would be opened")
	case ex.Result.TicketID != "":
		ex.Steps = append(ex.Steps, "result: added to "+ex.Result.TicketID)
	}
	if len(ex.Mails) == 0 {
		ex.Steps = append(ex.Steps, "mail: nothing would be sent")
	}
	for _, m := range ex.Mails {
		ex.Steps = append(ex.Steps, fmt.Sprintf("mail: %s to %v: %q", m.Kind, m.To, m.Subject))
	}
	return ex, nil
}

func subjectOf(raw []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return m.Header.Get("Subject")
	}
	return s
}

// textOf is the text of a composed mail as its reader sees it.
func (p *Pipeline) textOf(raw []byte) string {
	in, err := mailin.Parse(raw, p.Limits)
	if err != nil {
		return ""
	}
	return in.Text
}
