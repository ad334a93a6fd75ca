package desk

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"ticketgate/rules"
	"ticketgate/store"
)

// corpusDir holds real mail from other projects' test suites; it lives
// beside the checkout and is not part of it.
var corpusDir = filepath.Join("..", "..", "shared", "corpus")

const corpusSender = "corpus@sender.example"

func corpusFiles(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("no mail corpus at %s", corpusDir)
	}
	var files []string
	for _, pat := range []string{"enmime/mail/*", "enmime/low-quality/*", "enmime/parts/*", "zammad/*.box", "talon/standard_replies/*.eml"} {
		m, err := filepath.Glob(filepath.Join(corpusDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("mail corpus is empty")
	}
	return files
}

// readCorpus returns a corpus file as a message: an mbox "From " line is
// dropped, as a mail server would never pass it on.
func readCorpus(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".box") && bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	return raw
}

// onTheWire is raw as SMTP DATA carries it: CRLF line ends, ending in one.
func onTheWire(raw []byte) []byte {
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	s = strings.ReplaceAll(s, "\n", "\r\n")
	if !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return []byte(s)
}

// deliverCorpus sends one corpus message over SMTP to a fresh gateway and
// returns its only ticket and the raw message the store kept.
func deliverCorpus(t *testing.T, path string) (*store.Ticket, []byte) {
	t.Helper()
	raw := readCorpus(t, path)
	g := startGateway(t)
	if err := g.send(corpusSender, []string{"support@example.com"}, raw); err != nil {
		t.Fatalf("not accepted: %v", err)
	}
	tk := g.onlyTicket()
	var kept []byte
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		kept, err = tx.Blob(tk.Messages[0].Raw)
		return err
	}); err != nil {
		t.Fatalf("raw message: %v", err)
	}
	return tk, kept
}

// TestCorpusEveryMessageBecomesATicket: every real message is accepted
// over SMTP and yields one ticket with a requester (or, when its From names
// nobody for sure, a security event saying so), valid UTF-8 text, and the
// raw message kept
// byte for byte.
func TestCorpusEveryMessageBecomesATicket(t *testing.T) {
	for _, path := range corpusFiles(t) {
		rel, _ := filepath.Rel(corpusDir, path)
		t.Run(rel, func(t *testing.T) {
			tk, kept := deliverCorpus(t, path)
			m := tk.Messages[0]
			if m.Direction != "in" {
				t.Fatalf("first message is %s", m.Direction)
			}
			notes := strings.Join(m.Notes, "; ")
			if m.From == "" && !strings.Contains(notes, "From") && !strings.Contains(notes, "header") {
				t.Errorf("no sender read and no note saying why; notes %q", notes)
			}
			// A From that names nobody for sure (several mailboxes without a
			// Sender, two angle-addrs, junk) gives an unknown sender: the
			// ticket then says so in a security event instead of guessing.
			if tk.Requester == "" && !hasEvent(tk, "security", "sender unknown") {
				t.Error("ticket has no requester and no security event saying why")
			}
			if !utf8.ValidString(m.Text) || !utf8.ValidString(m.Subject) || !utf8.ValidString(tk.RequesterName) {
				t.Errorf("invalid UTF-8: subject %q text %q", m.Subject, m.Text)
			}
			// The redaction policy applies to the raw copy too; elsewhere it
			// leaves the bytes alone.
			want, _ := rules.RedactMessage(onTheWire(readCorpus(t, path)))
			if !bytes.Equal(kept, want) {
				t.Errorf("raw kept (%d bytes) differs from the message sent (%d bytes)", len(kept), len(want))
			}
		})
	}
}

// TestCorpusReadsAsAPersonWould: for hand-picked messages the ticket shows
// the sender, subject and words a person reading the mail would see.
func TestCorpusReadsAsAPersonWould(t *testing.T) {
	corpusFiles(t)
	cases := []struct{ file, requester, subject, text string }{
		{"zammad/mail001.box", "john.smith@example.com", "CI Daten für PublicView", "wie besprochen hier noch die Daten für die Intranetseite"},
		{"zammad/mail003.box", "k.guenther@example.com", "Ticket Templates", "Beta-Test für die Ticket Templates"},
		{"zammad/mail017.box", "ghgbwum@185.com.cn", "【专业为您注册香港及海外公司（好处多多）】 人物 互联网事…", "宝马4系敞篷版曝光"},
		{"zammad/mail031.box", "zhengkang@ha.chinamobile.com", "內應力產生与注塑工艺条件之间的关系；", "最佳注塑工艺参數設定方法"},
		{"zammad/mail033-undelivered-mail-returned-to-sender-notification.box", "mailer-daemon@mx1.zammad.com", "Undelivered Mail Returned to Sender", "could not\nbe delivered to one or more recipients"},
		{"zammad/mail046.box", "glopelf7121@example.com", "转发：整体提升企业服务水平", "Software zur Erkennung von \"Spam\""},
		{"zammad/mail068.box", "xxxxx@xxxxx.cz", "Contact from Server", "Odeslano dne: Čtvrtek 2. srpna 2018"},
		{"zammad/mail072.box", "me@example.com", "Réclamation commande n° 018255977840", "Je vous contacte suite à ma commande du 14 août 2018"},
		{"zammad/mail087.box", "test@example.com", "Failed Mail", "Sie haben soeben ein neues Fax von +491234"},
		{"zammad/mail091.box", "mail@domain.jp", "メルマガ解除", "このアドレスへのメルマガを解除してください。"},
		{"zammad/mail093.box", "bar@example.org", "ツール", "先着100施設限定"},
		{"enmime/low-quality/bad-header-start.raw", "james@makita.skynet", "plain text", "A text section"},
		{"enmime/mail/qp-utf8-header-no-break.raw", "jamehi03@jamehi03lx.noa.com", "MIME UTF8 Test ¢ More Text", "Lorem ipsum dolor sit amet, consectetur adipiscing elit. Nullam venenatis"},
		{"enmime/mail/erroneous.raw", corpusSender, "", "Not an RFC-822 Document"},
		{"enmime/parts/chardet-success-big-5.raw", corpusSender, "", "顏是家訓"},
		{"enmime/mail/html-only-inline.raw", "james@makita.skynet", "MIME test 1", "Test of HTML section"},
		{"talon/standard_replies/outlook.eml", "me@example.com", "Test", "Hello"},
		{"talon/standard_replies/android.eml", "bob@example.com", "Re: Test", "пользователь"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			tk, _ := deliverCorpus(t, filepath.Join(corpusDir, filepath.FromSlash(c.file)))
			m := tk.Messages[0]
			subjectOK := m.Subject == c.subject
			if p, ok := strings.CutSuffix(c.subject, "…"); ok {
				subjectOK = strings.HasPrefix(m.Subject, p) // a long spam subject, white space runs collapsed
			}
			if tk.Requester != c.requester || !subjectOK || !strings.Contains(m.Text, c.text) {
				t.Errorf("requester %q subject %q text %q notes %q\nwant %q, %q, text with %q", tk.Requester, m.Subject, m.Text, m.Notes, c.requester, c.subject, c.text)
			}
		})
	}
}
