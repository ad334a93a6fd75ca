package desk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"ticketgate/mailin"
	"ticketgate/mailin/mailintest"
	"ticketgate/store"
)

// memIMAP is go-imap's in-memory IMAP server on 127.0.0.1, with one user.
type memIMAP struct {
	addr string
	user *imapmemserver.User
	srv  *imapserver.Server
}

const memUser, memPassword = "support", "imap-test-password"

func startMemIMAP(t testing.TB) *memIMAP {
	t.Helper()
	return startMemIMAPWith(t, nil)
}

// startMemIMAPWith is startMemIMAP with every session passed through wrap
// (when not nil), to play a server that behaves differently.
func startMemIMAPWith(t testing.TB, wrap func(imapserver.SessionIMAP4rev2) imapserver.Session) *memIMAP {
	t.Helper()
	return startMemIMAPCaps(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}, wrap)
}

// startMemIMAPCaps is startMemIMAPWith offering only caps.
func startMemIMAPCaps(t testing.TB, caps imap.CapSet, wrap func(imapserver.SessionIMAP4rev2) imapserver.Session) *memIMAP {
	t.Helper()
	m := mailintest.StartMemIMAP(t, memUser, memPassword, caps, wrap)
	return &memIMAP{addr: m.Addr, user: m.User, srv: m.Srv}
}

// appendMsg puts raw into mailbox as a mail client would.
func (m *memIMAP) appendMsg(t testing.TB, mailbox string, raw []byte, flags ...imap.Flag) {
	t.Helper()
	if _, err := m.user.Append(mailbox, bytes.NewReader(raw), &imap.AppendOptions{Flags: flags}); err != nil {
		t.Fatalf("append to %s: %v", mailbox, err)
	}
}

// count returns the number of messages and of unseen ones in mailbox (0, 0
// when it does not exist).
func (m *memIMAP) count(t testing.TB, mailbox string) (n, unseen uint32) {
	t.Helper()
	st, err := m.user.Status(mailbox, &imap.StatusOptions{NumMessages: true, NumUnseen: true})
	if err != nil {
		return 0, 0
	}
	return *st.NumMessages, *st.NumUnseen
}

func passwordFile(t testing.TB, pw string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "imap.password")
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (m *memIMAP) config(t testing.TB, after string) mailin.IMAPConfig {
	return mailin.IMAPConfig{Name: "support-box", Addr: m.addr, TLS: "none", Username: memUser,
		PasswordFile: passwordFile(t, memPassword), Route: "support@example.com",
		After: after, MoveTo: "Processed"}
}

func newTestPoller(t testing.TB, g *gateway, cfg mailin.IMAPConfig) *mailin.Poller {
	t.Helper()
	p, err := mailin.NewPoller(cfg, mailin.Intake{Handler: g.pipeline, Store: g.store, Routes: g.pipeline.Routes, Prefix: g.pipeline.Prefix}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout, p.BackoffBase, p.BackoffMax = 5*time.Second, 20*time.Millisecond, 200*time.Millisecond
	return p
}

func runOnce(t testing.TB, p *mailin.Poller) int {
	t.Helper()
	n, err := p.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return n
}

func (g *gateway) checkpoint(name string) store.Checkpoint {
	g.t.Helper()
	var cp store.Checkpoint
	if err := g.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		cp, err = tx.Checkpoint(name)
		return err
	}); err != nil {
		g.t.Fatal(err)
	}
	return cp
}

// autoReplies counts the confirmations the relay got, per recipient.
func (g *gateway) autoReplies() map[string]int {
	g.t.Helper()
	g.settle()
	out := map[string]int{}
	for _, m := range g.relay.Mails() {
		if header(g.t, m.Data).Get("Auto-Submitted") == "auto-replied" {
			out[strings.Join(m.To, ",")]++
		}
	}
	return out
}

func TestIMAPTakesNewMailAndMovesIt(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "Printer on fire", "Help", "Message-ID: <a1@customer.example>"))
	srv.appendMsg(t, "INBOX", msg("bob@customer.example", "support@example.com", "Cannot log in", "Help", "Message-ID: <b1@customer.example>"))

	p := newTestPoller(t, g, srv.config(t, "move"))
	if n := runOnce(t, p); n != 2 {
		t.Fatalf("first run took %d messages, want 2", n)
	}
	list := g.tickets()
	if len(list) != 2 {
		t.Fatalf("%d tickets, want 2", len(list))
	}
	subjects := map[string]string{}
	for _, tk := range list {
		subjects[tk.Subject] = tk.Requester
		if tk.Queue != "support" {
			t.Errorf("ticket %s in queue %q, want support", tk.ID, tk.Queue)
		}
	}
	if subjects["Printer on fire"] != "alice@customer.example" || subjects["Cannot log in"] != "bob@customer.example" {
		t.Errorf("tickets: %v", subjects)
	}
	if n, _ := srv.count(t, "INBOX"); n != 0 {
		t.Errorf("INBOX still holds %d messages after move", n)
	}
	if n, _ := srv.count(t, "Processed"); n != 2 {
		t.Errorf("Processed (created by the poller) holds %d messages, want 2", n)
	}
	if cp := g.checkpoint("support-box"); cp.UIDValidity == 0 || cp.UID != 2 {
		t.Errorf("checkpoint %+v, want UID 2 with a UIDVALIDITY", cp)
	}
	if got := g.autoReplies(); got["alice@customer.example"] != 1 || got["bob@customer.example"] != 1 {
		t.Errorf("auto-replies %v, want one each", got)
	}

	if n := runOnce(t, p); n != 0 {
		t.Errorf("second run took %d messages, want 0", n)
	}
	if n := runOnce(t, newTestPoller(t, g, srv.config(t, "move"))); n != 0 {
		t.Errorf("a fresh poller took %d messages, want 0", n)
	}
	if len(g.tickets()) != 2 {
		t.Errorf("%d tickets after more runs, want 2", len(g.tickets()))
	}
	if st := p.Status(); st.Taken != 2 || st.LastSuccess.IsZero() || st.Connected {
		t.Errorf("status %+v: want taken 2, a last success, disconnected", st)
	}
}

func TestIMAPSeenFlagsAndTakesMailAlreadyRead(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "One", "Help"))
	// A person read this one in their mail client before the gateway saw
	// it; it is above the checkpoint, so it is still taken.
	srv.appendMsg(t, "INBOX", msg("bob@customer.example", "support@example.com", "Two", "Help"), imap.FlagSeen)

	p := newTestPoller(t, g, srv.config(t, "seen"))
	if n := runOnce(t, p); n != 2 {
		t.Fatalf("took %d, want 2", n)
	}
	if n, unseen := srv.count(t, "INBOX"); n != 2 || unseen != 0 {
		t.Errorf("INBOX %d messages %d unseen, want 2 and 0", n, unseen)
	}
	if n, _ := srv.count(t, "Processed"); n != 0 {
		t.Errorf("Processed has %d messages with after = seen", n)
	}
	if n := runOnce(t, newTestPoller(t, g, srv.config(t, "seen"))); n != 0 {
		t.Errorf("second run took %d, want 0", n)
	}
	srv.appendMsg(t, "INBOX", msg("carol@customer.example", "support@example.com", "Three", "Help"))
	if n := runOnce(t, p); n != 1 {
		t.Errorf("third run took %d, want only the new message", n)
	}
	if len(g.tickets()) != 3 {
		t.Errorf("%d tickets, want 3", len(g.tickets()))
	}
}

func TestIMAPDeleteRemovesTakenMail(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "One", "Help"))
	p := newTestPoller(t, g, srv.config(t, "delete"))
	if n := runOnce(t, p); n != 1 {
		t.Fatalf("took %d, want 1", n)
	}
	if n, _ := srv.count(t, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d messages after delete", n)
	}
	if len(g.tickets()) != 1 {
		t.Errorf("%d tickets, want 1", len(g.tickets()))
	}
}

func TestIMAPCrashBetweenCommitAndActionMakesNoDuplicate(t *testing.T) {
	for _, crash := range []string{"panic", "error"} {
		t.Run(crash, func(t *testing.T) {
			g := startGateway(t)
			srv := startMemIMAP(t)
			srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "Printer on fire", "Help"))
			srv.appendMsg(t, "INBOX", msg("bob@customer.example", "support@example.com", "Cannot log in", "Help"))

			p := newTestPoller(t, g, srv.config(t, "move"))
			p.AfterCommit = func(uid uint32) error {
				if crash == "panic" {
					panic(fmt.Sprintf("killed after committing uid %d", uid))
				}
				return errors.New("connection lost")
			}
			_, err := func() (n int, err error) {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				return p.RunOnce(context.Background())
			}()
			if err == nil {
				t.Fatal("the injected crash did not stop the run")
			}
			if len(g.tickets()) != 2 {
				t.Fatalf("%d tickets committed before the crash, want 2", len(g.tickets()))
			}
			if n, _ := srv.count(t, "INBOX"); n != 2 {
				t.Fatalf("INBOX holds %d messages, want both still there after the crash", n)
			}

			if n := runOnce(t, newTestPoller(t, g, srv.config(t, "move"))); n != 2 {
				t.Errorf("restart took %d messages, want 2 (recognised as duplicates)", n)
			}
			if len(g.tickets()) != 2 {
				t.Errorf("%d tickets after restart, want still 2", len(g.tickets()))
			}
			if n, _ := srv.count(t, "INBOX"); n != 0 {
				t.Errorf("INBOX holds %d messages after restart, want 0", n)
			}
			if n, _ := srv.count(t, "Processed"); n != 2 {
				t.Errorf("Processed holds %d, want 2", n)
			}
			if got := g.autoReplies(); got["alice@customer.example"] != 1 || got["bob@customer.example"] != 1 {
				t.Errorf("auto-replies %v, want exactly one each", got)
			}
		})
	}
}

func TestIMAPUIDValidityChangeRescansWithoutDuplicates(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	if err := srv.user.Create("Support", nil); err != nil {
		t.Fatal(err)
	}
	first := msg("alice@customer.example", "support@example.com", "One", "Help")
	second := msg("bob@customer.example", "support@example.com", "Two", "Help")
	srv.appendMsg(t, "Support", first)
	srv.appendMsg(t, "Support", second)
	cfg := srv.config(t, "seen")
	cfg.Mailbox = "Support"
	if n := runOnce(t, newTestPoller(t, g, cfg)); n != 2 {
		t.Fatalf("took %d, want 2", n)
	}
	before := g.checkpoint("support-box")

	// The mailbox is rebuilt (a server migration): same mail, new UIDs,
	// nothing flagged, plus one new message.
	if err := srv.user.Delete("Support"); err != nil {
		t.Fatal(err)
	}
	if err := srv.user.Create("Support", nil); err != nil {
		t.Fatal(err)
	}
	srv.appendMsg(t, "Support", msg("carol@customer.example", "support@example.com", "Three", "Help"))
	srv.appendMsg(t, "Support", second)
	srv.appendMsg(t, "Support", first)

	p := newTestPoller(t, g, cfg)
	if n := runOnce(t, p); n != 3 {
		t.Errorf("rescan took %d, want 3", n)
	}
	if st := p.Status(); st.Duplicates != 2 {
		t.Errorf("rescan recognised %d duplicates, want 2", st.Duplicates)
	}
	list := g.tickets()
	if len(list) != 3 {
		t.Errorf("%d tickets after rescan, want 3", len(list))
	}
	after := g.checkpoint("support-box")
	if after.UIDValidity == before.UIDValidity || after.UID != 3 {
		t.Errorf("checkpoint %+v after rescan (was %+v): want the new UIDVALIDITY and UID 3", after, before)
	}
	if _, unseen := srv.count(t, "Support"); unseen != 0 {
		t.Errorf("%d messages left unseen after the rescan", unseen)
	}
	if n := runOnce(t, p); n != 0 {
		t.Errorf("run after the rescan took %d, want 0", n)
	}
}

func TestIMAPPoisonMessageDoesNotBlockAndEndsInFailedFolder(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", []byte("\r\n   \r\n\r\n")) // nothing a mail parser could read
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "Behind the poison", "Help"))
	cfg := srv.config(t, "move")
	cfg.FailedFolder, cfg.MaxTries = "Failed", 2
	p := newTestPoller(t, g, cfg)

	if n := runOnce(t, p); n != 1 {
		t.Fatalf("first run took %d, want the good message", n)
	}
	if tk := g.onlyTicket(); tk.Subject != "Behind the poison" {
		t.Errorf("ticket %q", tk.Subject)
	}
	if n, _ := srv.count(t, "INBOX"); n != 1 {
		t.Errorf("INBOX holds %d, want the poison message left in place", n)
	}
	if n, _ := srv.count(t, "Failed"); n != 0 {
		t.Errorf("Failed holds %d after one try of %d", n, cfg.MaxTries)
	}
	if st := p.Status(); st.LeftInPlace != 1 || !strings.Contains(st.LastError, "not an e-mail") {
		t.Errorf("status %+v: want one message left in place and the parse error", st)
	}

	if n := runOnce(t, p); n != 0 {
		t.Errorf("second run took %d, want 0", n)
	}
	if n, _ := srv.count(t, "Failed"); n != 1 {
		t.Errorf("Failed holds %d after %d tries, want the poison message", n, cfg.MaxTries)
	}
	if n, _ := srv.count(t, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d, want 0", n)
	}
	if st := p.Status(); st.Failed != 1 || st.LeftInPlace != 0 {
		t.Errorf("status %+v: want failed 1, none left", st)
	}
	if len(g.tickets()) != 1 {
		t.Errorf("%d tickets, want 1", len(g.tickets()))
	}
}

// The tries of a message that cannot be taken are kept in the database:
// a restarted poller (or another instance polling the mailbox next)
// carries on counting, and the message reaches the failed folder after
// max_tries in all, not max_tries per process.
func TestIMAPPoisonTriesCountAcrossRestarts(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", []byte("\r\n   \r\n\r\n"))
	cfg := srv.config(t, "move")
	cfg.FailedFolder, cfg.MaxTries = "Failed", 2
	runOnce(t, newTestPoller(t, g, cfg))
	if n, _ := srv.count(t, "Failed"); n != 0 {
		t.Fatalf("Failed holds %d after one try of %d", n, cfg.MaxTries)
	}
	restarted := newTestPoller(t, g, cfg)
	if st := restarted.Status(); st.LeftInPlace != 0 {
		t.Errorf("status before the first run %+v", st)
	}
	runOnce(t, restarted)
	if n, _ := srv.count(t, "Failed"); n != 1 {
		t.Errorf("Failed holds %d after a second try by a restarted poller, want the poison message", n)
	}
	if n, _ := srv.count(t, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d, want 0", n)
	}
}

func TestIMAPRoutesByHeaderRecipients(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "someone@else.example", "Invoice wrong", "Help",
		"Delivered-To: billing@example.com", "Message-ID: <billing@customer.example>"))
	srv.appendMsg(t, "INBOX", msg("bob@customer.example", "undisclosed-recipients:;", "No route named", "Help",
		"Message-ID: <plain@customer.example>"))
	if n := runOnce(t, newTestPoller(t, g, srv.config(t, "move"))); n != 2 {
		t.Fatalf("took %d, want 2", n)
	}
	queues := map[string]string{}
	for _, tk := range g.tickets() {
		queues[tk.Subject] = tk.Queue + " " + tk.Route
	}
	if queues["Invoice wrong"] != "billing billing@example.com" || queues["No route named"] != "support support@example.com" {
		t.Errorf("queues %v: want Delivered-To to pick billing, and the mailbox route otherwise", queues)
	}
}

// Mail taken from a mailbox without a Return-Path has the sender its From
// names, read as every other path reads it: a From of the shape "Name
// address", which the ticket takes as its requester, is a customer
// writing, who gets the confirmation, not mail from the null sender.
func TestIMAPSenderWithoutReturnPathIsReadAsFromIs(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("Alice alice@customer.example", "support@example.com", "Printer on fire", "Help"))
	srv.appendMsg(t, "INBOX", msg("bob@customer.example", "support@example.com", "Cannot log in", "Help"))
	if n := runOnce(t, newTestPoller(t, g, srv.config(t, "move"))); n != 2 {
		t.Fatalf("took %d, want 2", n)
	}
	if got := g.autoReplies(); got["alice@customer.example"] != 1 || got["bob@customer.example"] != 1 {
		t.Errorf("auto-replies %v, want one each to alice@ and bob@", got)
	}
}

func TestIMAPThreadOrderKeptWithParallelDelivery(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	// Many unrelated messages around an original and its reply: with
	// deliveries in parallel the reply must still join the original.
	for i := range 20 {
		srv.appendMsg(t, "INBOX", msg(fmt.Sprintf("c%d@customer.example", i), "support@example.com", fmt.Sprintf("Other %d", i), "x"))
	}
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "Original", "first", "Message-ID: <orig@customer.example>"))
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "Re: Original", "second",
		"Message-ID: <reply@customer.example>", "In-Reply-To: <orig@customer.example>", "References: <orig@customer.example>"))
	p := newTestPoller(t, g, srv.config(t, "move"))
	p.Parallel = 8
	if n := runOnce(t, p); n != 22 {
		t.Fatalf("took %d, want 22", n)
	}
	if len(g.tickets()) != 21 {
		t.Errorf("%d tickets, want 21 (the reply joins the original)", len(g.tickets()))
	}
}

func TestIMAPIdleTakesNewMailWithinSeconds(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	p := newTestPoller(t, g, srv.config(t, "move"))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	waitFor(t, 5*time.Second, "poller connected and idling", func() bool {
		st := p.Status()
		return st.Connected && st.Idle && !st.LastSuccess.IsZero()
	})
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "Arrived while idling", "Help"))
	waitFor(t, 5*time.Second, "ticket from the idle notification", func() bool { return len(g.tickets()) == 1 })
	waitFor(t, 5*time.Second, "message moved", func() bool { n, _ := srv.count(t, "Processed"); return n == 1 })
}

// waitFor polls cond until it holds; limit is a failure bound, not a delay.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIMAPConfigRefusesUnsafeOrIncompleteSettings(t *testing.T) {
	pw := passwordFile(t, "secret")
	good := mailin.IMAPConfig{Name: "box", Addr: "127.0.0.1:143", TLS: "none", Username: "u", PasswordFile: pw,
		Route: "support@example.com", After: "move", MoveTo: "Done"}
	if c, err := good.Check(testRoutes); err != nil || c.Mailbox != "INBOX" || c.MaxTries != mailin.DefaultMaxTries {
		t.Fatalf("good config: %+v %v", c, err)
	}
	for _, tc := range []struct {
		change func(*mailin.IMAPConfig)
		want   string
	}{
		{func(c *mailin.IMAPConfig) { c.Addr = "imap.example.com:143" }, `tls "none" is only allowed to a loopback address`},
		{func(c *mailin.IMAPConfig) { c.TLS = "maybe" }, `tls "maybe" must be`},
		{func(c *mailin.IMAPConfig) { c.PasswordFile = "" }, "password_file must be set"},
		{func(c *mailin.IMAPConfig) { c.PasswordFile = filepath.Join(t.TempDir(), "missing") }, "password_file"},
		{func(c *mailin.IMAPConfig) { c.Route = "nobody@example.com" }, "not a configured [[route]]"},
		{func(c *mailin.IMAPConfig) { c.Route = "support+x@example.com" }, "not a configured [[route]]"},
		{func(c *mailin.IMAPConfig) { c.After = "archive" }, `after "archive" must be`},
		{func(c *mailin.IMAPConfig) { c.MoveTo = "" }, "needs move_to"},
		{func(c *mailin.IMAPConfig) { c.PollEvery = "soon" }, "poll_every"},
		{func(c *mailin.IMAPConfig) { c.Addr = "nohostport" }, "must be host:port"},
	} {
		c := good
		tc.change(&c)
		_, err := c.Check(testRoutes)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `imap "box"`) {
			t.Errorf("config %+v: error %v, want one naming the mailbox and %q", c, err, tc.want)
		}
	}
}

// In "seen" mode a message that failed for a passing reason is retried even
// when a person read it in the meantime: \Seen is not what says "taken".
func TestIMAPSeenModeRetriesAMessageAPersonReadAfterItFailed(t *testing.T) {
	g := startGateway(t)
	g.pipeline.Policies = Policies{PerSender: 1}
	// Dan has used up his hourly share: his mail in the mailbox (UID 1)
	// fails for now, while Eve's behind it (UID 2) is taken.
	g.mustSend("dan@customer.example", []string{"support@example.com"}, msg("dan@customer.example", "support@example.com", "Zero", "by smtp"))
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("dan@customer.example", "support@example.com", "One", "first"))
	srv.appendMsg(t, "INBOX", msg("eve@customer.example", "support@example.com", "Two", "second"))
	p := newTestPoller(t, g, srv.config(t, "seen"))
	if n := runOnce(t, p); n != 1 {
		t.Fatalf("took %d, want 1 (dan's is over the sender's rate)", n)
	}
	// A person reads everything in the shared mailbox.
	c, err := imapclient.DialInsecure(srv.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(memUser, memPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	g.pipeline.Policies = Policies{}
	if n := runOnce(t, newTestPoller(t, g, srv.config(t, "seen"))); n != 1 {
		t.Fatalf("retry took %d, want the message that failed", n)
	}
	if n := len(g.tickets()); n != 3 {
		t.Errorf("%d tickets, want 3", n)
	}
}

// noKeywords is a server session whose mailboxes keep no keywords: its
// PERMANENTFLAGS lack \*, as on some hosted mail services.
type noKeywords struct{ imapserver.SessionIMAP4rev2 }

func (s noKeywords) Select(name string, o *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := s.SessionIMAP4rev2.Select(name, o)
	if d != nil {
		d.PermanentFlags = []imap.Flag{imap.FlagSeen, imap.FlagDeleted}
	}
	return d, err
}

// committer is a Handler that commits each message's checkpoint and keeps
// its text, and fails for now every message containing fail while it is set.
type committer struct {
	store store.Store
	mu    sync.Mutex
	fail  string
	taken []string
}

func (c *committer) Deliver(ctx context.Context, d *mailin.Delivery) (mailin.Result, error) {
	c.mu.Lock()
	fail := c.fail
	c.mu.Unlock()
	if fail != "" && bytes.Contains(d.Raw, []byte(fail)) {
		return mailin.Result{}, errors.New("database busy")
	}
	if err := c.store.Update(ctx, func(tx store.Tx) error { return tx.PutCheckpoint(*d.Checkpoint) }); err != nil {
		return mailin.Result{}, err
	}
	c.mu.Lock()
	c.taken = append(c.taken, string(d.Raw))
	c.mu.Unlock()
	return mailin.Result{}, nil
}

func (c *committer) Accepts(string) bool { return true }

// A message a person already read that fails for a passing reason is
// still taken later, on a server that keeps no keywords.
func TestIMAPSeenModeWithoutKeywordsTakesReadMailThatFailedOnce(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAPWith(t, func(s imapserver.SessionIMAP4rev2) imapserver.Session { return noKeywords{s} })
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "One", "FIRST"), imap.FlagSeen)
	srv.appendMsg(t, "INBOX", msg("bob@customer.example", "support@example.com", "Two", "SECOND"))
	h := &committer{store: g.store, fail: "FIRST"}
	p, err := mailin.NewPoller(srv.config(t, "seen"), mailin.Intake{Handler: h, Store: g.store, Routes: g.pipeline.Routes, Prefix: g.pipeline.Prefix}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = 5 * time.Second
	if n := runOnce(t, p); n != 1 {
		t.Fatalf("took %d, want 1 while the first message fails", n)
	}
	h.mu.Lock()
	h.fail = ""
	h.mu.Unlock()
	runOnce(t, p)
	if n := runOnce(t, p); n != 0 {
		t.Errorf("a run with nothing new took %d again", n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.ContainsFunc(h.taken, func(raw string) bool { return strings.Contains(raw, "FIRST") }) {
		t.Errorf("the message that failed once was never taken; taken: %d messages", len(h.taken))
	}
}

// flagNews is a server that reports, once, a flag change another client
// made to message 1 in the middle of the poller's FETCH, as Dovecot does.
type flagNews struct {
	imapserver.SessionIMAP4rev2
	sent *atomic.Bool
}

func (s flagNews) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	if len(o.BodySection) > 0 && !s.sent.Swap(true) {
		m := w.CreateMessage(1)
		m.WriteUID(1)
		m.WriteFlags([]imap.Flag{imap.FlagSeen})
		if err := m.Close(); err != nil {
			return err
		}
	}
	return s.SessionIMAP4rev2.Fetch(w, set, o)
}

// A flag change reported during the FETCH is not taken for an unreadable
// message: the message is taken later, not moved to the failed folder.
func TestIMAPFlagChangeDuringFetchDoesNotSendMailToFailedFolder(t *testing.T) {
	g := startGateway(t)
	var sent atomic.Bool
	srv := startMemIMAPWith(t, func(s imapserver.SessionIMAP4rev2) imapserver.Session { return flagNews{s, &sent} })
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "Read by a colleague", "Help"))
	cfg := srv.config(t, "seen")
	cfg.FailedFolder, cfg.MaxTries = "Failed", 1
	p := newTestPoller(t, g, cfg)
	if n := runOnce(t, p) + runOnce(t, p); n != 1 {
		t.Errorf("took %d in two runs, want 1", n)
	}
	if st := p.Status(); st.Failed != 0 || st.LastError != "" {
		t.Errorf("status %+v: want no failure", st)
	}
	if n, _ := srv.count(t, "Failed"); n != 0 {
		t.Errorf("Failed holds %d, want 0", n)
	}
	if len(g.tickets()) != 1 {
		t.Errorf("%d tickets, want 1", len(g.tickets()))
	}
}

// With IDLE, a message that failed for a passing reason is tried again
// after poll_every, not only when new mail arrives or IDLE restarts.
func TestIMAPIdleRetriesAFailedMessageWithoutWaitingForNewMail(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "One", "FIRST"))
	h := &committer{store: g.store, fail: "FIRST"}
	cfg := srv.config(t, "move")
	cfg.PollEvery = "100ms"
	p, err := mailin.NewPoller(cfg, mailin.Intake{Handler: h, Store: g.store, Routes: g.pipeline.Routes, Prefix: g.pipeline.Prefix}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	waitFor(t, 5*time.Second, "the first try failing", func() bool { return p.Status().LastError != "" })
	h.mu.Lock()
	h.fail = ""
	h.mu.Unlock()
	waitFor(t, 5*time.Second, "the message taken on a later try", func() bool { n, _ := srv.count(t, "Processed"); return n == 1 })
}

// With IDLE, a message that failed for good but has tries left is tried
// again after poll_every, as a message that failed for now is, and so
// reaches the failed folder after max_tries without waiting for new mail.
func TestIMAPIdleRetriesAPoisonMessageAfterPollEvery(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	srv.appendMsg(t, "INBOX", []byte("\r\n   \r\n\r\n")) // nothing a mail parser could read
	cfg := srv.config(t, "move")
	cfg.FailedFolder, cfg.MaxTries, cfg.PollEvery = "Failed", 2, "100ms"
	p := newTestPoller(t, g, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	waitFor(t, 5*time.Second, "the poison message in the failed folder after 2 tries 100ms apart", func() bool {
		n, _ := srv.count(t, "Failed")
		return n == 1
	})
}

// copyRefused is a server that refuses to copy into Failed (over quota).
type copyRefused struct{ imapserver.SessionIMAP4rev2 }

func (s copyRefused) Copy(set imap.NumSet, dest string) (*imap.CopyData, error) {
	if dest == "Failed" {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "over quota"}
	}
	return s.SessionIMAP4rev2.Copy(set, dest)
}

// On a server without MOVE, a poison message whose copy to the failed
// folder is refused stays in the mailbox instead of being deleted.
func TestIMAPFailedFolderCopyRefusedKeepsThePoisonMessage(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAPCaps(t, imap.CapSet{imap.CapIMAP4rev1: {}}, func(s imapserver.SessionIMAP4rev2) imapserver.Session { return copyRefused{s} })
	srv.appendMsg(t, "INBOX", []byte("\r\n   \r\n\r\n"))
	cfg := srv.config(t, "move")
	cfg.FailedFolder, cfg.MaxTries = "Failed", 1
	for range 2 {
		newTestPoller(t, g, cfg).RunOnce(context.Background())
	}
	time.Sleep(100 * time.Millisecond) // commands the poller sent after the refused copy
	if n, _ := srv.count(t, "INBOX"); n != 1 {
		t.Errorf("INBOX holds %d, want the poison message kept", n)
	}
}

// failedFull is a server whose Failed folder is over quota.
type failedFull struct{ imapserver.SessionIMAP4rev2 }

func (s failedFull) Move(w *imapserver.MoveWriter, set imap.NumSet, dest string) error {
	if dest == "Failed" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "over quota"}
	}
	return s.SessionIMAP4rev2.Move(w, set, dest)
}

// A poison message the failed folder refuses stays in place and does not
// stop the poller from taking the mail behind it.
func TestIMAPFailedFolderRefusingPoisonDoesNotBlockNewMail(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAPWith(t, func(s imapserver.SessionIMAP4rev2) imapserver.Session { return failedFull{s} })
	srv.appendMsg(t, "INBOX", []byte("\r\n   \r\n\r\n"))
	cfg := srv.config(t, "move")
	cfg.FailedFolder, cfg.MaxTries = "Failed", 1
	p := newTestPoller(t, g, cfg)
	p.RunOnce(context.Background()) // the poison message uses up its try
	srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", "Behind the poison", "Help"))
	if n, err := p.RunOnce(context.Background()); n != 1 || err != nil {
		t.Errorf("took %d (%v), want the new message", n, err)
	}
	if n, _ := srv.count(t, "INBOX"); n != 1 {
		t.Errorf("INBOX holds %d, want the poison message left in place", n)
	}
	if st := p.Status(); st.LeftInPlace != 1 || !strings.Contains(st.LastError, "over quota") {
		t.Errorf("status %+v: want the poison message left in place and the refusal", st)
	}
}

// uidLast is a server that writes a message's UID after its body in a
// FETCH response, which IMAP allows (RFC 3501 7.4.2 sets no order) and
// some servers do. raws holds each message by UID.
type uidLast struct {
	imapserver.SessionIMAP4rev2
	raws map[imap.UID][]byte
}

func (s uidLast) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	if len(o.BodySection) != 1 {
		return s.SessionIMAP4rev2.Fetch(w, set, o)
	}
	all, err := s.Search(imapserver.NumKindUID, &imap.SearchCriteria{}, &imap.SearchOptions{ReturnAll: true})
	if err != nil {
		return err
	}
	for i, uid := range all.AllUIDs() {
		seq := uint32(i + 1)
		switch set := set.(type) {
		case imap.UIDSet:
			if !set.Contains(uid) {
				continue
			}
		case imap.SeqSet:
			if !set.Contains(seq) {
				continue
			}
		}
		raw := s.raws[uid]
		m := w.CreateMessage(seq)
		wc := m.WriteBodySection(o.BodySection[0], int64(len(raw)))
		if _, err := wc.Write(raw); err != nil {
			return err
		}
		wc.Close()
		m.WriteUID(uid)
		if err := m.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Mail on a server that sends the UID after the body becomes tickets and
// is moved, and a message over the size limit goes to the failed folder:
// the IMAP library cannot tell which UID FETCH such a response answers
// and drops it, and the mail stayed in the mailbox for ever while each
// pass reported a success.
func TestIMAPTakesMailFromAServerThatSendsTheUIDAfterTheBody(t *testing.T) {
	g := startGateway(t)
	raws := map[imap.UID][]byte{
		1: msg("alice@customer.example", "support@example.com", "Printer on fire", "Help", "Message-ID: <a1@customer.example>"),
		2: msg("bob@customer.example", "support@example.com", "Cannot log in", "Help", "Message-ID: <b1@customer.example>"),
		3: msg("carol@customer.example", "support@example.com", "Large", strings.Repeat("x", 8000), "Message-ID: <c1@customer.example>"),
	}
	srv := startMemIMAPWith(t, func(s imapserver.SessionIMAP4rev2) imapserver.Session { return uidLast{s, raws} })
	for uid := range imap.UID(len(raws)) {
		srv.appendMsg(t, "INBOX", raws[uid+1])
	}
	cfg := srv.config(t, "move")
	cfg.FailedFolder, cfg.MaxTries = "Failed", 1
	p := newTestPoller(t, g, cfg)
	p.MaxBytes = 4000
	if n := runOnce(t, p); n != 2 {
		t.Errorf("took %d messages, want 2", n)
	}
	if n := len(g.tickets()); n != 2 {
		t.Errorf("%d tickets, want 2", n)
	}
	if n, _ := srv.count(t, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d, want every message moved", n)
	}
	if n, _ := srv.count(t, "Processed"); n != 2 {
		t.Errorf("Processed holds %d, want 2", n)
	}
	runOnce(t, p)
	if n, _ := srv.count(t, "Failed"); n != 1 {
		t.Errorf("Failed holds %d, want the message over the limit", n)
	}
}

// A failed folder renamed (or deleted) while the poller runs is made
// again when a message is to go there, as it is made when the poller
// connects: the poison message stayed in the mailbox, refused "no such
// mailbox", for as long as the connection lasted.
func TestIMAPFailedFolderRenamedWhileRunningIsMadeAgain(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAP(t)
	cfg := srv.config(t, "move")
	cfg.FailedFolder, cfg.MaxTries, cfg.PollEvery = "Failed", 1, "100ms"
	p := newTestPoller(t, g, cfg)
	runPoller(t, p)
	waitFor(t, 5*time.Second, "poller connected and idling", func() bool {
		st := p.Status()
		return st.Connected && st.Idle && !st.LastSuccess.IsZero()
	})
	if err := srv.user.Rename("Failed", "Failed 2026", nil); err != nil {
		t.Fatal(err)
	}
	srv.appendMsg(t, "INBOX", []byte("\r\n   \r\n\r\n")) // nothing a mail parser could read
	waitFor(t, 5*time.Second, "the poison message in a new failed folder", func() bool {
		n, _ := srv.count(t, "Failed")
		return n == 1
	})
	if n, _ := srv.count(t, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d, want 0", n)
	}
}

// unservable is a server that cannot send message 2's body, as Gmail
// answers "NO Some messages could not be FETCHed (Failure)" for a message
// it holds damaged: a FETCH of its body writes the other messages and
// ends in that NO.
type unservable struct{ imapserver.SessionIMAP4rev2 }

func (s unservable) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	if len(o.BodySection) == 0 {
		return s.SessionIMAP4rev2.Fetch(w, set, o)
	}
	all, err := s.Search(imapserver.NumKindUID, &imap.SearchCriteria{}, &imap.SearchOptions{ReturnAll: true})
	if err != nil {
		return err
	}
	var rest imap.UIDSet
	for i, uid := range all.AllUIDs() {
		if seqs, ok := set.(imap.SeqSet); (ok && seqs.Contains(uint32(i+1))) || (!ok && set.(imap.UIDSet).Contains(uid)) {
			if uid != 2 {
				rest.AddNum(uid)
			}
		}
	}
	if len(rest) > 0 {
		if err := s.SessionIMAP4rev2.Fetch(w, rest, o); err != nil {
			return err
		}
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Some messages could not be FETCHed (Failure)"}
}

// A message the server cannot send does not hold up the mail beside it,
// and reaches the failed folder after max_tries, as README promises of a
// message that cannot be read. The NO it ends the FETCH with ended the
// session: the mail fetched with it was never moved (a duplicate on
// every later pass), and the mail behind it was never fetched.
func TestIMAPMessageTheServerCannotSendDoesNotHoldUpTheRest(t *testing.T) {
	g := startGateway(t)
	srv := startMemIMAPWith(t, func(s imapserver.SessionIMAP4rev2) imapserver.Session { return unservable{s} })
	for _, s := range []string{"One", "Damaged", "Three"} {
		srv.appendMsg(t, "INBOX", msg("alice@customer.example", "support@example.com", s, "Help"))
	}
	cfg := srv.config(t, "move")
	cfg.FailedFolder, cfg.MaxTries = "Failed", 2
	p := newTestPoller(t, g, cfg)
	p.Batch = 2 // the third message is in the next batch
	if n, err := p.RunOnce(context.Background()); err != nil || n != 2 {
		t.Errorf("took %d (%v), want the two messages the server sends", n, err)
	}
	if n, _ := srv.count(t, "Processed"); n != 2 {
		t.Errorf("Processed holds %d, want 2", n)
	}
	srv.appendMsg(t, "INBOX", msg("bob@customer.example", "support@example.com", "Four", "Help"))
	if n := runOnce(t, p); n != 1 {
		t.Errorf("second run took %d, want the new message", n)
	}
	if n, _ := srv.count(t, "Failed"); n != 1 {
		t.Errorf("Failed holds %d after %d tries, want the message the server cannot send", n, cfg.MaxTries)
	}
	if n, _ := srv.count(t, "INBOX"); n != 0 {
		t.Errorf("INBOX holds %d, want 0", n)
	}
	if n := len(g.tickets()); n != 3 {
		t.Errorf("%d tickets, want 3", n)
	}
}
