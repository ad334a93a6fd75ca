package boltdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"ticketgate/store"
	"ticketgate/store/binrec"
)

// messageRec is a message on disk. The raw copy is a blob (Raw). The text
// is kept once: when it is a part of the raw copy with its line ends
// made LF (a plain-text mail sent without transfer encoding), the record
// holds where (TextInRaw) instead of a copy. The visible text, nearly
// always the whole text or a part of it, is kept as a span of the text.
type messageRec struct {
	MessageID   string             `json:"message_id"`
	Direction   string             `json:"direction"`
	Kind        string             `json:"kind"`
	From        string             `json:"from"`
	To          []string           `json:"to"`
	Cc          []string           `json:"cc,omitempty"`
	Subject     string             `json:"subject"`
	Text        string             `json:"text,omitempty"`
	TextInRaw   *[2]int            `json:"text_in_raw,omitempty"`  // offset and length in the raw copy (schema 8)
	Visible     string             `json:"visible_text,omitempty"` // when not a span of Text (and in schema 1)
	VisibleSpan *[2]int            `json:"visible_span,omitempty"` // offset and length in Text
	CreatedAt   time.Time          `json:"created_at"`
	Attachments []store.Attachment `json:"attachments"`
	Raw         string             `json:"raw_sha256,omitempty"`
	Notes       []string           `json:"notes,omitempty"`
}

// maxTextSearch bounds the raw copies searched for the text, so that a
// mail with large attachments costs the writer no more than a scan of
// this many bytes; its text is copied instead.
const maxTextSearch = 256 << 10

func (t *tx) encodeMessage(m *store.Message) ([]byte, error) {
	r := messageRec{MessageID: m.MessageID, Direction: m.Direction, Kind: m.Kind, From: m.From, To: m.To, Cc: m.Cc,
		Subject: m.Subject, Text: m.Text, CreatedAt: m.CreatedAt, Attachments: m.Attachments, Raw: m.Raw, Notes: m.Notes}
	if m.VisibleText != "" {
		if i := strings.Index(m.Text, m.VisibleText); i >= 0 {
			r.VisibleSpan = &[2]int{i, len(m.VisibleText)}
		} else {
			r.Visible = m.VisibleText
		}
	}
	if m.Raw != "" && m.Text != "" {
		_ = t.peekBlob(m.Raw, func(raw []byte) error { // keeps nothing of raw
			if len(raw) <= maxTextSearch {
				if off, n, ok := spanInRaw(raw, m.Text); ok {
					r.Text, r.TextInRaw = "", &[2]int{off, n}
				}
			}
			return nil
		})
	}
	return encodeMessageRec(&r), nil
}

func (t *tx) decodeMessage(v []byte) (*store.Message, error) {
	var r messageRec
	if err := decodeMessageRec(v, &r); err != nil {
		return nil, err
	}
	return t.message(&r)
}

// message is the message record r stands for, its text read from its raw
// copy when the record keeps it there.
func (t *tx) message(r *messageRec) (*store.Message, error) {
	if s := r.TextInRaw; s != nil {
		err := t.peekBlob(r.Raw, func(raw []byte) error {
			if raw == nil {
				return fmt.Errorf("message %s: its text is in raw copy %s, which is missing", r.MessageID, r.Raw)
			}
			if s[0] < 0 || s[1] < 0 || s[0]+s[1] > len(raw) {
				return fmt.Errorf("message %s: text span %v outside the raw copy", r.MessageID, *s)
			}
			r.Text = lfText(raw[s[0] : s[0]+s[1]])
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	m := &store.Message{MessageID: r.MessageID, Direction: r.Direction, Kind: r.Kind, From: r.From, To: r.To, Cc: r.Cc,
		Subject: r.Subject, Text: r.Text, VisibleText: r.Visible, CreatedAt: r.CreatedAt, Attachments: r.Attachments,
		Raw: r.Raw, Notes: r.Notes}
	if s := r.VisibleSpan; s != nil {
		if s[0] < 0 || s[1] < 0 || s[0]+s[1] > len(r.Text) {
			return nil, fmt.Errorf("message %s: visible span %v outside the text", r.MessageID, *s)
		}
		m.VisibleText = r.Text[s[0] : s[0]+s[1]]
	}
	return m, nil
}

// lfText is b with its CRLF line ends made LF.
func lfText(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b)) // one allocation: the text is never longer than b
	for {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			sb.Write(b)
			return sb.String()
		}
		sb.Write(b[:i])
		sb.WriteByte('\n')
		b = b[i+2:]
	}
}

// spanInRaw finds text in raw read with LF line ends and returns where it
// is in raw itself: lfText(raw[off:off+n]) == text.
func spanInRaw(raw []byte, text string) (off, n int, ok bool) {
	// Mail comes with CRLF line ends: looked for so, the text is found
	// without a copy of the whole raw mail read with LF.
	want := crlfText(text)
	if i := bytes.Index(raw, want); i >= 0 {
		return i, len(want), true
	}
	lf := lfText(raw)
	i := strings.Index(lf, text)
	if i < 0 {
		return 0, 0, false
	}
	// Walk raw and its LF reading together: a CRLF is one byte of the
	// reading.
	at := func(p int) int {
		r := 0
		for l := 0; l < p; l++ {
			if raw[r] == '\r' && r+1 < len(raw) && raw[r+1] == '\n' {
				r++
			}
			r++
		}
		return r
	}
	off = at(i)
	end := at(i + len(text))
	if lfText(raw[off:end]) != text {
		return 0, 0, false
	}
	return off, end - off, true
}

// crlfText is text with each LF written CRLF; lfText makes it text
// again: a CR of text's own before an LF stays, as lfText turns only the
// CRLF this adds back into LF.
func crlfText(text string) []byte {
	b := make([]byte, 0, len(text)+strings.Count(text, "\n"))
	for {
		line, rest, more := strings.Cut(text, "\n")
		b = append(b, line...)
		if !more {
			return b
		}
		b = append(b, '\r', '\n')
		text = rest
	}
}

func (t *tx) AddMessage(id string, m *store.Message) error {
	b := t.bucket(bucketMessages)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := t.encodeMessage(m)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	if err := b.Put(t.partKey(id, m.TicketCreated, seq), v); err != nil {
		return fmt.Errorf("put message: %w", err)
	}
	if err := t.queueWords(id, seq); err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	if m.MessageID != "" {
		return t.IndexMessageID(m.MessageID, id)
	}
	return nil
}

func (t *tx) AddEvent(id string, e store.Event) error {
	b := t.bucket(bucketEvents)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(t.partKey(id, e.TicketCreated, seq), encodeEvent(e))
}

// IndexMessageID points msgid at ticket id. An id that is nothing but
// angle brackets ("Message-ID: <<>") names no message, and is not
// indexed: bbolt has no empty key.
func (t *tx) IndexMessageID(msgid, id string) error {
	norm := store.NormMessageID(msgid)
	if norm == "" {
		return nil
	}
	return t.bucket(bucketIdxMsgID).Put([]byte(norm), []byte(id))
}

func (t *tx) TicketByMessageID(msgid string) (string, error) {
	if err := t.ctx.Err(); err != nil {
		return "", err
	}
	return string(t.bucket(bucketIdxMsgID).Get([]byte(store.NormMessageID(msgid)))), nil
}

func (t *tx) HasMessage(id, msgid string) (bool, error) {
	_, found, err := t.MessageByID(id, msgid)
	return found, err
}

func (t *tx) MessageByID(ticketID, msgid string) (*store.Message, bool, error) {
	want := store.NormMessageID(msgid)
	var found *store.Message
	err := t.scan(bucketMessages, ticketID, func(v []byte) error {
		if found != nil {
			return nil
		}
		// Read the id alone first: most messages are not the one.
		id, err := recordMessageID(v)
		if err != nil {
			return err
		}
		if store.NormMessageID(id) != want {
			return nil
		}
		m, err := t.decodeMessage(v)
		found = m
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("find message %s on %s: %w", msgid, ticketID, err)
	}
	return found, found != nil, nil
}

// recordMessageID is the Message-ID of message record v. encodeMessage
// writes it first, so it is read without scanning the rest of the record
// (its text is most of it); a record with another first field is decoded
// whole.
func recordMessageID(v []byte) (string, error) {
	if len(v) > 0 && v[0] == messageRecV1 {
		d := binrec.NewReader(v[1:])
		if id := d.String(); !d.Failed() {
			return id, nil
		}
		return "", binrec.ErrMalformed
	}
	// After an error Token returns nil tokens: the record is then
	// decoded whole, which reports the error.
	dec := json.NewDecoder(bytes.NewReader(v))
	open, _ := dec.Token()
	key, _ := dec.Token()
	id, _ := dec.Token()
	if s, ok := id.(string); ok && open == json.Delim('{') && key == "message_id" {
		return s, nil
	}
	var head struct {
		MessageID string `json:"message_id"`
	}
	err := json.Unmarshal(v, &head)
	return head.MessageID, err
}
