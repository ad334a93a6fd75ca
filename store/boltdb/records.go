package boltdb

import (
	"encoding/json"
	"fmt"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/binrec"
)

// outboxRecV1 begins an outbox record in the binary form encodeOutboxRec
// writes, and messageRecV1 a message record in encodeMessageRec's. A
// record written before them is JSON, and begins with '{'.
const (
	outboxRecV1  = 1
	messageRecV1 = 1
)

// readRecord starts reading v, a record in the binary form that begins
// with the byte version, or in the JSON an earlier release wrote, which
// begins with jsonStart ('{' for an object, '[' for an array). It
// returns a Reader over the binary form's fields, or nil when v was JSON
// and has been decoded into old (err is then json's).
func readRecord(v []byte, version, jsonStart byte, old any) (d *binrec.Reader, err error) {
	if len(v) > 0 && v[0] == jsonStart {
		return nil, json.Unmarshal(v, old)
	}
	if len(v) == 0 || v[0] != version {
		return nil, binrec.ErrMalformed
	}
	return binrec.NewReader(v[1:]), nil
}

// encodeOutboxRec is r as the outbox bucket keeps it: a version byte, then
// the fields in their declared order, numbers as varints, strings and
// lists length-prefixed, times in time.Time's binary form (zone offset
// kept) after their length. Every entry is read and written several
// times on its way out (queued, claimed, sent, dequeued), and JSON was a
// measurable part of the gateway's CPU.
func encodeOutboxRec(r *outboxRec) []byte {
	n := 64 + len(r.TicketID) + len(r.Kind) + len(r.From) + len(r.RawHash) + len(r.LastErr) + len(r.Carries) + len(r.ClaimedBy) + len(r.ClaimGen)
	for _, l := range [][]string{r.To, r.Done} {
		for _, s := range l {
			n += len(s) + 2
		}
	}
	b := make([]byte, 0, n)
	b = append(b, outboxRecV1)
	b = binrec.AppendUvarint(b, r.ID)
	b = binrec.AppendStrings(b, r.TicketID, r.Kind, r.From)
	b = binrec.AppendList(b, r.To)
	b = binrec.AppendStrings(b, r.RawHash)
	b = binrec.AppendVarint(b, int64(r.Attempts))
	b = binrec.AppendTimes(b, r.NextAt, r.Created)
	b = binrec.AppendStrings(b, r.LastErr)
	b = binrec.AppendList(b, r.Done)
	b = binrec.AppendStrings(b, r.Carries, r.ClaimedBy)
	b = binrec.AppendTimes(b, r.ClaimedUntil)
	return binrec.AppendStrings(b, r.ClaimGen)
}

// decodeOutboxRec reads an outbox record in either form: binary
// (encodeOutboxRec) or the JSON of records written before it.
func decodeOutboxRec(v []byte, r *outboxRec) error {
	d, err := readRecord(v, outboxRecV1, '{', r)
	if d == nil {
		return err
	}
	r.ID = d.Uvarint()
	r.TicketID, r.Kind, r.From = d.String(), d.String(), d.String()
	r.To = d.List()
	r.RawHash = d.String()
	r.Attempts = int(d.Varint())
	r.NextAt, r.Created = d.Time(), d.Time()
	r.LastErr = d.String()
	r.Done = d.List()
	r.Carries, r.ClaimedBy = d.String(), d.String()
	r.ClaimedUntil = d.Time()
	r.ClaimGen = d.String()
	return d.Err()
}

// encodeMessageRec is r as the messages bucket keeps it: the version
// byte, then its fields in their declared order as encodeOutboxRec writes
// them (the Message-ID first, so recordMessageID reads it alone), a
// span as a flag and two varints, each attachment's fields in turn.
func encodeMessageRec(r *messageRec) []byte {
	n := 64 + len(r.MessageID) + len(r.Direction) + len(r.Kind) + len(r.From) + len(r.Subject) + len(r.Text) + len(r.Visible) + len(r.Raw)
	for _, l := range [][]string{r.To, r.Cc, r.Notes} {
		for _, s := range l {
			n += len(s) + 2
		}
	}
	for _, a := range r.Attachments {
		n += 16 + len(a.Filename) + len(a.ContentType) + len(a.SHA256) + len(a.ContentID)
	}
	b := make([]byte, 0, n)
	b = append(b, messageRecV1)
	b = binrec.AppendStrings(b, r.MessageID, r.Direction, r.Kind, r.From)
	b = binrec.AppendListOrNil(b, r.To)
	b = binrec.AppendList(b, r.Cc)
	b = binrec.AppendStrings(b, r.Subject, r.Text)
	b = binrec.AppendSpan(b, r.TextInRaw)
	b = binrec.AppendStrings(b, r.Visible)
	b = binrec.AppendSpan(b, r.VisibleSpan)
	b = binrec.AppendTimes(b, r.CreatedAt)
	b = binrec.AppendLen(b, len(r.Attachments), r.Attachments == nil)
	for _, a := range r.Attachments {
		b = binrec.AppendStrings(b, a.Filename, a.ContentType)
		b = binrec.AppendVarint(b, a.Size)
		b = binrec.AppendStrings(b, a.SHA256, a.ContentID)
		b = binrec.AppendBool(b, a.Inline)
	}
	b = binrec.AppendStrings(b, r.Raw)
	return binrec.AppendList(b, r.Notes)
}

// decodeMessageRec reads a message record in either form: binary
// (encodeMessageRec) or the JSON of records written before it.
func decodeMessageRec(v []byte, r *messageRec) error {
	d, err := readRecord(v, messageRecV1, '{', r)
	if d == nil {
		return err
	}
	r.MessageID, r.Direction, r.Kind, r.From = d.String(), d.String(), d.String(), d.String()
	r.To = d.ListOrNil()
	r.Cc = d.List()
	r.Subject, r.Text = d.String(), d.String()
	r.TextInRaw = d.Span()
	r.Visible = d.String()
	r.VisibleSpan = d.Span()
	r.CreatedAt = d.Time()
	if n := d.Len(); n >= 0 {
		r.Attachments = make([]store.Attachment, n)
		for i := range r.Attachments {
			a := &r.Attachments[i]
			a.Filename, a.ContentType = d.String(), d.String()
			a.Size = d.Varint()
			a.SHA256, a.ContentID = d.String(), d.String()
			a.Inline = d.Bool()
		}
	}
	r.Raw = d.String()
	r.Notes = d.List()
	return d.Err()
}

// rateV1 begins a rate counter in encodeRate's binary form, eventV1 an
// event in encodeEvent's and sentV1 a sent record in encodeSent's. Those
// written before them are JSON: an array ('[') and two objects ('{').
const (
	rateV1  = 1
	eventV1 = 1
	sentV1  = 1
)

// encodeRate is a rate counter's times as the rate bucket keeps them: the
// version byte, their count, then each time as binrec writes it. A
// counter is read and written again by every message from its sender or
// domain.
func encodeRate(ts []time.Time) []byte {
	b := make([]byte, 0, 2+16*len(ts))
	b = append(b, rateV1)
	b = binrec.AppendLen(b, len(ts), false)
	return binrec.AppendTimes(b, ts...)
}

// decodeRate reads the times of the rate counter under key, in either
// form.
func decodeRate(key string, v []byte) ([]time.Time, error) {
	var ts []time.Time
	d, err := readRecord(v, rateV1, '[', &ts)
	if d != nil {
		if n := d.Len(); n > 0 {
			ts = make([]time.Time, n)
			for i := range ts {
				ts[i] = d.Time()
			}
		}
		err = d.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("decode rate %q: %w", key, err)
	}
	return ts, nil
}

// encodeEvent is e as the events bucket keeps it: the version byte, its
// time, then its type, detail and actor.
func encodeEvent(e store.Event) []byte {
	b := make([]byte, 0, 24+len(e.Type)+len(e.Detail)+len(e.Actor))
	b = append(b, eventV1)
	b = binrec.AppendTimes(b, e.At)
	return binrec.AppendStrings(b, string(e.Type), e.Detail, e.Actor)
}

// decodeEvent reads an event in either form.
func decodeEvent(v []byte, e *store.Event) error {
	d, err := readRecord(v, eventV1, '{', e)
	if d == nil {
		return err
	}
	e.At = d.Time()
	e.Type = rules.EventType(d.String())
	e.Detail, e.Actor = d.String(), d.String()
	return d.Err()
}

// encodeSent is r as meta's "sent" records keep it: the version byte,
// then its fields in their declared order.
func encodeSent(r sentRec) []byte {
	n := 24 + len(r.TicketID) + len(r.Kind)
	for _, s := range r.To {
		n += len(s) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, sentV1)
	b = binrec.AppendStrings(b, r.TicketID)
	b = binrec.AppendListOrNil(b, r.To)
	b = binrec.AppendStrings(b, r.Kind)
	return binrec.AppendTimes(b, r.At)
}

// decodeSent reads a sent record in either form.
func decodeSent(v []byte, r *sentRec) error {
	d, err := readRecord(v, sentV1, '{', r)
	if d == nil {
		return err
	}
	r.TicketID = d.String()
	r.To = d.ListOrNil()
	r.Kind = d.String()
	r.At = d.Time()
	return d.Err()
}
