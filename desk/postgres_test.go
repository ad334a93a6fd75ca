package desk

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/mailout/relaytest"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/postgres"
	"ticketgate/store/postgres/pgtest"
)

// pgGateway is one gateway process's share of a PostgreSQL deployment:
// its own connection pool, pipeline and outbox worker.
type pgGateway struct {
	store    *postgres.DB
	pipeline *Pipeline
	worker   *mailout.Worker
}

func startPGGateway(t *testing.T, dsn string, relay *relaytest.Relay) *pgGateway {
	t.Helper()
	log := testLogger(t)
	st, err := postgres.Open(context.Background(), dsn, postgres.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tpl, err := mailout.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	rules.CompileToken("HS")
	g := &pgGateway{store: st}
	g.worker = mailout.NewWorker(st, &mailout.Relay{Addr: relay.Addr, TLS: "none", Hostname: "tickets.example.com", Timeout: 5 * time.Second}, log)
	g.pipeline = &Pipeline{Store: st, Routes: testRoutes, Prefix: "HS", Hostname: "tickets.example.com",
		Desk: &mailout.Mailer{Hostname: "tickets.example.com", FromName: "Example Support", Templates: tpl}, Log: log,
		OnCommit: g.worker.Wake, Thread: rules.ThreadPolicy{ReopenWindow: 7 * 24 * time.Hour}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.worker.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return g
}

// Two gateways on one PostgreSQL database receive the same message at the
// same moment (an MTA retrying at the other MX): it is stored once, both
// answer success, and the one new ticket gets one auto-reply, sent by one
// of the two outbox workers.
func TestTwoGatewaysStoreEachMessageOnce(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	relay := relaytest.Start(t)
	gws := []*pgGateway{startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay)}
	const rounds = 20
	for i := range rounds {
		raw := harnessMessage(fmt.Sprintf("twice-%d@customer.test", i), 600)
		var wg sync.WaitGroup
		res := make([]mailin.Result, len(gws))
		errs := make([]error, len(gws))
		for j, g := range gws {
			wg.Go(func() {
				res[j], errs[j] = g.pipeline.Deliver(context.Background(), &mailin.Delivery{
					MailFrom: "alice@customer.test", Rcpts: []string{"support@example.com"}, Raw: raw, Source: "smtp"})
			})
		}
		wg.Wait()
		for j, err := range errs {
			if err != nil {
				t.Fatalf("round %d: gateway %d answered %v; a duplicate must be a success", i, j, err)
			}
		}
		if res[0].TicketID != res[1].TicketID || res[0].Duplicate == res[1].Duplicate {
			t.Errorf("round %d: results %+v and %+v; want one new, one duplicate, same ticket", i, res[0], res[1])
		}
	}
	mails := relay.WaitFor(rounds, 20*time.Second)
	time.Sleep(300 * time.Millisecond) // room for a second send, if one were coming
	if n := len(relay.Mails()); n != rounds || len(mails) != rounds {
		t.Errorf("relay got %d mails, want one auto-reply per ticket (%d)", n, rounds)
	}
	err := gws[1].store.View(context.Background(), func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{})
		if err != nil {
			return err
		}
		if len(list) != rounds {
			t.Errorf("%d tickets, want %d", len(list), rounds)
		}
		for i := range rounds {
			id, err := tx.TicketByMessageID(fmt.Sprintf("twice-%d@customer.test", i))
			if err != nil {
				return err
			}
			tk, err := tx.TicketFull(id)
			if err != nil {
				return err
			}
			in := 0
			for _, m := range tk.Messages {
				if m.Direction == "in" {
					in++
				}
			}
			if in != 1 {
				t.Errorf("message %d stored %d times on %s", i, in, id)
			}
		}
		ob, err := tx.OutboxList(0, 0)
		if err == nil && len(ob) != 0 {
			t.Errorf("%d mails left in the outbox", len(ob))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// replyMessage is a customer's reply to ticket id: by its token in the
// subject, or (byRef) by References to the message it answers.
func replyMessage(msgID, id, ref string, byRef bool) []byte {
	subject := "Re: Printer on fire [" + id + "]"
	refs := ""
	if byRef {
		subject = "Re: Printer on fire"
		refs = "In-Reply-To: <" + ref + ">\r\nReferences: <" + ref + ">\r\n"
	}
	return fmt.Appendf(nil, "From: Alice <alice@customer.test>\r\nTo: support@example.com\r\nSubject: %s\r\n"+
		"Date: Mon, 02 Jan 2006 15:05:05 +0000\r\nMessage-ID: <%s>\r\n%sContent-Type: text/plain; charset=utf-8\r\n\r\nStill burning.\r\n",
		subject, msgID, refs)
}

// Three gateways on one database at once: new tickets get distinct
// numbers, and replies to one ticket arriving at all three together (by
// token and by References) all join it, each stored once; the same reply
// delivered to all three is stored once and every gateway answers
// success.
func TestThreeGatewaysThreadRepliesRaceFree(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	relay := relaytest.Start(t)
	gws := []*pgGateway{startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay)}
	deliver := func(g *pgGateway, raw []byte) (mailin.Result, error) {
		return g.pipeline.Deliver(context.Background(), &mailin.Delivery{
			MailFrom: "alice@customer.test", Rcpts: []string{"support@example.com"}, Raw: raw, Source: "smtp"})
	}
	const rounds = 10
	for i := range rounds {
		orig := fmt.Sprintf("orig-%d@customer.test", i)
		first, err := deliver(gws[i%3], harnessMessage(orig, 600))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		res := make([]mailin.Result, 9)
		errs := make([]error, 9)
		for j := range 9 {
			g := gws[j%3]
			var raw []byte
			switch j / 3 {
			case 0: // three replies by token, one per gateway
				raw = replyMessage(fmt.Sprintf("tok-%d-%d@customer.test", i, j), first.TicketID, "", false)
			case 1: // three replies by References
				raw = replyMessage(fmt.Sprintf("ref-%d-%d@customer.test", i, j), "", orig, true)
			default: // one reply delivered to all three
				raw = replyMessage(fmt.Sprintf("dup-%d@customer.test", i), first.TicketID, "", false)
			}
			wg.Go(func() { res[j], errs[j] = deliver(g, raw) })
		}
		wg.Wait()
		dups := 0
		for j := range 9 {
			if errs[j] != nil {
				t.Fatalf("round %d: delivery %d answered %v", i, j, errs[j])
			}
			if res[j].TicketID != first.TicketID {
				t.Errorf("round %d: reply %d went to %s, want %s", i, j, res[j].TicketID, first.TicketID)
			}
			if res[j].Duplicate {
				dups++
			}
		}
		if dups != 2 {
			t.Errorf("round %d: %d deliveries taken as duplicates, want 2 (the same reply at three gateways)", i, dups)
		}
	}
	err := gws[2].store.View(context.Background(), func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{})
		if err != nil {
			return err
		}
		if len(list) != rounds {
			t.Errorf("%d tickets, want %d", len(list), rounds)
		}
		for _, tk := range list {
			full, err := tx.TicketFull(tk.ID)
			if err != nil {
				return err
			}
			in := map[string]int{}
			for _, m := range full.Messages {
				if m.Direction == "in" {
					in[m.MessageID]++
				}
			}
			if len(in) != 8 {
				t.Errorf("%s holds %d distinct incoming messages, want 8 (the original and 7 replies)", tk.ID, len(in))
			}
			for id, n := range in {
				if n != 1 {
					t.Errorf("%s: message %s stored %d times", tk.ID, id, n)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Two gateways numbering tickets sequentially on one database, customers
// writing to both at once: each gateway counts on its own and passes over
// the numbers the other took, so every customer gets a ticket of their
// own, no number twice, and a confirmation naming it.
func TestTwoGatewaysNumberTicketsSequentially(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	relay := relaytest.Start(t)
	gws := []*pgGateway{startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay)}
	for _, g := range gws {
		g.pipeline.Sequential, g.pipeline.Shared = true, true
	}
	const n = 20
	var wg sync.WaitGroup
	res := make([]mailin.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			from := fmt.Sprintf("c%02d@customer.example", i)
			res[i], errs[i] = gws[i%2].pipeline.Deliver(context.Background(), &mailin.Delivery{
				MailFrom: from, Rcpts: []string{"support@example.com"}, Source: "smtp",
				Raw: msg(from, "support@example.com", "Question", "Hello.", fmt.Sprintf("Message-ID: <seq-%d@customer.example>", i))})
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		id := res[i].TicketID
		if ids[id] || len(id) != len("HS-000000") {
			t.Errorf("message %d got ticket %q: given twice or not a ticket number", i, id)
		}
		ids[id] = true
		// Numbers drawn by transactions that ran again are skipped, so
		// the 20 tickets are not numbered 1 to 20 exactly; numbered at
		// random they would almost never all be this low.
		if num, err := strconv.Atoi(id[3:]); err != nil || num < 1 || num > 10*n {
			t.Errorf("ticket %s is not among the first %d numbers", id, 10*n)
		}
	}
	mails := relay.WaitFor(n, 20*time.Second)
	named := map[string]bool{}
	for _, m := range mails {
		for id := range ids {
			if bytes.Contains(m.Data, []byte("["+id+"]")) {
				named[id] = true
			}
		}
	}
	if len(mails) != n || len(named) != n {
		t.Errorf("%d confirmations naming %d of the %d tickets, want one for each", len(mails), len(named), n)
	}
}

// A gateway sweeps while another takes new mail without pause. Each of
// the sweep's transactions conflicts with the other's commits
// (PostgreSQL refuses one of two serializable transactions that read
// what the other wrote); a transaction of hundreds of tickets is refused
// every time it runs. The sweep still sends every reminder due, once.
func TestSweepOnPostgresSendsItsRemindersWhileMailArrives(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	relay := relaytest.Start(t)
	a, b := startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay)
	p := &Policy{Lifecycle: rules.DefaultLifecycle(), ReopenWindow: 7 * 24 * time.Hour}
	st := store.WithDue(a.store, p.Due)
	const n = 100
	if err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
		for i := range n {
			err := tx.PutTicket(&store.Ticket{ID: fmt.Sprintf("HS-%06d", 900000+i), Status: rules.StatusOpen, Route: "support@example.com",
				Requester: fmt.Sprintf("c%d@customer.example", i), CreatedAt: day0, Clock: rules.Clock{Status: rules.StatusOpen, AwaitingSince: day0}})
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sw := &Sweeper{Store: st, Desk: a.pipeline.Desk, Policy: p, Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := sent.Add(1)
				from := fmt.Sprintf("new%d@customer.example", i)
				if _, err := b.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: from, Rcpts: []string{"support@example.com"}, Source: "smtp",
					Raw: msg(from, "support@example.com", "Question", "Hello.", fmt.Sprintf("Message-ID: <new-%d@customer.example>", i))}); err != nil {
					t.Errorf("mail %d: %v", i, err)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	rep, err := sw.Sweep(context.Background(), day(3), false)
	cancel()
	wg.Wait()
	if err != nil || rep.Mails != n {
		t.Fatalf("sweep while %d mails arrived: %d reminders queued of %d due, err %v", sent.Load(), rep.Mails, n, err)
	}
	err = a.store.View(context.Background(), func(tx store.Tx) error {
		for i := range n {
			tk, err := tx.TicketFull(fmt.Sprintf("HS-%06d", 900000+i))
			if err != nil {
				return err
			}
			if got := len(events(tk, "reminder_sent")); got != 1 {
				t.Errorf("%s: %d reminders, want 1", tk.ID, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A gateway that numbers sequentially and took little of the mail for a
// while numbers its next ticket after the newest one the other gateway
// opened meanwhile: not with a number the other passed over (drawn for a
// reply that joined its ticket), which would open HS-000003 after
// HS-000012, nor at random once the other had opened a thousand.
func TestTwoGatewaysNumberAfterTheNewestTicket(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	relay := relaytest.Start(t)
	a, b := startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay)
	for _, g := range []*pgGateway{a, b} {
		g.pipeline.Sequential, g.pipeline.Shared = true, true
	}
	deliver := func(g *pgGateway, from string, raw []byte) string {
		t.Helper()
		res, err := g.pipeline.Deliver(context.Background(), &mailin.Delivery{
			MailFrom: from, Rcpts: []string{"support@example.com"}, Source: "smtp", Raw: raw})
		if err != nil {
			t.Fatal(err)
		}
		return res.TicketID
	}
	if id := deliver(b, "first@customer.example", msg("first@customer.example", "support@example.com", "First", "Hello.")); id != "HS-000001" {
		t.Fatalf("first ticket is %s, want HS-000001", id)
	}
	newest := ""
	for i := range 10 {
		from := fmt.Sprintf("c%02d@customer.example", i)
		msgID := fmt.Sprintf("newest-%d@customer.example", i)
		newest = deliver(a, from, msg(from, "support@example.com", "Question", "Hello.", "Message-ID: <"+msgID+">"))
		// The customer answers by References, without the ticket's
		// token: the gateway draws a number for the mail, which then
		// joins the ticket, and the number is passed over.
		reply := msg(from, "support@example.com", "Re: Question", "More.", "In-Reply-To: <"+msgID+">", "References: <"+msgID+">")
		if id := deliver(a, from, reply); id != newest {
			t.Fatalf("reply to %s joined %s", newest, id)
		}
	}
	got := deliver(b, "late@customer.example", msg("late@customer.example", "support@example.com", "Late", "Hello."))
	if got <= newest {
		t.Errorf("the next ticket is %s, opened after %s: numbered before the newest ticket", got, newest)
	}
	// The newest ticket's record damaged (check reports it): a gateway
	// started since numbers from the others, passes over the number the
	// damaged ticket holds, and takes the mail.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE tickets SET rec = '{"created_at": "not a time"}' WHERE id = $1`, got); err != nil {
		t.Fatal(err)
	}
	c3 := startPGGateway(t, dsn, relay)
	c3.pipeline.Sequential, c3.pipeline.Shared = true, true
	if next := deliver(c3, "later@customer.example", msg("later@customer.example", "support@example.com", "Later", "Hello.")); next <= got {
		t.Errorf("the ticket after the damaged %s is %s", got, next)
	}
}

// The tickets a sweep finds due only after catching their due times up
// with a policy they were not written under (reminders turned on by a
// restart or reload) are swept while another gateway takes new mail
// without pause: the catch-up's transactions, hundreds of tickets each,
// conflict with the other's commits as the sweep's batches do, and the
// sweep still sends every reminder due, once.
func TestSweepOnPostgresCatchesUpDueTimesWhileMailArrives(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	relay := relaytest.Start(t)
	a, b := startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay)
	p := &Policy{Lifecycle: rules.DefaultLifecycle(), ReopenWindow: 7 * 24 * time.Hour}
	const n = 300
	// Written without the policy: nothing is due for them yet.
	if err := a.store.UpdateNow(context.Background(), func(tx store.Tx) error {
		for i := range n {
			err := tx.PutTicket(&store.Ticket{ID: fmt.Sprintf("HS-%06d", 900000+i), Status: rules.StatusOpen, Route: "support@example.com",
				Requester: fmt.Sprintf("c%d@customer.example", i), CreatedAt: day0, Clock: rules.Clock{Status: rules.StatusOpen, AwaitingSince: day0}})
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.pipeline.Policy = p
	b.pipeline.Store = store.WithDue(b.store, p.Due)
	sw := &Sweeper{Store: store.WithDue(a.store, p.Due), Desk: a.pipeline.Desk, Policy: p, Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := sent.Add(1)
				from := fmt.Sprintf("new%d@customer.example", i)
				if _, err := b.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: from, Rcpts: []string{"support@example.com"}, Source: "smtp",
					Raw: msg(from, "support@example.com", "Question", "Hello.", fmt.Sprintf("Message-ID: <new-%d@customer.example>", i))}); err != nil {
					t.Errorf("mail %d: %v", i, err)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	rep, err := sw.Sweep(context.Background(), day(3), false)
	cancel()
	wg.Wait()
	if err != nil || rep.Mails != n {
		t.Fatalf("sweep while %d mails arrived: %d reminders queued of %d due, err %v", sent.Load(), rep.Mails, n, err)
	}
}

// A dry run of the sweep (sweep -dry-run) over a thousand due tickets
// while another gateway takes new mail without pause: it says what the
// sweep would do, each ticket once, instead of failing because its
// transaction, rolled back anyway, conflicted with the other's commits.
func TestSweepDryRunOnPostgresWhileMailArrives(t *testing.T) {
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	relay := relaytest.Start(t)
	a, b := startPGGateway(t, dsn, relay), startPGGateway(t, dsn, relay)
	p := &Policy{Lifecycle: rules.DefaultLifecycle(), ReopenWindow: 7 * 24 * time.Hour}
	st := store.WithDue(a.store, p.Due)
	const n = 1000
	if err := st.UpdateNow(context.Background(), func(tx store.Tx) error {
		for i := range n {
			err := tx.PutTicket(&store.Ticket{ID: fmt.Sprintf("HS-%06d", 900000+i), Status: rules.StatusOpen, Route: "support@example.com",
				Requester: fmt.Sprintf("c%d@customer.example", i), CreatedAt: day0, Clock: rules.Clock{Status: rules.StatusOpen, AwaitingSince: day0}})
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.pipeline.Policy = p
	b.pipeline.Store = store.WithDue(b.store, p.Due)
	sw := &Sweeper{Store: st, Desk: a.pipeline.Desk, Policy: p, Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := sent.Add(1)
				from := fmt.Sprintf("new%d@customer.example", i)
				if _, err := b.pipeline.Deliver(context.Background(), &mailin.Delivery{MailFrom: from, Rcpts: []string{"support@example.com"}, Source: "smtp",
					Raw: msg(from, "support@example.com", "Question", "Hello.", fmt.Sprintf("Message-ID: <new-%d@customer.example>", i))}); err != nil {
					t.Errorf("mail %d: %v", i, err)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	rep, err := sw.Sweep(context.Background(), day(3), true)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("dry run while %d mails arrived: %v", sent.Load(), err)
	}
	reminded := map[string]int{}
	for _, act := range rep.Actions {
		if act.Kind == "reminder" {
			reminded[act.Ticket]++
		}
	}
	if rep.Tickets != n || rep.Mails != n || len(reminded) != n || len(rep.Actions) != n {
		t.Errorf("dry run: %d tickets, %d mails, %d actions reminding %d tickets; want %d of each", rep.Tickets, rep.Mails, len(rep.Actions), len(reminded), n)
	}
	// Nothing was done.
	err = a.store.View(context.Background(), func(tx store.Tx) error {
		out, err := tx.OutboxList(0, 0)
		for _, m := range out {
			if m.Kind == "reminder" {
				t.Errorf("a dry run queued a reminder to %v", m.To)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
