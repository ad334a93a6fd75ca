package desk

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
)

// caseDir holds one hand-written message per case, as real clients and
// MTAs write them. Placeholders in {{ }} name the ticket opened before the
// case message (see prepareCase).
var caseDir = filepath.Join("..", "testdata", "cases")

// mailCase is one fixture and the outcome a user would notice.
type mailCase struct {
	file string
	// desk configures agents and the signing key.
	desk bool
	// prior, when set, has alice open "Printer on fire" first and puts
	// the ticket in this status before the case message arrives.
	prior    rules.Status
	mailFrom string // envelope sender, placeholders allowed ("" is <>)
	rcpt     string // envelope recipient, placeholders allowed
	policies Policies
	want     caseWant
}

type caseWant struct {
	tickets   int          // tickets in the store afterwards
	onPrior   bool         // the message is stored on the prior ticket
	kind      string       // kind of the stored message
	status    rules.Status // status of the ticket holding the message ("": not checked)
	requester string       // requester of the ticket holding the message ("": not checked)
	event     string       // an event of this type on the ticket holding the message
	eventHas  string       // ... whose detail contains this
	sentTo    []string     // recipients of all mail sent because of the message, sorted
	visible   []string     // the message's visible text keeps these
	cut       []string     // and drops these
	check     func(t *testing.T, g *gateway, r *caseRun)
	// nothingStored: the message is kept on no ticket (a request for the
	// sender's list of tickets); only tickets, sentTo and check apply.
	nothingStored bool
}

// caseRun is what a case produced.
type caseRun struct {
	vars  map[string]string
	prior *store.Ticket // before the case message (nil without prior)
	tk    *store.Ticket // the ticket holding the case message
	msg   store.Message
	sent  []relaytest.Mail
}

const caseVERPKey = "0123456789abcdef0123456789abcdef"

func TestCasesFromTestdata(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(caseDir, "*.eml"))
	covered := map[string]bool{}
	for _, c := range mailCases() {
		covered[c.file] = true
		t.Run(strings.TrimSuffix(c.file, ".eml"), func(t *testing.T) { runCase(t, c) })
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no case in the table", filepath.Base(f))
		}
	}
}

func runCase(t *testing.T, c mailCase) {
	var g *gateway
	if c.desk {
		g = startDesk(t)
	} else {
		g = startGateway(t)
	}
	g.pipeline.Desk.VERPKeys = [][]byte{[]byte(caseVERPKey)}
	g.pipeline.Policies = c.policies
	r := &caseRun{vars: map[string]string{}}
	if c.prior != "" {
		prepareCase(t, g, c.prior, r)
	}
	raw, err := os.ReadFile(filepath.Join(caseDir, c.file))
	if err != nil {
		t.Fatal(err)
	}
	raw = fillCase(raw, r.vars)
	if bytes.Contains(raw, []byte("{{")) {
		t.Fatalf("%s has a placeholder this case does not fill", c.file)
	}
	rcpt := string(fillCase([]byte(orDefault(c.rcpt, "support@example.com")), r.vars))
	mailFrom := string(fillCase([]byte(c.mailFrom), r.vars))

	// explain first: what it lists is what the delivery then sends.
	ex, err := g.pipeline.Explain(context.Background(), &mailin.Delivery{MailFrom: mailFrom, Rcpts: []string{rcpt}, Raw: raw, Source: "explain"})
	if err != nil {
		t.Fatal(err)
	}
	before := len(g.relay.Mails())
	seen := inboundIDs(g)
	g.mustSend(mailFrom, []string{rcpt}, raw)
	g.settle()
	r.sent = g.relay.Mails()[before:]
	if c.want.nothingStored {
		assertNothingStored(t, g, c.want, r, seen)
	} else {
		r.tk, r.msg = newInbound(t, g, seen)
		assertCase(t, g, c.want, r)
	}
	assertExplained(t, g, ex, r.sent)
}

// assertExplained checks that the mails explain listed are the mails the
// delivery sent: the same recipients, subjects and texts (ticket numbers,
// the signed addresses made from them and the minute of due times aside,
// as a dry run allocates its own ticket number a moment earlier).
func assertExplained(t *testing.T, g *gateway, ex *Explanation, sent []relaytest.Mail) {
	t.Helper()
	anyID := regexp.MustCompile(`(?i)HS-\d{6}`)
	token := regexp.MustCompile(`\+[A-Za-z0-9._-]+@`)
	minute := regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d`)
	norm := func(to []string, subject, text string) string {
		text = minute.ReplaceAllString(token.ReplaceAllString(text, "+TOKEN@"), "TIME")
		return anyID.ReplaceAllString(strings.Join(to, ",")+" "+subject+"\n"+text, "HS-n")
	}
	var planned, got []string
	for _, m := range ex.Mails {
		planned = append(planned, norm(m.To, m.Subject, m.Text))
	}
	for _, m := range sent {
		got = append(got, norm(m.To, subjectOf(m.Data), g.pipeline.textOf(m.Data)))
	}
	slices.Sort(planned)
	slices.Sort(got)
	if !slices.Equal(planned, got) {
		t.Errorf("explain listed %q, the delivery sent %q", planned, got)
	}
}

func assertCase(t *testing.T, g *gateway, w caseWant, r *caseRun) {
	t.Helper()
	if n := len(g.tickets()); n != w.tickets {
		t.Errorf("%d tickets, want %d", n, w.tickets)
	}
	if w.onPrior != (r.prior != nil && r.tk.ID == r.prior.ID) {
		t.Errorf("message stored on %s; on the prior ticket: want %v", r.tk.ID, w.onPrior)
	}
	if r.msg.Kind != w.kind {
		t.Errorf("message kind %q, want %q", r.msg.Kind, w.kind)
	}
	if w.status != "" && r.tk.Status != w.status {
		t.Errorf("ticket %s status %s, want %s", r.tk.ID, r.tk.Status, w.status)
	}
	if w.requester != "" && r.tk.Requester != w.requester {
		t.Errorf("requester %q, want %q", r.tk.Requester, w.requester)
	}
	if w.event != "" && !hasEvent(r.tk, w.event, w.eventHas) {
		t.Errorf("no %s event with %q on %s: %+v", w.event, w.eventHas, r.tk.ID, r.tk.Events)
	}
	var to []string
	for _, m := range r.sent {
		to = append(to, m.To...)
	}
	slices.Sort(to)
	if !slices.Equal(to, w.sentTo) {
		t.Errorf("mail went to %v, want %v", to, w.sentTo)
	}
	for _, s := range w.visible {
		if !strings.Contains(r.msg.VisibleText, s) {
			t.Errorf("visible text lacks %q:\n%s", s, r.msg.VisibleText)
		}
	}
	for _, s := range w.cut {
		if strings.Contains(r.msg.VisibleText, s) {
			t.Errorf("visible text keeps %q:\n%s", s, r.msg.VisibleText)
		}
	}
	if w.check != nil {
		w.check(t, g, r)
	}
}

// prepareCase has alice open a ticket, waits for its auto-reply and puts
// the ticket in status. It fills the placeholders the fixtures use.
func prepareCase(t *testing.T, g *gateway, status rules.Status, r *caseRun) {
	t.Helper()
	first := "p1.20261121@customer.example"
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg(`"Alice Doe" <alice@customer.example>`, "support@example.com", "Printer on fire", "It is really on fire.", "Message-ID: <"+first+">"))
	g.settle()
	tk := g.onlyTicket()
	auto := messagesOfKind(tk, "auto")
	replies := agMailsTo(g, 0, "alice@customer.example")
	if len(auto) != 1 || len(replies) != 1 {
		t.Fatalf("prior ticket: %d auto messages, %d mails to alice; want 1 and 1", len(auto), len(replies))
	}
	if status != tk.Status {
		g.store.UpdateNow(context.Background(), func(tx store.Tx) error {
			x, err := tx.Ticket(tk.ID)
			if err != nil {
				return err
			}
			x.Status = status
			if status == rules.StatusClosed {
				at := time.Now().Add(-time.Hour)
				x.ClosedAt = &at
			}
			return tx.PutTicket(x)
		})
	}
	r.prior = g.ticket(tk.ID)
	r.vars = map[string]string{
		"TICKET":       tk.ID,
		"FIRST_ID":     first,
		"AUTOREPLY_ID": auto[0].MessageID,
		"VERP":         replies[0].From,
		// A reply token for the ticket with a made-up signature.
		"FORGED_ADDR": "support+" + strings.ToLower(tk.ID) + "-r-k3vxq2mzh7a4pd6e@example.com",
	}
}

// fillCase replaces {{NAME}} placeholders and makes line ends CRLF.
func fillCase(raw []byte, vars map[string]string) []byte {
	s := string(raw)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// inboundIDs lists the received messages stored so far, by ticket.
func inboundIDs(g *gateway) map[string]bool {
	seen := map[string]bool{}
	for _, x := range g.tickets() {
		for _, m := range g.ticket(x.ID).Messages {
			if m.Direction == "in" {
				seen[x.ID+"\x00"+m.MessageID] = true
			}
		}
	}
	return seen
}

// newInbound returns the one received message stored since seen, and its
// ticket.
func newInbound(t *testing.T, g *gateway, seen map[string]bool) (*store.Ticket, store.Message) {
	t.Helper()
	var tk *store.Ticket
	var found []store.Message
	for _, x := range g.tickets() {
		full := g.ticket(x.ID)
		for _, m := range full.Messages {
			if m.Direction == "in" && !seen[x.ID+"\x00"+m.MessageID] {
				tk, found = full, append(found, m)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d new received messages stored, want 1: %+v", len(found), found)
	}
	return tk, found[0]
}

// assertNothingStored checks a case whose message no ticket keeps: no
// new received message anywhere, the number of tickets, who got mail.
func assertNothingStored(t *testing.T, g *gateway, w caseWant, r *caseRun, seen map[string]bool) {
	t.Helper()
	for _, x := range g.tickets() {
		for _, m := range g.ticket(x.ID).Messages {
			if m.Direction == "in" && !seen[x.ID+"\x00"+m.MessageID] {
				t.Errorf("message stored on %s: %s", x.ID, m.Subject)
			}
		}
	}
	if n := len(g.tickets()); n != w.tickets {
		t.Errorf("%d tickets, want %d", n, w.tickets)
	}
	var to []string
	for _, m := range r.sent {
		to = append(to, m.To...)
	}
	slices.Sort(to)
	if !slices.Equal(to, w.sentTo) {
		t.Errorf("mail went to %v, want %v", to, w.sentTo)
	}
	if w.check != nil {
		w.check(t, g, r)
	}
}

func hasEvent(tk *store.Ticket, typ, has string) bool {
	for _, e := range tk.Events {
		if string(e.Type) == typ && strings.Contains(e.Detail, has) {
			return true
		}
	}
	return false
}

// automatic is the outcome for automatic mail that opens a ticket: kept
// as a system message, no auto-reply, the reason recorded.
func automatic(requester, reason string) caseWant {
	return caseWant{tickets: 1, kind: "system", status: rules.StatusNew, requester: requester,
		event: "auto_reply_suppressed", eventHas: "automatic mail: " + reason}
}

// outOfOffice is the outcome for a vacation reply to a waiting ticket:
// kept on it as a system message, status and outgoing mail untouched.
var outOfOffice = caseWant{tickets: 1, onPrior: true, kind: "system", status: rules.StatusWaiting,
	event: "message", eventHas: "system message from alice@customer.example"}

// reply is the outcome for alice's reply to her waiting ticket.
func reply(visible, cut []string) caseWant {
	return caseWant{tickets: 1, onPrior: true, kind: "customer", status: rules.StatusOpen,
		event: "status", eventHas: "waiting → open", visible: visible, cut: cut}
}

// quoted is a phrase of the gateway's auto-reply that replies quote.
const quoted = "we have received your request"

func mailCases() []mailCase {
	return []mailCase{
		{file: "auto-submitted-generated.eml", mailFrom: "alerts@monitor.customer.example",
			want: automatic("alerts@monitor.customer.example", "Auto-Submitted: auto-generated")},
		{file: "precedence-bulk.eml", mailFrom: "reports@status.hosting.example",
			want: automatic("reports@status.hosting.example", "Precedence: bulk")},
		{file: "list-id-newsletter.eml", mailFrom: "bounce-mc.us21_4412.9911-support=example.com@mail31.suw91.mcsv.example",
			want: automatic("news@officegadgets.example", "List-Id present")},
		{file: "list-unsubscribe.eml", mailFrom: "01000193a7c5e2b1-bounce@amazonses.example",
			want: automatic("billing@saasco.example", "List-Unsubscribe present")},
		{file: "x-auto-response-suppress.eml", mailFrom: "fileshare@customer.example",
			want: automatic("fileshare@customer.example", "X-Auto-Response-Suppress: All")},
		{file: "x-loop-ours.eml", mailFrom: "helpdesk@partner.example",
			want: automatic("helpdesk@partner.example", "X-Loop names us")},
		{file: "mailer-daemon-sender.eml", mailFrom: "MAILER-DAEMON@mx.customer.example",
			want: automatic("mailer-daemon@mx.customer.example", "sender mailer-daemon@mx.customer.example")},
		{file: "noreply-sender.eml", mailFrom: "bounces+9911-support=example.com@em.acme.example",
			want: automatic("noreply@billing.acme.example", "sender noreply@billing.acme.example")},
		{file: "x-autoreply.eml", prior: rules.StatusWaiting, mailFrom: "alice@customer.example", want: outOfOffice},
		{file: "outlook-out-of-office.eml", prior: rules.StatusWaiting, mailFrom: "alice@customer.example", want: outOfOffice},
		{file: "exchange-auto-reply.eml", prior: rules.StatusWaiting, mailFrom: "alice@customer.example", want: outOfOffice},
		ownMessageIDCase(),
		dsnCase(),
		{file: "outlook-reply.eml", prior: rules.StatusWaiting, mailFrom: "alice@customer.example",
			want: reply([]string{"still smoking after the restart", "Can someone come by before noon?", "Alice"},
				[]string{"Original Message", "Sent: Saturday", quoted})},
		{file: "apple-mail-reply.eml", prior: rules.StatusWaiting, mailFrom: "alice@customer.example",
			want: reply([]string{"replaced the fuser unit", "You can close this one."},
				[]string{"Carol Smith <carol@customer.example> wrote", "Did anyone from facilities"})},
		gmailCase(),
		{file: "outlook-html-only-reply.eml", prior: rules.StatusWaiting, mailFrom: "alice@customer.example",
			want: reply([]string{"the tray still jams on every second page"}, []string{"Sent:", quoted})},
		inlineImageCase(),
		cardCase(),
		forgedTokenCase(),
		replyToCase(),
		sixAttachmentsCase(),
		hostileMIMECase(),
		myTicketsCase(),
		// An encoded word in the display name that decodes to an address:
		// the requester is still the address in the angle brackets.
		{file: "encoded-display-name.eml", mailFrom: "frank@customer.example",
			want: caseWant{tickets: 1, kind: "customer", status: rules.StatusNew, requester: "frank@customer.example",
				event: "auto_reply", eventHas: "queued to frank@customer.example", sentTo: []string{"frank@customer.example"}}},
	}
}

// Our own auto-reply, passed on by a customer's group list with its
// Message-ID kept: no mail may answer it, and alice's ticket is untouched.
func ownMessageIDCase() mailCase {
	return mailCase{file: "own-message-id.eml", prior: rules.StatusNew, mailFrom: "team+bncBAABBQ5X@customer.example",
		want: caseWant{tickets: 2, kind: "system", requester: "facilities@customer.example",
			event: "auto_reply_suppressed", eventHas: "automatic mail: own Message-ID domain",
			check: func(t *testing.T, g *gateway, r *caseRun) {
				if got := g.ticket(r.prior.ID); got.Status != rules.StatusNew || len(got.Messages) != len(r.prior.Messages) {
					t.Errorf("prior ticket changed: status %s, %d messages (had %d)", got.Status, len(got.Messages), len(r.prior.Messages))
				}
				if r.msg.MessageID == r.vars["AUTOREPLY_ID"] {
					t.Errorf("stored under the auto-reply's own Message-ID")
				}
			}}}
}

// A Postfix report about the auto-reply, sent to its VERP return path.
func dsnCase() mailCase {
	return mailCase{file: "postfix-dsn.eml", prior: rules.StatusNew, mailFrom: "", rcpt: "{{VERP}}",
		want: caseWant{tickets: 1, onPrior: true, kind: "system", status: rules.StatusNew,
			event: "delivery_failed", eventHas: "delivery to alice@customer.example failed: 5.1.1",
			check: func(t *testing.T, g *gateway, r *caseRun) {
				if !g.bouncing("alice@customer.example") {
					t.Error("alice is not marked as bouncing")
				}
				if n := len(agEvents(r.tk, "delivery_failed")); n != 1 {
					t.Errorf("%d delivery_failed events, want 1", n)
				}
				// Her next automatic mail is held back.
				g.mustSend("alice@customer.example", []string{"support@example.com"},
					msg("alice@customer.example", "support@example.com", "Another printer", "x"))
				g.settle()
				if n := len(agMailsTo(g, 0, "alice@customer.example")); n != 1 {
					t.Errorf("alice got %d mails in all, want only the first auto-reply", n)
				}
			}}}
}

// A Gmail reply to a closed ticket: reopened, quote and signature cut.
func gmailCase() mailCase {
	return mailCase{file: "gmail-reply.eml", prior: rules.StatusClosed, mailFrom: "alice@customer.example",
		want: caseWant{tickets: 1, onPrior: true, kind: "customer", status: rules.StatusOpen,
			event: "reopened", eventHas: "customer replied",
			visible: []string{"the printer caught fire again this morning", "smell, same tray."},
			cut:     []string{"Office Manager", "+44 20 7946 0123", "wrote:", quoted},
			check: func(t *testing.T, g *gateway, r *caseRun) {
				if r.tk.ClosedAt != nil {
					t.Errorf("reopened ticket still has closed_at %v", r.tk.ClosedAt)
				}
			}}}
}

// An Outlook reply with a pasted screenshot (cid:) and one file; one file
// is allowed per message, and the screenshot is part of the text.
func inlineImageCase() mailCase {
	return mailCase{file: "inline-image-reply.eml", prior: rules.StatusWaiting, mailFrom: "alice@customer.example",
		policies: Policies{MaxAttachments: 1},
		want: caseWant{tickets: 1, onPrior: true, kind: "customer", status: rules.StatusOpen,
			visible: []string{"error the printer panel shows"},
			check: func(t *testing.T, g *gateway, r *caseRun) {
				var img, pdf *store.Attachment
				for i, a := range r.msg.Attachments {
					switch a.Filename {
					case "image001.png":
						img = &r.msg.Attachments[i]
					case "service-report.pdf":
						pdf = &r.msg.Attachments[i]
					}
				}
				if img == nil || !img.Inline || img.ContentID != "image001.png@01DB3C2F.1A2B3C40" || img.ContentType != "image/png" {
					t.Errorf("inline image not kept with its content id: %+v", r.msg.Attachments)
				}
				if pdf == nil || pdf.Inline || len(r.msg.Attachments) != 2 {
					t.Errorf("attachments %+v, want the image and the report", r.msg.Attachments)
				}
				if img != nil {
					var content []byte
					g.store.View(context.Background(), func(tx store.Tx) error { var err error; content, err = tx.Blob(img.SHA256); return err })
					if !bytes.HasPrefix(content, []byte("\x89PNG")) {
						t.Errorf("stored image is not the PNG: %q", content)
					}
				}
				if e := eventOf(r.tk, "attachments_refused"); e != nil {
					t.Errorf("inline image counted against the file limit: %s", e.Detail)
				}
			}}}
}

// A card number inside a base64 body: removed from text and raw copy,
// the sender told once, and no mail repeats it.
func cardCase() mailCase {
	const dana = "dana@shop-customer.example"
	return mailCase{file: "card-in-base64.eml", mailFrom: dana, rcpt: "billing@example.com",
		want: caseWant{tickets: 1, kind: "customer", status: rules.StatusNew, requester: dana,
			event: "redacted", eventHas: "1 card number(s) removed", sentTo: []string{dana, dana},
			visible: []string{"charged twice for order 58213", "[card number removed]"},
			cut:     []string{"4111"},
			check: func(t *testing.T, g *gateway, r *caseRun) {
				if strings.Contains(r.msg.Text, "4111") || !strings.Contains(r.msg.Text, "expiry 09/28") {
					t.Errorf("stored text: %q", r.msg.Text)
				}
				var raw []byte
				g.store.View(context.Background(), func(tx store.Tx) error { var err error; raw, err = tx.Blob(r.msg.Raw); return err })
				again, err := mailin.Parse(raw, mailin.Limits{})
				if err != nil || strings.Contains(again.Text, "4111") || bytes.Contains(raw, []byte("NDExMSAxMTEx")) {
					t.Errorf("raw copy still holds the card number (err %v):\n%s", err, raw)
				}
				notices := 0
				for _, m := range r.sent {
					body := agBody(t, m.Data)
					if showsCard([]byte(body)) {
						t.Errorf("sent mail repeats the card number:\n%s", body)
					}
					if strings.Contains(body, "sensitive data") {
						notices++
					}
				}
				if notices != 1 {
					t.Errorf("%d redaction notices, want 1", notices)
				}
			}}}
}

// A stranger writes to a reply address with a made-up signature, posing
// as an agent: the ticket is untouched, a security event is recorded, and
// the stranger's mail becomes a ticket of its own.
func forgedTokenCase() mailCase {
	const mallory = "mallory@evil.example"
	return mailCase{file: "forged-token-stranger.eml", desk: true, prior: rules.StatusNew, mailFrom: mallory, rcpt: "{{FORGED_ADDR}}",
		want: caseWant{tickets: 2, kind: "customer", status: rules.StatusNew, requester: mallory,
			event: "linked", sentTo: []string{"ana@example.com", "ben@example.com", mallory},
			check: func(t *testing.T, g *gateway, r *caseRun) {
				got := g.ticket(r.prior.ID)
				if got.Status != rules.StatusNew || got.Assignee != "" || len(got.Messages) != len(r.prior.Messages) {
					t.Errorf("prior ticket changed: status %s assignee %q, %d messages (had %d)",
						got.Status, got.Assignee, len(got.Messages), len(r.prior.Messages))
				}
				if !hasEvent(got, "security", "mallory@evil.example is not an agent") {
					t.Errorf("no security event on %s: %+v", got.ID, got.Events)
				}
				for _, m := range r.sent {
					if slices.Contains(m.To, mallory) && strings.Contains(agBody(t, m.Data), "It is really on fire") {
						t.Error("the stranger was sent the customer's text")
					}
				}
			}}}
}

// Reply-To names another address: the requester, and whoever gets the
// confirmation, is the From.
func replyToCase() mailCase {
	const bob = "bob@customer.example"
	return mailCase{file: "reply-to-differs.eml", mailFrom: bob,
		want: caseWant{tickets: 1, kind: "customer", status: rules.StatusNew, requester: bob,
			event: "auto_reply", eventHas: "queued to " + bob, sentTo: []string{bob},
			check: func(t *testing.T, g *gateway, r *caseRun) {
				if slices.Contains(r.tk.CC, "bob.miller.home@freemail.example") {
					t.Errorf("Reply-To address became a participant: %v", r.tk.CC)
				}
				if len(r.sent) == 1 && strings.Contains(header(t, r.sent[0].Data).Get("To"), "freemail") {
					t.Errorf("auto-reply addressed to the Reply-To: %s", header(t, r.sent[0].Data).Get("To"))
				}
			}}}
}

// Six files where five are allowed: five kept, the sixth named in an
// event and in a notice to the sender.
func sixAttachmentsCase() mailCase {
	const erin = "erin@customer.example"
	return mailCase{file: "six-attachments.eml", mailFrom: erin, policies: Policies{MaxAttachments: 5},
		want: caseWant{tickets: 1, kind: "customer", status: rules.StatusNew, requester: erin,
			event: "attachments_refused", eventHas: "warranty.pdf: not accepted because only 5 files are accepted",
			sentTo: []string{erin, erin},
			check: func(t *testing.T, g *gateway, r *caseRun) {
				var names []string
				for _, a := range r.msg.Attachments {
					names = append(names, a.Filename)
				}
				if want := "photo-front.jpg,photo-back.jpg,error-log.txt,config.xml,invoice.pdf"; strings.Join(names, ",") != want {
					t.Errorf("kept %v, want %s", names, want)
				}
				var refusal string
				for _, m := range r.sent {
					if b := agBody(t, m.Data); strings.Contains(b, "warranty.pdf") {
						refusal = b
					}
				}
				if refusal == "" || strings.Contains(refusal, "invoice.pdf") {
					t.Errorf("refusal notice does not name exactly the refused file:\n%s", refusal)
				}
			}}}
}

// An encoded CR LF in the Subject, a boundary reused by a nested part, a
// bogus charset with broken base64 and no closing delimiter: a ticket
// with the readable text, the raw copy kept as received, and no header
// smuggled into the confirmation.
func hostileMIMECase() mailCase {
	const frank = "frank@customer.example"
	return mailCase{file: "hostile-mime.eml", mailFrom: frank,
		want: caseWant{tickets: 1, kind: "customer", status: rules.StatusNew, requester: frank, sentTo: []string{frank},
			check: func(t *testing.T, g *gateway, r *caseRun) {
				if !strings.Contains(r.msg.Text+strings.Join(r.msg.Notes, " "), "only produces black pages") {
					t.Errorf("readable text lost: %q notes %v", r.msg.Text, r.msg.Notes)
				}
				var raw []byte
				g.store.View(context.Background(), func(tx store.Tx) error { var err error; raw, err = tx.Blob(r.msg.Raw); return err })
				if !bytes.Contains(raw, []byte("this is !!! not base64 ###")) {
					t.Error("raw copy not kept as received")
				}
				if len(r.sent) == 1 {
					h := header(t, r.sent[0].Data)
					if h.Get("Bcc") != "" || strings.ContainsAny(h.Get("Subject"), "\r\n") {
						t.Errorf("header smuggled into the auto-reply: Bcc %q Subject %q", h.Get("Bcc"), h.Get("Subject"))
					}
				}
			}}}
}

// Gmail's "Re: My tickets" to support@, from a customer whose one ticket
// waits for her: no ticket is opened or changed, and she alone (not the
// Cc) gets the list naming that ticket as waiting for her answer.
func myTicketsCase() mailCase {
	return mailCase{file: "gmail-my-tickets.eml", prior: rules.StatusWaiting, mailFrom: "alice@customer.example",
		want: caseWant{tickets: 1, nothingStored: true, sentTo: []string{"alice@customer.example"},
			check: func(t *testing.T, g *gateway, r *caseRun) {
				if got := g.ticket(r.prior.ID); got.Status != rules.StatusWaiting || len(got.Messages) != len(r.prior.Messages) {
					t.Errorf("prior ticket changed: status %s, %d messages (had %d)", got.Status, len(got.Messages), len(r.prior.Messages))
				}
				body := agBody(t, r.sent[0].Data)
				if !strings.Contains(body, "["+r.prior.ID+"] Printer on fire") || !strings.Contains(body, "waiting for your answer") {
					t.Errorf("the list does not name %s as waiting:\n%s", r.prior.ID, body)
				}
			}}}
}
