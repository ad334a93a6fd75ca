package mailout

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ticketgate/mailout/relaytest"
)

// sendAll sends mails to r, each to the recipients named in its subject
// ("a+b"), and returns what each Send gave: the refused recipients, the
// error, and whether the mail was told handed over (and to whom not).
func sendAll(t *testing.T, r *Relay, subjects ...string) []string {
	t.Helper()
	var out []string
	for _, subject := range subjects {
		var told []string
		handed := func(refused []RcptError) {
			told = append(told, fmt.Sprint(len(refused)))
		}
		refused, err := r.Send("desk@t.example", strings.Split(subject, "+"), []byte("Subject: "+subject+"\r\n\r\nHello.\r\n.dotted line\r\n"), handed)
		var names []string
		for _, re := range refused {
			names = append(names, re.Rcpt)
		}
		out = append(out, fmt.Sprintf("%s: refused %v, err %v, handed over %v", subject, names, err, told))
	}
	return out
}

// With a relay that pipelines, a mail's commands go out together; with
// one that does not, one at a time. Either way each mail reaches the
// relay once, whole (a line beginning with a dot too), to the recipients
// the relay took; a refused recipient is that mail's alone; a mail whose
// every recipient is refused is not handed over and leaves the session
// fit for the next; all of it over one session.
//
// The pipelining relay answers MAIL FROM only once DATA is in: a client
// that waited for each answer would time out there.
func TestRelayPipelinesWhenTheRelayOffersIt(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			relay := relaytest.Start(t)
			if pipelining {
				relay.AnswerWholeTransactions()
			} else {
				relay.WithoutPipelining()
			}
			gone := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			relay.FailRcpt("gone@x.example", gone)
			relay.FailRcpt("full@x.example", &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"})
			r := &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 3 * time.Second}
			defer r.Close()

			got := sendAll(t, r, "a@x.example", "gone@x.example+b@x.example", "gone@x.example+full@x.example", "c@x.example+d@x.example")
			want := []string{
				"a@x.example: refused [], err <nil>, handed over [0]",
				"gone@x.example+b@x.example: refused [gone@x.example], err <nil>, handed over [1]",
				"gone@x.example+full@x.example: refused [gone@x.example full@x.example], err <nil>, handed over []",
				"c@x.example+d@x.example: refused [], err <nil>, handed over [0]",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			var to []string
			for _, m := range relay.Mails() {
				to = append(to, strings.Join(m.To, "+"))
				if !strings.Contains(string(m.Data), "\r\n.dotted line\r\n") {
					t.Errorf("mail to %v reached the relay as %q", m.To, m.Data)
				}
			}
			if strings.Join(to, ",") != "a@x.example,b@x.example,c@x.example+d@x.example" {
				t.Errorf("relay got mails to %v; want a, b, c+d", to)
			}
			if s := relay.Sessions(); s != 1 {
				t.Errorf("%d SMTP sessions; want one for every mail", s)
			}
			if n := relay.Pipelined(); pipelining != (n > 0) {
				t.Errorf("%d transactions came pipelined from a relay client told pipelining=%v", n, pipelining)
			}
		})
	}
}

// A relay that closes the session at MAIL FROM (its limit of mails per
// connection) costs a pipelined mail nothing: nothing of it was taken, and
// it goes over a new session, once.
func TestRelayPipelinedMailAfterADroppedSessionGoesOnce(t *testing.T) {
	relay := relaytest.Start(t)
	relay.DropSessionsAfter(2)
	r := &Relay{Addr: relay.Addr, TLS: "none", Hostname: "t.example", Timeout: 3 * time.Second}
	defer r.Close()
	got := sendAll(t, r, "a@x.example", "b@x.example", "c@x.example", "d@x.example", "e@x.example")
	for _, line := range got {
		if !strings.HasSuffix(line, "refused [], err <nil>, handed over [0]") {
			t.Errorf("%s", line)
		}
	}
	if sent := timesSent(relay.Mails()); len(sent) != 5 || sent["c@x.example"] != 1 || sent["e@x.example"] != 1 {
		t.Errorf("relay got %v; want each of the 5 mails once", sent)
	}
	if s := relay.Sessions(); s != 3 {
		t.Errorf("%d SMTP sessions; want 3 (two mails each)", s)
	}
	if relay.Pipelined() == 0 {
		t.Error("no transaction came pipelined")
	}
}

// STARTTLS: a relay whose certificate the gateway is told not to verify
// gets its mails over TLS, on one session; one whose
// certificate cannot be verified, or one that does not offer STARTTLS,
// gets nothing and a TLSError.
func TestRelaySTARTTLS(t *testing.T) {
	relay := relaytest.StartTLS(t)
	r := &Relay{Addr: relay.Addr, TLS: "starttls", Insecure: true, Hostname: "t.example", Timeout: 3 * time.Second}
	defer r.Close()
	first := sendAll(t, r, "a@x.example")
	// go-smtp's server begins a session anew after STARTTLS: the relay
	// counts two for one connection.
	opened := relay.Sessions()
	for _, line := range append(first, sendAll(t, r, "b@x.example+c@x.example")...) {
		if !strings.Contains(line, "err <nil>") {
			t.Errorf("%s", line)
		}
	}
	mails := relay.Mails()
	if len(mails) != 2 || !mails[0].TLS || !mails[1].TLS {
		t.Errorf("relay got %d mails (first over TLS: %v); want 2 over TLS", len(mails), len(mails) > 0 && mails[0].TLS)
	}
	if s := relay.Sessions(); s != opened {
		t.Errorf("the second mail opened %d more SMTP sessions; want it over the first's", s-opened)
	}

	verify := &Relay{Addr: relay.Addr, TLS: "starttls", Hostname: "t.example", Timeout: 3 * time.Second}
	defer verify.Close()
	_, err := verify.Send("desk@t.example", []string{"c@x.example"}, []byte("Subject: c\r\n\r\nx\r\n"), nil)
	if !IsTLSError(err) || !strings.Contains(err.Error(), "x509") {
		t.Errorf("a certificate that cannot be verified gave %v; want a TLSError naming x509", err)
	}

	plain := relaytest.Start(t)
	noTLS := &Relay{Addr: plain.Addr, TLS: "starttls", Hostname: "t.example", Timeout: 3 * time.Second}
	defer noTLS.Close()
	_, err = noTLS.Send("desk@t.example", []string{"c@x.example"}, []byte("Subject: c\r\n\r\nx\r\n"), nil)
	var te *TLSError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("a relay without STARTTLS gave %v; want a TLSError naming STARTTLS", err)
	}
	if n := len(relay.Mails()) + len(plain.Mails()); n != 2 {
		t.Errorf("relays got %d mails; want only the 2 sent with TLS", n)
	}
}

// writeDotted writes the bytes textproto's DotWriter does for any mail,
// whatever its line endings and dots.
func FuzzWriteDotted(f *testing.F) {
	for _, s := range []string{"", ".", "\r", "\n", "a", "a\r\n", ".a\r\n.\r\n", "a\nb", "a\r\r\n", "a\r\r\r\n", "\r.\n.", "a\r", "a\r\r", "..\r\n..", "x\n\n.\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want bytes.Buffer
		dw := textproto.NewWriter(bufio.NewWriter(&want)).DotWriter()
		dw.Write(raw)
		dw.Close()
		var got writes
		bw := bufio.NewWriterSize(&got, 64) // mails longer than the buffer too
		if err := writeDotted(bw, raw); err != nil {
			t.Fatal(err)
		}
		if all := bytes.Join(got, nil); !bytes.Equal(all, want.Bytes()) {
			t.Errorf("writeDotted(%q) = %q; DotWriter wrote %q", raw, all, want.Bytes())
		}
		// The final dot goes in a write of its own, the end of the last
		// line at most before it (see endData).
		if last := got[len(got)-1]; len(last) > len("\r\n.\r\n") || !bytes.HasSuffix(last, []byte(".\r\n")) {
			t.Errorf("writeDotted(%q): last write %q, want the final dot alone", raw, last)
		}
	})
}

// writes records each Write given to it.
type writes [][]byte

func (w *writes) Write(p []byte) (int, error) {
	*w = append(*w, bytes.Clone(p))
	return len(p), nil
}

// BenchmarkWriteDotted writes a 4 KB mail of 76-character lines as the
// data of a transaction: textproto's DotWriter (go-smtp's client uses it)
// against writeDotted (the pipelined transaction).
func BenchmarkWriteDotted(b *testing.B) {
	line := strings.Repeat("word ", 15) + "\r\n"
	raw := []byte("Subject: test\r\n\r\n" + strings.Repeat(line, 4096/len(line)) + ".dot\r\n")
	w := bufio.NewWriter(io.Discard)
	b.Run("DotWriter", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			dw := textproto.NewWriter(w).DotWriter()
			dw.Write(raw)
			dw.Close()
		}
	})
	b.Run("writeDotted", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			writeDotted(w, raw)
		}
	})
}
