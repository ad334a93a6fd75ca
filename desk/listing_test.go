package desk

import (
	"context"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// startListing is a desk (agents, plans) that also has the status route.
func startListing(t *testing.T) *gateway {
	t.Helper()
	g := startDesk(t)
	g.pipeline.Routes = append(slices.Clone(testRoutes), rules.Route{Address: "status@example.com", Kind: rules.RouteStatus})
	return g
}

// listingWorld has alice open three tickets, one of them closed, and bob
// one; it returns alice's open ones and the closed one.
func listingWorld(t *testing.T, g *gateway) (open []*store.Ticket, closed *store.Ticket) {
	t.Helper()
	open = append(open, agOpenFrom(t, g, "alice@customer.example", "Printer on fire", "It burns."))
	closed = agOpenFrom(t, g, "alice@customer.example", "Invoice is wrong", "Twice the price.")
	open = append(open, agOpenFrom(t, g, "alice@customer.example", "VPN down", "No tunnel."))
	agOpenFrom(t, g, "bob@customer.example", "Bob's own trouble", "Not alice's.")
	if _, err := g.pipeline.Act(context.Background(), closed.ID, Action{Name: "status", Value: "closed"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	return open, closed
}

// TestStatusRouteListsTheRequestersUnresolvedTickets: a customer with two
// open tickets and one closed writes to status@ (with a Reply-To and a
// Cc); exactly one mail answers, to the From address alone, naming the
// two open tickets with their status and last update, and no ticket is
// opened or changed.
func TestStatusRouteListsTheRequestersUnresolvedTickets(t *testing.T) {
	g := startListing(t)
	open, closed := listingWorld(t, g)
	before := len(g.relay.Mails())
	count := len(g.tickets())

	g.mustSend("alice@customer.example", []string{"status@example.com"},
		msg("Alice <alice@customer.example>", "status@example.com", "what do I have open?", "Please tell me.",
			"Message-ID: <ask1@customer.example>", "Reply-To: other@elsewhere.example", "Cc: carol@customer.example"))
	g.relay.WaitFor(before+1, 5*time.Second)
	g.settle()
	mails := g.relay.Mails()[before:]
	if len(mails) != 1 {
		t.Fatalf("%d mails answered the request, want 1", len(mails))
	}
	m := mails[0]
	if len(m.To) != 1 || m.To[0] != "alice@customer.example" {
		t.Fatalf("the list went to %v, want alice@customer.example alone", m.To)
	}
	h := header(t, m.Data)
	if to := h.Get("To"); !strings.Contains(to, "alice@customer.example") || strings.Contains(to, "other@") || strings.Contains(to, "carol@") || h.Get("Cc") != "" {
		t.Errorf("To %q Cc %q: the list is for the From address only", to, h.Get("Cc"))
	}
	if h.Get("Auto-Submitted") != "auto-replied" || !strings.Contains(h.Get("From"), "<status@example.com>") ||
		h.Get("In-Reply-To") != "<ask1@customer.example>" || h.Get("Subject") != ListingSubjectLine {
		t.Errorf("headers: Auto-Submitted %q From %q In-Reply-To %q Subject %q",
			h.Get("Auto-Submitted"), h.Get("From"), h.Get("In-Reply-To"), h.Get("Subject"))
	}
	body := agBody(t, m.Data)
	for _, tk := range open {
		tk = g.ticket(tk.ID)
		line := "[" + tk.ID + "] " + tk.Subject
		update := "new, last update " + tk.UpdatedAt.UTC().Format("2006-01-02 15:04")
		if !strings.Contains(body, line) || !strings.Contains(body, update) {
			t.Errorf("the list lacks %q with %q:\n%s", line, update, body)
		}
	}
	for _, not := range []string{closed.ID, "Invoice", "Bob's own trouble"} {
		if strings.Contains(body, not) {
			t.Errorf("the list names %q:\n%s", not, body)
		}
	}
	if n := strings.Count(body, "[HS-"); n != 2+1 { // two tickets, and the example of how to write to one
		t.Errorf("the list names %d tickets, want 2:\n%s", n-1, body)
	}
	if n := len(g.tickets()); n != count {
		t.Errorf("%d tickets after the request, want %d: it opens none", n, count)
	}
	for _, tk := range g.tickets() {
		for _, msg := range g.ticket(tk.ID).Messages {
			if msg.MessageID == "ask1@customer.example" {
				t.Errorf("the request was stored on %s", tk.ID)
			}
		}
	}
}

// TestMyTicketsSubjectOnAnyRoute: "Re: My Tickets" to support@ is a
// request for the list, not a ticket; "my tickets are gone" is a ticket.
func TestMyTicketsSubjectOnAnyRoute(t *testing.T) {
	g := startListing(t)
	open, _ := listingWorld(t, g)
	count := len(g.tickets())
	before := len(g.relay.Mails())

	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "  Re: My Tickets ", "which ones are open?"))
	g.relay.WaitFor(before+1, 5*time.Second)
	g.settle()
	if n := len(g.tickets()); n != count {
		t.Fatalf("%d tickets after a \"my tickets\" mail to support@, want %d", n, count)
	}
	got := agMailsTo(g, before, "alice@customer.example")
	if len(got) != 1 || len(g.relay.Mails()) != before+1 {
		t.Fatalf("%d mails to alice (%d in all), want the one list", len(got), len(g.relay.Mails())-before)
	}
	if h := header(t, got[0].Data); !strings.Contains(h.Get("From"), "<support@example.com>") {
		t.Errorf("the list came from %q, want the route it was asked on", h.Get("From"))
	}
	if body := agBody(t, got[0].Data); !strings.Contains(body, open[0].ID) || !strings.Contains(body, open[1].ID) {
		t.Errorf("the list lacks alice's open tickets:\n%s", body)
	}

	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "my tickets are gone", "from the portal"))
	if n := len(g.tickets()); n != count+1 {
		t.Errorf("\"my tickets are gone\" opened no ticket (%d tickets)", n)
	}

	// To a ticket's plus address, "my tickets" is a message on that ticket.
	plus := "support+" + strings.ToLower(open[0].ID) + "@example.com"
	had := len(g.ticket(open[0].ID).Messages)
	g.mustSend("alice@customer.example", []string{plus}, msg("alice@customer.example", plus, "my tickets", "on this one"))
	if n := len(g.ticket(open[0].ID).Messages); n != had+1 {
		t.Errorf("%s holds %d messages after mail to its plus address, want %d", open[0].ID, n, had+1)
	}
}

// TestListingGoesOnlyToKnownPeople: a stranger, an agent, automatic mail
// and a mailing list get no list; each message is still taken (250) and
// opens no ticket.
func TestListingGoesOnlyToKnownPeople(t *testing.T) {
	g := startListing(t)
	listingWorld(t, g)
	count := len(g.tickets())
	before := len(g.relay.Mails())
	cases := []struct {
		name, from string
		extra      []string
	}{
		{"stranger", "mallory@evil.example", nil},
		{"agent", "ana@example.com", nil},
		{"auto-submitted", "alice@customer.example", []string{"Auto-Submitted: auto-generated"}},
		{"bulk", "alice@customer.example", []string{"Precedence: bulk"}},
		{"mailing list", "alice@customer.example", []string{"List-Id: <customers.lists.customer.example>"}},
		{"our own mail", "alice@customer.example", []string{"X-Loop: ticketgate tickets.example.com"}},
	}
	for _, c := range cases {
		if err := g.send(c.from, []string{"status@example.com"}, msg(c.from, "status@example.com", "my tickets", "list them", c.extra...)); err != nil {
			t.Errorf("%s: the request was refused: %v", c.name, err)
		}
	}
	g.settle()
	if got := g.relay.Mails()[before:]; len(got) != 0 {
		t.Errorf("%d mails went out, want none; first to %v", len(got), got[0].To)
	}
	if n := len(g.tickets()); n != count {
		t.Errorf("%d tickets, want %d", n, count)
	}
}

// TestListingIsRateLimitedLikeEveryAutomaticMail: the list counts against
// the automatic-mail limit of the address, together with its
// auto-replies; a second request within the limit gets nothing, and a
// request delivered again (an MTA retry) is never answered twice.
func TestListingIsRateLimitedLikeEveryAutomaticMail(t *testing.T) {
	g := startListing(t)
	g.pipeline.Desk.AutoLimits = []rules.Limit{{Per: time.Hour, Max: 100}}
	listingWorld(t, g)
	before := len(g.relay.Mails())

	first := msg("alice@customer.example", "status@example.com", "list", "please", "Message-ID: <again@customer.example>")
	g.mustSend("alice@customer.example", []string{"status@example.com"}, first)
	g.relay.WaitFor(before+1, 5*time.Second)
	g.mustSend("alice@customer.example", []string{"status@example.com"}, first) // delivered again
	g.settle()
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 1 {
		t.Fatalf("%d lists for one request delivered twice, want 1", n)
	}

	// The automatic mail alice had so far (auto-replies, the closing
	// notices, the list) leaves room for one more.
	sent := len(autoTimes(t, g, "alice@customer.example"))
	if sent < 4 {
		t.Fatalf("alice's automatic mail was not counted: %d", sent)
	}
	g.pipeline.Desk.AutoLimits = []rules.Limit{{Per: time.Hour, Max: sent + 1}}
	g.mustSend("alice@customer.example", []string{"status@example.com"}, msg("alice@customer.example", "status@example.com", "list", "again"))
	g.relay.WaitFor(before+2, 5*time.Second)
	g.mustSend("alice@customer.example", []string{"status@example.com"}, msg("alice@customer.example", "status@example.com", "list", "and again"))
	g.settle()
	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 2 {
		t.Errorf("%d lists, want 2: the third request is past the limit of %d automatic mails an hour", n, sent+1)
	}
}

// autoTimes are the times automatic mail went to addr.
func autoTimes(t *testing.T, g *gateway, addr string) []time.Time {
	t.Helper()
	var ts []time.Time
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		ts, err = tx.RateTimes(mailout.AutoKey(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestExplainShowsTheListing: explain says who would get the list and
// why a stranger would not, and changes nothing.
func TestExplainShowsTheListing(t *testing.T) {
	g := startListing(t)
	listingWorld(t, g)
	before := len(g.relay.Mails())
	explain := func(from string) *Explanation {
		ex, err := g.pipeline.Explain(context.Background(), &mailin.Delivery{MailFrom: from, Rcpts: []string{"status@example.com"},
			Raw: msg(from, "status@example.com", "hello", "x", "Message-ID: <explained@customer.example>")})
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	ex := explain("alice@customer.example")
	all := strings.Join(ex.Steps, "\n")
	if len(ex.Mails) != 1 || ex.Mails[0].Kind != "list" || !slices.Equal(ex.Mails[0].To, []string{"alice@customer.example"}) ||
		ex.Result.Action != "status_sent" || !strings.Contains(all, "the list of 2 unresolved tickets goes to alice@customer.example") {
		t.Errorf("explain for alice: %+v\n%s", ex.Mails, all)
	}
	ex = explain("mallory@evil.example")
	all = strings.Join(ex.Steps, "\n")
	if len(ex.Mails) != 0 || ex.Result.Action != "status_stranger" || !strings.Contains(all, "not the requester or a participant of any ticket") {
		t.Errorf("explain for a stranger: %+v\n%s", ex.Mails, all)
	}
	// Nothing was recorded: the real request is answered.
	g.mustSend("alice@customer.example", []string{"status@example.com"},
		msg("alice@customer.example", "status@example.com", "hello", "x", "Message-ID: <explained@customer.example>"))
	g.relay.WaitFor(before+1, 5*time.Second)
	g.settle()
	if n := len(g.relay.Mails()) - before; n != 1 {
		t.Errorf("%d mails after explain and the real request, want 1", n)
	}
}

// TestListingNamesItsRequesterByAddressAnyCase: the From address in
// another case finds the same tickets, and the list goes to the address
// as written, with the display name.
func TestListingNamesItsRequesterByAddressAnyCase(t *testing.T) {
	g := startListing(t)
	open, _ := listingWorld(t, g)
	before := len(g.relay.Mails())
	g.mustSend("Alice@Customer.Example", []string{"STATUS@example.com"},
		msg(`"Alice Doe" <Alice@Customer.Example>`, "STATUS@example.com", "", "x"))
	g.relay.WaitFor(before+1, 5*time.Second)
	g.settle()
	got := agMailsTo(g, before, "alice@customer.example")
	if len(got) != 1 {
		t.Fatalf("%d lists, want 1", len(got))
	}
	to, err := mail.ParseAddress(header(t, got[0].Data).Get("To"))
	if err != nil || to.Name != "Alice Doe" {
		t.Errorf("To %v (%v)", to, err)
	}
	if body := agBody(t, got[0].Data); !strings.Contains(body, "Hello Alice Doe") || !strings.Contains(body, open[1].ID) {
		t.Errorf("body:\n%s", body)
	}
}

// TestListingNamesTheTicketsOfAParticipant: someone on the Cc of another
// customer's ticket is a participant: they get the list, naming that
// ticket; the requester's other tickets are not theirs to see.
func TestListingNamesTheTicketsOfAParticipant(t *testing.T) {
	g := startListing(t)
	g.mustSend("bob@customer.example", []string{"support@example.com"},
		msg("bob@customer.example", "support@example.com", "Shared printer", "Dave knows more.", "Cc: Dave <dave@customer.example>"))
	g.settle()
	shared := g.onlyTicket()
	if !slices.Contains(shared.CC, "dave@customer.example") {
		t.Fatalf("dave is not a participant: %v", shared.CC)
	}
	own := agOpenFrom(t, g, "bob@customer.example", "Bob's salary", "private")
	before := len(g.relay.Mails())
	g.mustSend("dave@customer.example", []string{"status@example.com"}, msg("dave@customer.example", "status@example.com", "my tickets", "x"))
	g.relay.WaitFor(before+1, 5*time.Second)
	g.settle()
	got := g.relay.Mails()[before:]
	if len(got) != 1 || !slices.Equal(got[0].To, []string{"dave@customer.example"}) {
		t.Fatalf("%d mails after dave's request (first to %v), want one list to dave", len(got), got)
	}
	body := agBody(t, got[0].Data)
	if !strings.Contains(body, "["+shared.ID+"] Shared printer") || strings.Contains(body, own.ID) {
		t.Errorf("dave's list:\n%s", body)
	}
}

// Proves a message to a routing address of tickets that also copies the
// status address is stored on a ticket whichever address comes first in
// the envelope. With status@ first it was taken as a request for the
// list alone: the customer's problem was answered with a list and never
// stored (over LMTP, where Postfix hands both recipients over in one
// transaction in the order the sender gave them).
func TestMailToSupportCopyingTheStatusAddressOpensItsTicket(t *testing.T) {
	g := startListing(t)
	raw := msg("Alice <alice@customer.example>", "status@example.com, support@example.com", "Printer on fire", "It burns, and what else do I have open?")
	for r, e := range lmtpAnswers(t, g, "alice@customer.example", []string{"status@example.com", "support@example.com"}, raw) {
		if e != nil {
			t.Fatalf("%s: %v, want 250", r, e)
		}
	}
	tk := g.onlyTicket()
	if tk.Subject != "Printer on fire" || tk.Queue != "support" || tk.Requester != "alice@customer.example" {
		t.Errorf("ticket %s: subject %q queue %q requester %q", tk.ID, tk.Subject, tk.Queue, tk.Requester)
	}
}

// Proves mail taken from a mailbox whose header names the status address
// first and support@ after it is stored on a ticket, as inject and
// explain, which read every routing address of the header, have it. The
// poller handed over the first one alone: the mail was read as a request
// for the list, and the customer's problem was never stored.
func TestMailFromAMailboxToStatusAndSupportOpensItsTicket(t *testing.T) {
	g := startListing(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("Alice <alice@customer.example>", "status@example.com", "Printer on fire", "It burns, and what else do I have open?",
		"Cc: support@example.com"))
	if n := runOnce(t, newTestPoller(t, g, srv.config(t, "move"))); n != 1 {
		t.Fatalf("took %d, want 1", n)
	}
	tk := g.onlyTicket()
	if tk.Subject != "Printer on fire" || tk.Queue != "support" {
		t.Errorf("ticket %s: subject %q queue %q", tk.ID, tk.Subject, tk.Queue)
	}
}

// TestSearchSkipsTheDesksOwnMail: the survey, the closing notice and the
// other mails the desk writes from its templates are the same on every
// ticket; searching a word of theirs finds the ticket whose customer
// wrote it, not every ticket that was closed.
func TestSearchSkipsTheDesksOwnMail(t *testing.T) {
	g := startDesk(t)
	agPolicy(t, g)
	ctx := context.Background()
	unhappy := agOpenFrom(t, g, "dave@customer.example", "Slow answers", "I am dissatisfied with how long this takes.")
	closed := agOpen(t, g, "Printer on fire", "It is on fire.")
	if _, err := g.pipeline.Act(ctx, closed.ID, Action{Name: "status", Value: "closed"}); err != nil {
		t.Fatal(err)
	}
	g.settle()
	if tk := g.ticket(closed.ID); !tk.SurveySent {
		t.Fatal("closing sent no survey")
	}
	for _, word := range []string{"dissatisfied", "satisfied"} {
		var got []string
		err := g.store.View(ctx, func(tx store.Tx) error {
			list, _, err := tx.Tickets(store.Filter{Text: word})
			for _, tk := range list {
				got = append(got, tk.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{unhappy.ID}
		if word == "satisfied" {
			want = nil
		}
		if !slices.Equal(got, want) {
			t.Errorf("search %q found %v, want %v (the survey of %s is the desk's own text)", word, got, want, closed.ID)
		}
	}
}

// TestSearchFindsAWordHoweverItIsWritten: a word is found whatever its
// case, final sigma included ("ΟΔΟΣ" is "οδος"), and whether its accents
// were typed composed or decomposed (as macOS writes them).
func TestSearchFindsAWordHoweverItIsWritten(t *testing.T) {
	g := startDesk(t)
	ctx := context.Background()
	greek := agOpenFrom(t, g, "nikos@customer.example", "ΚΛΕΙΣΤΗ ΟΔΟΣ", "Ο ΔΡΟΜΟΣ ΠΡΟΣ ΤΗΝ ΑΠΟΘΗΚΗ ΕΙΝΑΙ ΚΛΕΙΣΤΟΣ.")
	cafe := agOpenFrom(t, g, "zoe@customer.example", "Machine a cafe", "Le cafe\u0301 est froid, la ve\u0301rification a e\u0301choue\u0301.")
	search := func(text string) []string {
		t.Helper()
		var got []string
		err := g.store.View(ctx, func(tx store.Tx) error {
			list, _, err := tx.Tickets(store.Filter{Text: text})
			for _, tk := range list {
				got = append(got, tk.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for text, want := range map[string]string{
		"οδος": greek.ID, "δρομος": greek.ID, "κλειστος": greek.ID, "Οδός": "",
		"café": cafe.ID, "vérification": cafe.ID, "cafe\u0301": cafe.ID, "échoué": cafe.ID,
	} {
		var ids []string
		if want != "" {
			ids = []string{want}
		}
		if got := search(text); !slices.Equal(got, ids) {
			t.Errorf("search %q found %v, want %v", text, got, ids)
		}
	}
}

// TestSearchFindsChineseJapaneseAndKoreanWords: Chinese, Japanese and
// Korean have no spaces between words (Korean joins its particles to
// them); a search for a word within a sentence (打印机, printer) finds
// the ticket that wrote the sentence, and one for words the ticket does
// not have finds nothing.
func TestSearchFindsChineseJapaneseAndKoreanWords(t *testing.T) {
	g := startDesk(t)
	ctx := context.Background()
	zh := agOpenFrom(t, g, "li@customer.example", "打印机坏了", "你好，我的打印机坏了，无法打印发票。")
	ja := agOpenFrom(t, g, "taro@customer.example", "プリンターが動きません", "こんにちは。Windows10でプリンターが動きません。")
	ko := agOpenFrom(t, g, "kim@customer.example", "프린터가 고장났어요", "안녕하세요, 프린터가 고장났어요.")
	for text, want := range map[string][]string{
		"打印机":       {zh.ID},
		"发票":        {zh.ID},
		"打印 发票":     {zh.ID},
		"プリンター":     {ja.ID},
		"動き":        {ja.ID},
		"windows10": {ja.ID},
		"프린터":       {ko.ID},
		"고장":        {ko.ID},
		"打印机器":      nil, // 机器 is not on the ticket
		"スキャナー":     nil,
	} {
		var got []string
		err := g.store.View(ctx, func(tx store.Tx) error {
			list, _, err := tx.Tickets(store.Filter{Text: text})
			for _, tk := range list {
				got = append(got, tk.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("search %q found %v, want %v", text, got, want)
		}
	}
}
