package desk

import (
	"regexp"
	"strings"
	"testing"

	"ticketgate/rules"
)

// outlookReply is an agent's answer as Outlook sends it: multipart/
// alternative, a plain text part in which every address Outlook made a
// link is followed by "<mailto:…>", and the HTML written by Word, both
// quoting the notification under Outlook's "From:/Sent:" block.
func outlookReply(to, id, subject string, lines []string) []byte {
	var plain, html strings.Builder
	for _, l := range lines {
		plain.WriteString(l + "\r\n")
		html.WriteString("<p class=MsoNormal>" + outlookLink.ReplaceAllString(l, `<a href="mailto:$2">$1</a>`) + "<o:p></o:p></p>\r\n")
	}
	quote := "From: Alice Doe via Example Support <support@example.com>\r\nSent: Saturday, November 21, 2026 10:00 AM\r\n" +
		"To: Ana Lima <ana@example.com>\r\nSubject: [" + id + "] " + subject + "\r\n\r\n" + replyMarker + "\r\n\r\nIt is really on fire.\r\n" + endMarker + "\r\n"
	return []byte("From: Ana Lima <ana@example.com>\r\nTo: " + to + "\r\nSubject: RE: [" + id + "] " + subject + "\r\n" +
		"Date: Sat, 21 Nov 2026 10:05:00 +0000\r\nMessage-ID: <" + digitFree(msgSeq.Add(1)) + "@ana-pc.example.com>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"_000_AM0PR\"\r\n\r\n" +
		"--_000_AM0PR\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\n" + plain.String() + "\r\n" + quote +
		"\r\n--_000_AM0PR\r\nContent-Type: text/html; charset=\"utf-8\"\r\n\r\n<html><body><div class=WordSection1>" + html.String() +
		"<div><p class=MsoNormal><b>From:</b> Alice Doe via Example Support &lt;support@example.com&gt;</p></div>" +
		"<p class=MsoNormal>" + strings.ReplaceAll(quote, "\r\n", "<br>") + "</p></div></body></html>\r\n--_000_AM0PR--\r\n")
}

// outlookLink is an address Outlook's plain text shows as a link.
var outlookLink = regexp.MustCompile(`(\S+)<mailto:([^<>]+)>`)

// TestOutlookLinkedAddressesInCommands: Outlook turns every address typed
// into a link, and its plain text writes it "ben@example.com<mailto:
// ben@example.com>". #cc add and #assign read the address in it; the
// whole mail was refused ("cannot read … as an agent"), and the customer
// got nothing.
func TestOutlookLinkedAddressesInCommands(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	to := agReplyTo(t, agOne(t, g, 0, "ana@example.com"))
	before := len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{to}, outlookReply(to, tk.ID, tk.Subject, []string{
		"#cc add bob@buyer.example<mailto:bob@buyer.example>", "#priority high", "",
		"Bob from purchasing is in copy now. Please unplug it.", "", "Ana"}))
	g.settle()
	if l := agMailsTo(g, before, "ana@example.com"); len(l) != 0 {
		t.Errorf("ana was told: %s", agBody(t, l[0].Data))
	}
	out := agMailsTo(g, before, "alice@customer.example")
	if len(out) != 1 || !strings.Contains(agBody(t, out[0].Data), "Please unplug it.") {
		t.Fatalf("the customer got %d mails", len(out))
	}
	if body := agBody(t, out[0].Data); strings.Contains(body, "really on fire") || strings.Contains(body, "#cc") {
		t.Errorf("the customer got more than the reply:\n%s", body)
	}
	tk = g.ticket(tk.ID)
	if tk.Priority != rules.PriorityHigh || !strings.Contains(strings.Join(tk.CC, " "), "bob@buyer.example") {
		t.Errorf("priority %s, cc %v", tk.Priority, tk.CC)
	}

	// An assignment from the same client, commands alone.
	before = len(g.relay.Mails())
	g.mustSend("ana@example.com", []string{to}, outlookReply(to, tk.ID, tk.Subject, []string{
		"#assign ben@example.com <mailto:ben@example.com>"}))
	g.settle()
	if tk = g.ticket(tk.ID); tk.Assignee != "ben@example.com" {
		t.Errorf("assignee %q; ana was told %d times", tk.Assignee, len(agMailsTo(g, before, "ana@example.com")))
	}
}

// TestHTMLOnlyReplyLinkedAddressInCommands: Outlook set to send HTML only
// links the address of "#cc add Bob Buyer <bob@buyer.example>"; read as
// text, the link keeps a space on each side, "< bob@buyer.example >".
// The command reads it; the whole mail was refused.
func TestHTMLOnlyReplyLinkedAddressInCommands(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	to := agReplyTo(t, agOne(t, g, 0, "ana@example.com"))
	before := len(g.relay.Mails())
	html := `<html><body lang=EN-US><div class=WordSection1><p class=MsoNormal>#cc add Bob Buyer &lt;<a href="mailto:bob@buyer.example">bob@buyer.example</a>&gt;<o:p></o:p></p>` +
		`<p class=MsoNormal><o:p>&nbsp;</o:p></p><div style='border:none;border-top:solid #E1E1E1 1.0pt'><p class=MsoNormal><b>From:</b> Alice Doe via Example Support &lt;support@example.com&gt;<br>` +
		`<b>Sent:</b> Saturday, November 21, 2026 10:00 AM<br><b>To:</b> Ana Lima &lt;ana@example.com&gt;<br><b>Subject:</b> [` + tk.ID + `] Printer on fire<o:p></o:p></p></div>` +
		`<p class=MsoPlainText>` + replyMarker + `<o:p></o:p></p><p class=MsoPlainText>It is really on fire.<o:p></o:p></p><p class=MsoPlainText>` + endMarker + `<o:p></o:p></p></div></body></html>`
	g.mustSend("ana@example.com", []string{to}, []byte("From: Ana Lima <ana@example.com>\r\nTo: "+to+"\r\nSubject: RE: ["+tk.ID+"] Printer on fire\r\n"+
		"Date: Sat, 21 Nov 2026 10:05:00 +0000\r\nMessage-ID: <"+digitFree(msgSeq.Add(1))+"@ana-pc.example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=\"utf-8\"\r\n\r\n"+html+"\r\n"))
	g.settle()
	if tk = g.ticket(tk.ID); !strings.Contains(strings.Join(tk.CC, " "), "bob@buyer.example") {
		t.Errorf("cc %v", tk.CC)
		for _, m := range agMailsTo(g, before, "ana@example.com") {
			t.Errorf("ana was told:\n%s", agBody(t, m.Data))
		}
	}
}
