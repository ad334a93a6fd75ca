package boltdb

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"ticketgate/store"
)

// outboxRecV1 begins an outbox record in the binary form encodeOutboxRec
// writes, and messageRecV1 a message record in encodeMessageRec's. A
// record written before them is JSON, and begins with '{'.
const (
	outboxRecV1  = 1
	messageRecV1 = 1
)

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
	b = binary.AppendUvarint(b, r.ID)
	b = appendStrings(b, r.TicketID, r.Kind, r.From)
	b = appendList(b, r.To)
	b = appendStrings(b, r.RawHash)
	b = binary.AppendVarint(b, int64(r.Attempts))
	b = appendTimes(b, r.NextAt, r.Created)
	b = appendStrings(b, r.LastErr)
	b = appendList(b, r.Done)
	b = appendStrings(b, r.Carries, r.ClaimedBy)
	b = appendTimes(b, r.ClaimedUntil)
	return appendStrings(b, r.ClaimGen)
}

func appendStrings(b []byte, ss ...string) []byte {
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// appendList writes l's length, then its strings; nil and empty lists
// both read back as nil.
func appendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	return appendStrings(b, l...)
}

func appendTimes(b []byte, ts ...time.Time) []byte {
	for _, t := range ts {
		at := len(b)
		b = append(b, 0)
		b, _ = t.AppendBinary(b) // fails only for a zone offset no real zone has
		b[at] = byte(len(b) - at - 1)
	}
	return b
}

var errOutboxRec = errors.New("malformed outbox record")

// decodeOutboxRec reads an outbox record in either form: binary
// (encodeOutboxRec) or the JSON of records written before it.
func decodeOutboxRec(v []byte, r *outboxRec) error {
	if len(v) > 0 && v[0] == '{' {
		return json.Unmarshal(v, r)
	}
	if len(v) == 0 || v[0] != outboxRecV1 {
		return errOutboxRec
	}
	d := recReader{b: v[1:]}
	r.ID = d.uvarint()
	r.TicketID, r.Kind, r.From = d.str(), d.str(), d.str()
	r.To = d.list()
	r.RawHash = d.str()
	r.Attempts = int(d.varint())
	r.NextAt, r.Created = d.time(), d.time()
	r.LastErr = d.str()
	r.Done = d.list()
	r.Carries, r.ClaimedBy = d.str(), d.str()
	r.ClaimedUntil = d.time()
	r.ClaimGen = d.str()
	if d.bad || len(d.b) > 0 {
		return errOutboxRec
	}
	return nil
}

// recReader reads encodeOutboxRec's fields; past the first malformed one
// it reads zero values and sets bad.
type recReader struct {
	b   []byte
	bad bool
}

func (d *recReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes reads a length and that many bytes.
func (d *recReader) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *recReader) str() string { return string(d.bytes()) }

func (d *recReader) list() []string {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	if n > uint64(len(d.b)) { // each string takes a byte at least
		d.bad, d.b = true, nil
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (d *recReader) time() time.Time {
	if len(d.b) == 0 {
		d.bad = true
		return time.Time{}
	}
	n := int(d.b[0])
	if n >= len(d.b) {
		d.bad, d.b = true, nil
		return time.Time{}
	}
	var t time.Time
	if t.UnmarshalBinary(d.b[1:1+n]) != nil {
		d.bad = true
	}
	d.b = d.b[1+n:]
	return t
}

// appendListOrNil is appendList for a list whose nil and empty read back
// differently (a public JSON field without omitempty shows null or []):
// its length plus one, 0 for nil.
func appendListOrNil(b []byte, l []string) []byte {
	if l == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(l))+1)
	return appendStrings(b, l...)
}

// listOrNil reads appendListOrNil's list.
func (d *recReader) listOrNil() []string {
	n := d.uvarint()
	if n == 0 {
		return nil
	}
	if n-1 > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return nil
	}
	l := make([]string, n-1)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

// appendSpan writes an optional span: 0, or 1 and its two numbers.
func appendSpan(b []byte, s *[2]int) []byte {
	if s == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, int64(s[0]))
	return binary.AppendVarint(b, int64(s[1]))
}

func (d *recReader) span() *[2]int {
	switch d.uvarint() {
	case 0:
		return nil
	case 1:
		return &[2]int{int(d.varint()), int(d.varint())}
	}
	d.bad, d.b = true, nil
	return nil
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
	b = appendStrings(b, r.MessageID, r.Direction, r.Kind, r.From)
	b = appendListOrNil(b, r.To)
	b = appendList(b, r.Cc)
	b = appendStrings(b, r.Subject, r.Text)
	b = appendSpan(b, r.TextInRaw)
	b = appendStrings(b, r.Visible)
	b = appendSpan(b, r.VisibleSpan)
	b = appendTimes(b, r.CreatedAt)
	if r.Attachments == nil {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(len(r.Attachments))+1)
	}
	for _, a := range r.Attachments {
		b = appendStrings(b, a.Filename, a.ContentType)
		b = binary.AppendVarint(b, a.Size)
		b = appendStrings(b, a.SHA256, a.ContentID)
		if a.Inline {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	b = appendStrings(b, r.Raw)
	return appendList(b, r.Notes)
}

// decodeMessageRec reads a message record in either form: binary
// (encodeMessageRec) or the JSON of records written before it.
func decodeMessageRec(v []byte, r *messageRec) error {
	if len(v) > 0 && v[0] == '{' {
		return json.Unmarshal(v, r)
	}
	if len(v) == 0 || v[0] != messageRecV1 {
		return errMessageRec
	}
	d := recReader{b: v[1:]}
	r.MessageID, r.Direction, r.Kind, r.From = d.str(), d.str(), d.str(), d.str()
	r.To = d.listOrNil()
	r.Cc = d.list()
	r.Subject, r.Text = d.str(), d.str()
	r.TextInRaw = d.span()
	r.Visible = d.str()
	r.VisibleSpan = d.span()
	r.CreatedAt = d.time()
	if n := d.uvarint(); n > 0 {
		if n-1 > uint64(len(d.b)) { // each attachment takes bytes
			return errMessageRec
		}
		r.Attachments = make([]store.Attachment, n-1)
		for i := range r.Attachments {
			a := &r.Attachments[i]
			a.Filename, a.ContentType = d.str(), d.str()
			a.Size = d.varint()
			a.SHA256, a.ContentID = d.str(), d.str()
			switch d.uvarint() {
			case 0:
			case 1:
				a.Inline = true
			default:
				d.bad = true
			}
		}
	}
	r.Raw = d.str()
	r.Notes = d.list()
	if d.bad || len(d.b) > 0 {
		return errMessageRec
	}
	return nil
}

var errMessageRec = errors.New("malformed message record")
