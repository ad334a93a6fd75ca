package desk

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"

	"ticketgate/rules"
)

// TestAgentReplyOfOnlyAFileReachesTheCustomer: an agent answering with
// the file the customer asked for and no words of their own (the
// notification quoted below, as mail clients do) sends the customer the
// file; it is not kept back as an internal note.
func TestAgentReplyOfOnlyAFileReachesTheCustomer(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Invoice copy", "Please send me the invoice again.")
	to := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	quoted := "On Sat, 21 Nov 2026 at 10:00, Alice Doe via Example Support wrote:\r\n> " + replyMarker +
		"\r\n>\r\n> Please send me the invoice again.\r\n> " + endMarker + "\r\n"
	raw := "From: Ana Lima <ana@example.com>\r\nTo: " + to + "\r\nSubject: Re: [" + tk.ID + "] Invoice copy\r\n" +
		"Message-ID: <only-file@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + quoted +
		"--b\r\nContent-Type: application/pdf; name=invoice-4711.pdf\r\nContent-Disposition: attachment; filename=invoice-4711.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 invoice 4711")) + "\r\n--b--\r\n"
	before := len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{to}, []byte(raw))
	g.settle()

	got := agMailsTo(g, before, "alice@customer.example")
	if len(got) != 1 {
		t.Fatalf("the customer got %d mails, want the agent's reply with the invoice", len(got))
	}
	mr, err := mail.CreateReader(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := h.Filename()
			files = append(files, name)
		}
	}
	if strings.Join(files, ",") != "invoice-4711.pdf" {
		t.Errorf("files in the customer's mail: %v, want invoice-4711.pdf", files)
	}
	if now := g.ticket(tk.ID); now.Assignee != "ana@example.com" {
		t.Errorf("assignee %q after ana's reply, want ana@example.com", now.Assignee)
	}
}

// TestAgentCommandsFromOutlookInRichTextStayANote: Outlook writing rich
// text packs the mail's formatting in a winmail.dat (application/ms-tnef)
// beside the text. An agent's mail of only commands from it changes the
// ticket and mails the customer nothing, as any mail of only commands.
func TestAgentCommandsFromOutlookInRichTextStayANote(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	to := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	quoted := "From: Alice Doe via Example Support <support@example.com>\r\nSent: Saturday, November 21, 2026 10:00 AM\r\n" +
		"To: Ana Lima <ana@example.com>\r\nSubject: [" + tk.ID + "] Printer on fire\r\n\r\n" + replyMarker +
		"\r\n\r\nIt is really on fire.\r\n" + endMarker + "\r\n"
	raw := "From: Ana Lima <ana@example.com>\r\nTo: " + to + "\r\nSubject: RE: [" + tk.ID + "] Printer on fire\r\n" +
		"Message-ID: <rtf@example.com>\r\nX-Mailer: Microsoft Outlook 16.0\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n#priority high\r\n\r\n" + quoted +
		"--b\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Disposition: attachment; filename=\"winmail.dat\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("\x78\x9f\x3e\x22\x01\x00rich text")) + "\r\n--b--\r\n"
	before := len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{to}, []byte(raw))
	g.settle()

	if got := agMailsTo(g, before, "alice@customer.example"); len(got) != 0 {
		t.Errorf("the customer got %d mails for a mail of only commands:\n%s", len(got), agBody(t, got[0].Data))
	}
	now := g.ticket(tk.ID)
	if now.Priority != rules.PriorityHigh {
		t.Errorf("priority %s, want high", now.Priority)
	}
	if last := now.Messages[len(now.Messages)-1]; last.Kind != "note" {
		t.Errorf("the agent's mail is kept as %q, want a note", last.Kind)
	}
}

// TestAgentReplyFromOutlookInRichTextSendsNoWinmailDat: an agent's
// reply with words, written in Outlook's rich text, reaches the customer
// as the words and the file the agent attached; the winmail.dat that
// packs the formatting (application/ms-tnef), which no other mail
// program opens, went along as an attachment.
func TestAgentReplyFromOutlookInRichTextSendsNoWinmailDat(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Invoice copy", "Please send me the invoice again.")
	to := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	raw := "From: Ana Lima <ana@example.com>\r\nTo: " + to + "\r\nSubject: RE: [" + tk.ID + "] Invoice copy\r\n" +
		"Message-ID: <rtf-words@example.com>\r\nX-Mailer: Microsoft Outlook 16.0\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHere is the invoice.\r\n" +
		"--b\r\nContent-Type: application/pdf; name=invoice-4711.pdf\r\nContent-Disposition: attachment; filename=invoice-4711.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 invoice 4711")) + "\r\n" +
		"--b\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Disposition: attachment; filename=\"winmail.dat\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("\x78\x9f\x3e\x22\x01\x00rich text")) + "\r\n--b--\r\n"
	before := len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{to}, []byte(raw))
	g.settle()

	got := agMailsTo(g, before, "alice@customer.example")
	if len(got) != 1 {
		t.Fatalf("the customer got %d mails, want the agent's reply", len(got))
	}
	mr, err := mail.CreateReader(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := h.Filename()
			files = append(files, name)
		}
	}
	if strings.Join(files, ",") != "invoice-4711.pdf" {
		t.Errorf("files in the customer's mail: %v, want invoice-4711.pdf", files)
	}
	if body := agBody(t, got[0].Data); !strings.Contains(body, "Here is the invoice.") {
		t.Errorf("the reply lost its words:\n%s", body)
	}
}

// TestAgentReplyWithMoreFilesThanACustomerMaySendsThemAll: the
// attachment limits are the customer's ([limits]: all its customer mail
// together). An agent answering with six invoices and one file past the
// per-file size sends the customer all seven; the sixth and the large
// one were dropped from the reply, and nobody was told.
func TestAgentReplyWithMoreFilesThanACustomerMaySendsThemAll(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Policies.MaxAttachments = 5
	g.pipeline.Policies.MaxAttachmentBytes = 1000
	g.pipeline.Policies.MaxAttachmentsTotal = 5000
	tk := agOpen(t, g, "Invoice copies", "Please send me this year's invoices and the manual.")
	to := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	raw := "From: Ana Lima <ana@example.com>\r\nTo: " + to + "\r\nSubject: Re: [" + tk.ID + "] Invoice copies\r\n" +
		"Message-ID: <six-invoices@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHere are your six invoices and the manual.\r\n"
	var want []string
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("invoice-%d.pdf", i)
		want = append(want, name)
		raw += "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=" + name + "\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 "+name)) + "\r\n"
	}
	want = append(want, "manual.pdf")
	raw += "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=manual.pdf\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + b64("%PDF-1.4 "+strings.Repeat("manual ", 400)) + "--b--\r\n"
	before := len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{to}, []byte(raw))
	g.settle()

	got := agMailsTo(g, before, "alice@customer.example")
	if len(got) != 1 {
		t.Fatalf("the customer got %d mails, want the agent's reply with the files", len(got))
	}
	mr, err := mail.CreateReader(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := h.Filename()
			files = append(files, name)
		}
	}
	if !slices.Equal(files, want) {
		t.Errorf("files in the customer's mail: %v, want %v", files, want)
	}
	now := g.ticket(tk.ID)
	if last := now.Messages[len(now.Messages)-1]; len(last.Attachments) != len(want) || len(last.Notes) > 0 {
		t.Errorf("the agent's reply is kept with %d files and notes %q, want %d files and no notes", len(last.Attachments), last.Notes, len(want))
	}
	if ev := agEvents(now, "attachments_refused"); len(ev) > 0 {
		t.Errorf("the agent's files were refused: %s", ev[0].Detail)
	}
}

// mailFiles lists the names of the files attached to a relayed mail.
func mailFiles(t *testing.T, raw []byte) []string {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			name, _ := h.Filename()
			files = append(files, name)
		}
	}
	return files
}

// TestAgentNoteWithAFileReachesTheOtherAgentsWithIt: an internal note
// with a file (the vendor's log, "see attached") and a reply held as a
// note because another agent owns the ticket (the invoice the customer
// asked for) reach the ticket's other agents with the file; the note
// mail carried the words alone, and agents, who see tickets only by
// mail, never got the file.
func TestAgentNoteWithAFileReachesTheOtherAgentsWithIt(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	withFile := func(from, to, text, name string) []byte {
		return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: Re: [" + tk.ID + "] Printer on fire\r\n" +
			"Message-ID: <" + name + "@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n" +
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=" + name + "\r\n" +
			"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("contents of "+name)) + "\r\n--b--\r\n")
	}

	before := len(g.relay.Mails())
	note := agSigned(t, agKey, rules.TokenNote, tk.ID, "ana@example.com")
	g.mustSend("ana@example.com", []string{note}, withFile("Ana Lima <ana@example.com>", note, "The vendor's log is attached: fuser fault.", "vendor.log"))
	g.settle()
	if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 0 {
		t.Fatalf("the internal note reached the customer:\n%s", agBody(t, l[0].Data))
	}
	got := agOne(t, g, before, "ben@example.com")
	if body := agBody(t, got.Data); !strings.Contains(body, "fuser fault") {
		t.Fatalf("ben's note mail lacks the note:\n%s", body)
	}
	if files := mailFiles(t, got.Data); !slices.Equal(files, []string{"vendor.log"}) {
		t.Errorf("files in ben's note mail: %v, want vendor.log", files)
	}

	// Ana owns the ticket now (a note does not assign): she takes it.
	agReply(g, "Ana Lima <ana@example.com>", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#assign me")
	before = len(g.relay.Mails())
	reply := agSigned(t, agKey, rules.TokenReply, tk.ID, "ben@example.com")
	g.mustSend("ben@example.com", []string{reply}, withFile("Ben <ben@example.com>", reply, "Here is the invoice you asked for.", "invoice.pdf"))
	g.settle()
	if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 0 {
		t.Fatalf("ben's reply on ana's ticket reached the customer:\n%s", agBody(t, l[0].Data))
	}
	var held []string
	for _, m := range agMailsTo(g, before, "ana@example.com") {
		if strings.Contains(agBody(t, m.Data), "the invoice you asked for") {
			held = mailFiles(t, m.Data)
		}
	}
	if !slices.Equal(held, []string{"invoice.pdf"}) {
		t.Errorf("files in the note of ben's held reply to ana: %v, want invoice.pdf", held)
	}
}

// TestNotificationNamesTheCustomersFilesNotAccepted: a customer's file
// past the limits is refused and the customer told so; the agents'
// notification names it too. It listed the files kept alone, and the
// agent read "the log is attached" over a mail without it, with no word
// that the customer had been asked to share it another way.
func TestNotificationNamesTheCustomersFilesNotAccepted(t *testing.T) {
	g := startDesk(t)
	g.pipeline.Policies.MaxAttachmentBytes = 100
	raw := "From: Alice Doe <alice@customer.example>\r\nTo: support@example.com\r\nSubject: Printer log\r\n" +
		"Message-ID: <big-log@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n" +
		"--m\r\nContent-Type: text/plain\r\n\r\nThe printer's log is attached, and its settings.\r\n" +
		"--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"printer.log\"\r\n\r\n" + strings.Repeat("paper jam\r\n", 30) +
		"--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"settings.txt\"\r\n\r\ntray=2\r\n--m--\r\n"
	before := len(g.relay.Mails())
	g.mustSend("alice@customer.example", []string{"support@example.com"}, []byte(raw))
	g.settle()

	got := agOne(t, g, before, "ana@example.com")
	body := agBody(t, got.Data)
	if !strings.Contains(body, "printer.log: not accepted because it is 328 bytes, more than the 100 bytes allowed per file") {
		t.Errorf("ana's notification does not name the file not accepted:\n%s", body)
	}
	if files := mailFiles(t, got.Data); !slices.Equal(files, []string{"settings.txt"}) {
		t.Errorf("files in ana's notification: %v, want settings.txt", files)
	}
}

// TestAgentReplyOfOnlyAFileFromAppleMailReachesTheCustomer: Apple Mail
// attaches a file "inline" (Content-Disposition: inline, shown in place
// in the text). An agent answering from it with the invoice the customer
// asked for and no words of their own sends the customer the invoice; it
// was taken for a picture in a signature and kept as an internal note, and
// the customer got nothing.
func TestAgentReplyOfOnlyAFileFromAppleMailReachesTheCustomer(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Invoice copy", "Please send me the invoice again.")
	to := agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com")
	quoted := "> On 21 Nov 2026, at 10:00, Alice Doe via Example Support <support@example.com> wrote:\r\n> \r\n> " + replyMarker +
		"\r\n> \r\n> Please send me the invoice again.\r\n> " + endMarker + "\r\n"
	raw := "From: Ana Lima <ana@example.com>\r\nTo: " + to + "\r\nSubject: Re: [" + tk.ID + "] Invoice copy\r\n" +
		"Message-ID: <apple-file@example.com>\r\nX-Mailer: Apple Mail (2.3826)\r\nMIME-Version: 1.0 (Mac OS X Mail 16.0)\r\n" +
		"Content-Type: multipart/mixed; boundary=\"Apple-Mail=_A1\"\r\n\r\n" +
		"--Apple-Mail=_A1\r\nContent-Transfer-Encoding: 7bit\r\nContent-Type: text/plain;\r\n\tcharset=us-ascii\r\n\r\n\r\n" +
		"--Apple-Mail=_A1\r\nContent-Disposition: inline;\r\n\tfilename=invoice-4711.pdf\r\nContent-Type: application/pdf;\r\n\tx-unix-mode=0644;\r\n\tname=\"invoice-4711.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 invoice 4711")) + "\r\n" +
		"--Apple-Mail=_A1\r\nContent-Transfer-Encoding: 7bit\r\nContent-Type: text/plain;\r\n\tcharset=us-ascii\r\n\r\n\r\n" + quoted +
		"--Apple-Mail=_A1--\r\n"
	before := len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{to}, []byte(raw))
	g.settle()

	got := agMailsTo(g, before, "alice@customer.example")
	if len(got) != 1 {
		now := g.ticket(tk.ID)
		t.Fatalf("the customer got %d mails, want the agent's reply with the invoice; the agent's mail is kept as %q", len(got), now.Messages[len(now.Messages)-1].Kind)
	}
	if files := mailFiles(t, got[0].Data); !slices.Equal(files, []string{"invoice-4711.pdf"}) {
		t.Errorf("files in the customer's mail: %v, want invoice-4711.pdf", files)
	}

	// A mail of only a command with the picture of a signature (shown by
	// the HTML) is still kept as a note.
	raw = "From: Ana Lima <ana@example.com>\r\nTo: " + to + "\r\nSubject: Re: [" + tk.ID + "] Invoice copy\r\n" +
		"Message-ID: <sig-only@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=r\r\n\r\n" +
		"--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>#priority high</p><p><img src=\"cid:logo@example.com\"></p>\r\n" +
		"--r\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=logo.png\r\nContent-ID: <logo@example.com>\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte("\x89PNG logo")) + "\r\n--r--\r\n"
	before = len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{to}, []byte(raw))
	g.settle()
	if got := agMailsTo(g, before, "alice@customer.example"); len(got) != 0 {
		t.Errorf("the customer got %d mails for a mail of only a command and a signature's picture", len(got))
	}
	if now := g.ticket(tk.ID); now.Priority != rules.PriorityHigh || now.Messages[len(now.Messages)-1].Kind != "note" {
		t.Errorf("after a mail of only #priority high: priority %s, kept as %q; want high, a note", now.Priority, now.Messages[len(now.Messages)-1].Kind)
	}
}
