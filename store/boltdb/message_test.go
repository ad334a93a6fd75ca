package boltdb

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"ticketgate/rules"
	"ticketgate/store"
)

// TestPlainTextIsKeptOnceInTheRawCopy: the text of a plain mail is read
// from its raw copy (CRLF made LF) instead of being stored a second time;
// a text the raw copy does not hold verbatim (quoted-printable here) is
// stored as before; both read back exactly, and so does a message whose
// raw copy is replaced.
func TestPlainTextIsKeptOnceInTheRawCopy(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	body := "Hello,\n\nthe printer on floor 3 is jammed again.\n\nOn Monday Bob wrote:\n> did you restart it?\n"
	plain := []byte("From: a@x\r\nSubject: jam\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n"))
	qp := []byte("From: a@x\r\nSubject: jam\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello=2C\r\n\r\nthe printer=\r\n on floor 3 is jammed again.\r\n")
	qpText := "Hello,\n\nthe printer on floor 3 is jammed again.\n"
	visible := "Hello,\n\nthe printer on floor 3 is jammed again."
	msgs := []*store.Message{
		{MessageID: "plain@x", Text: body, VisibleText: visible},
		{MessageID: "qp@x", Text: qpText, VisibleText: visible},
	}
	if err := d.UpdateNow(bg, func(st store.Tx) error {
		if err := st.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusNew, Requester: "a@x"}); err != nil {
			return err
		}
		for i, raw := range [][]byte{plain, qp} {
			h, err := st.PutBlob(raw)
			if err != nil {
				return err
			}
			msgs[i].Raw = h
			if err := st.AddMessage("HS-000001", msgs[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	onDisk := func(i int) (string, messageRec) {
		v := partValue(t, d, bucketMessages, "HS-000001", uint64(i+1))
		var r messageRec
		if err := decodeMessageRec(v, &r); err != nil {
			t.Fatalf("message %d on disk: %q: %v", i, v, err)
		}
		return string(v), r
	}
	if v, r := onDisk(0); strings.Contains(v, "jammed") || r.TextInRaw == nil {
		t.Errorf("plain message on disk: %q; want its text only in the raw copy", v)
	}
	if v, r := onDisk(1); strings.Count(v, "jammed") != 1 || r.TextInRaw != nil {
		t.Errorf("quoted-printable message on disk: %q; want its text once in the record", v)
	}
	readBack := func(when string, want []store.Message) {
		t.Helper()
		d.View(bg, func(st store.Tx) error {
			tk, err := st.TicketFull("HS-000001")
			if err != nil {
				return err
			}
			for i, m := range tk.Messages {
				if m.Text != want[i].Text || m.VisibleText != want[i].VisibleText {
					t.Errorf("%s: message %d read back text %q visible %q; want %q and %q", when, i, m.Text, m.VisibleText, want[i].Text, want[i].VisibleText)
				}
			}
			return nil
		})
	}
	readBack("after adding", []store.Message{*msgs[0], *msgs[1]})

	// Redaction replaces the raw copy of the first message by one
	// without the text: the text goes back into the record.
	redacted := []byte("From: a@x\r\nSubject: jam\r\n\r\n[redacted]\r\n")
	repl := []store.Message{*msgs[0], *msgs[1]}
	repl[0].Text, repl[0].VisibleText = "Hello,\n\nthe printer on floor 3 is [x] again.\n", ""
	if err := d.UpdateNow(bg, func(st store.Tx) error {
		h, err := st.PutBlob(redacted)
		if err != nil {
			return err
		}
		repl[0].Raw = h
		if err := st.ReplaceMessages("HS-000001", repl); err != nil {
			return err
		}
		return st.(*tx).releaseBlob(h) // PutBlob's own reference
	}); err != nil {
		t.Fatal(err)
	}
	readBack("after redaction", repl)
	if v, r := onDisk(0); !strings.Contains(v, "[x] again") || r.TextInRaw != nil {
		t.Errorf("redacted message on disk: %q", v)
	}
	expectClean(t, d, "after redaction")

	// A span that points past its raw copy is damage check names.
	if err := d.db.Update(func(btx *bolt.Tx) error {
		k := key([]byte("HS-000001"), u64(2))
		_, r := onDisk(1)
		r.TextInRaw = &[2]int{10, 99999}
		return btx.Bucket(bucketMessages).Put(k, encodeMessageRec(&r))
	}); err != nil {
		t.Fatal(err)
	}
	problems, err := d.Check(bg)
	if want := "ticket HS-000001: message qp@x: text span [10 99999] outside the raw copy"; err != nil || !strings.Contains(strings.Join(problems, "\n"), want) {
		t.Errorf("check after planting a bad span: %q %v; want %q", problems, err, want)
	}
}

// FuzzSpanInRaw: whatever part of a raw mail's LF reading is looked for,
// it is found, and the span returned reads back as exactly that text
// (found written CRLF, the way mail carries it, or else in the LF
// reading).
func FuzzSpanInRaw(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nline one\r\nline two\r\n"), 14, 12)
	f.Add([]byte("a\r\r\nb\rc\n\r\n"), 1, 3)
	f.Add([]byte("\r\n\r\n"), 0, 1)
	f.Fuzz(func(t *testing.T, raw []byte, from, length int) {
		lf := lfText(raw)
		if from < 0 || length <= 0 || from > len(lf) || length > len(lf)-from {
			return
		}
		text := lf[from : from+length]
		if got := lfText(crlfText(text)); got != text {
			t.Fatalf("%q written CRLF reads back %q", text, got)
		}
		off, n, ok := spanInRaw(raw, text)
		if !ok {
			t.Fatalf("%q not found in %q", text, raw)
		}
		if got := lfText(raw[off : off+n]); got != text {
			t.Fatalf("span [%d,%d] of %q reads %q, want %q", off, n, raw, got, text)
		}
	})
}

// TestPackedRawTextsReadBack: texts kept in packed raw copies, one in a
// value and one in chunks, read back exactly, each of them, when read
// together in one transaction (the raw copies are unpacked into a buffer
// used again).
func TestPackedRawTextsReadBack(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	var texts, raws []string
	for i, lines := range []int{20, 300} {
		var b strings.Builder
		for j := range lines {
			fmt.Fprintf(&b, "message %d, line %d: the printer is jammed again, ref %x\n", i, j, sha256.Sum256([]byte{byte(i), byte(j)}))
		}
		texts = append(texts, b.String())
		raws = append(raws, "From: a@x\r\nSubject: jam\r\n\r\n"+strings.ReplaceAll(b.String(), "\n", "\r\n"))
	}
	if err := d.UpdateNow(bg, func(st store.Tx) error {
		if err := st.PutTicket(&store.Ticket{ID: "HS-000001", Status: rules.StatusNew, Requester: "a@x"}); err != nil {
			return err
		}
		for i, text := range texts {
			h, err := st.PutBlob([]byte(raws[i]))
			if err != nil {
				return err
			}
			m := &store.Message{MessageID: fmt.Sprintf("m%d@x", i), Text: text, VisibleText: text, Raw: h}
			if err := st.AddMessage("HS-000001", m); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if v := partValue(t, d, bucketMessages, "HS-000001", uint64(i+1)); strings.Contains(string(v), "jammed") {
			t.Fatalf("message %d keeps its text in its record, not in the raw copy", i)
		}
	}
	if err := d.View(bg, func(st store.Tx) error {
		tk, err := st.TicketFull("HS-000001")
		if err != nil {
			return err
		}
		if len(tk.Messages) != len(texts) {
			t.Fatalf("%d messages read back, want %d", len(tk.Messages), len(texts))
		}
		for i, m := range tk.Messages {
			r, _ := st.(*tx).blobRef(m.Raw)
			if packed, inChunks := r.at[8]&packedBlob != 0, chunked(r.at); !packed || inChunks != (i == 1) {
				t.Errorf("raw copy %d: packed %v, in chunks %v; want packed, in chunks %v", i, packed, inChunks, i == 1)
			}
			if m.Text != texts[i] || m.VisibleText != texts[i] {
				t.Errorf("message %d read back as %.60q..., want %.60q...", i, m.Text, texts[i])
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSpanInRaw: the text of a 4 KB mail with CRLF line ends found
// in its raw copy, as AddMessage does for every message it stores.
func BenchmarkSpanInRaw(b *testing.B) {
	var text strings.Builder
	for i := 0; text.Len() < 4000; i++ {
		fmt.Fprintf(&text, "line %d of a customer's question about the printer on the third floor\n", i)
	}
	raw := []byte("From: a@x\r\nTo: support@example.com\r\nSubject: printer\r\n\r\n" + strings.ReplaceAll(text.String(), "\n", "\r\n"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := spanInRaw(raw, text.String()); !ok {
			b.Fatal("not found")
		}
	}
}
