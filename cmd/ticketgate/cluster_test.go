package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/jackc/pgx/v5"

	"ticketgate/mailout/relaytest"
	"ticketgate/store/postgres/pgtest"
)

// cluster is several installations of one deployment: each its own
// directory, config and SMTP port, all on one PostgreSQL database and one
// recording relay.
type cluster struct {
	envs []*env
	dsn  string
}

// newCluster writes n installations whose [store] section holds extra
// (more "key = value" lines) besides the PostgreSQL driver and DSN file.
func newCluster(t *testing.T, n int, extra string) *cluster {
	t.Helper()
	c := &cluster{dsn: pgtest.Start(t).NewDatabase(t)}
	relay := relaytest.Start(t)
	for range n {
		e := &env{t: t, dir: t.TempDir(), smtp: freePort(t), relay: relay}
		e.cfg = e.writeConfig("ticketgate.toml", "")
		e.usePostgres(c.dsn, extra)
		c.envs = append(c.envs, e)
	}
	return c
}

// leaseHolder returns the pid in the owner of lease name ("" owner: 0).
func (c *cluster) leaseHolder(t *testing.T, name string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var owner string
	err = conn.QueryRow(ctx, `SELECT owner FROM leases WHERE name = $1 AND until_ns > $2`, name, time.Now().UnixNano()).Scan(&owner)
	if err == pgx.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(owner, "/")
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// sessionCounter counts the IMAP sessions logged in at once, and the
// most there ever were.
type sessionCounter struct {
	open, most atomic.Int32
	logins     atomic.Int32
}

type countedSession struct {
	*imapmemserver.UserSession
	user   *imapmemserver.User
	c      *sessionCounter
	logged bool
}

func (s *countedSession) Login(username, password string) error {
	if err := s.user.Login(username, password); err != nil {
		return err
	}
	s.logged = true
	s.c.logins.Add(1)
	n := s.c.open.Add(1)
	for {
		m := s.c.most.Load()
		if n <= m || s.c.most.CompareAndSwap(m, n) {
			break
		}
	}
	return nil
}

func (s *countedSession) Close() error {
	if s.logged {
		s.c.open.Add(-1)
	}
	return s.UserSession.Close()
}

// startCountingIMAP is startIMAP counting the sessions logged in.
func startCountingIMAP(t *testing.T) (string, *imapmemserver.User, *sessionCounter) {
	t.Helper()
	user := imapmemserver.NewUser("support", "imap-pw")
	for _, mb := range []string{"INBOX", "Processed"} {
		if err := user.Create(mb, nil); err != nil {
			t.Fatal(err)
		}
	}
	c := &sessionCounter{}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &countedSession{UserSession: imapmemserver.NewUserSession(user), user: user, c: c}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapIdle: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), user, c
}

func appendIMAP(t *testing.T, u *imapmemserver.User, raw []byte) {
	t.Helper()
	if _, err := u.Append("INBOX", bytes.NewReader(raw), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitTickets waits (bounded) until e lists n tickets.
func waitTickets(t *testing.T, e *env, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := len(e.tickets())
		if got == n {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%d tickets after %v, want %d", got, within, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three gateways on one database, one IMAP mailbox in all their configs:
// one instance at a time is logged in to it. When the holder is killed
// (SIGKILL, its lease left to expire), another takes the mailbox over and
// takes the mail that arrived meanwhile, within a few leases.
func TestClusterPollsAMailboxFromOneInstance(t *testing.T) {
	c := newCluster(t, 3, "lease = \"3s\"\n")
	addr, user, sessions := startCountingIMAP(t)
	servers := map[int]*server{}
	for _, e := range c.envs {
		e.addIMAP("support", addr, "poll_every = \"200ms\"")
	}
	for _, e := range c.envs {
		s := e.serve()
		servers[s.cmd.Process.Pid] = s
	}
	for i := range 5 {
		appendIMAP(t, user, message("ann@customer.example", "support@example.com", fmt.Sprintf("Before %d", i), fmt.Sprintf("before-%d@customer.example", i), "help"))
	}
	waitTickets(t, c.envs[0], 5, 30*time.Second)
	time.Sleep(2 * time.Second) // the others keep trying for the lease meanwhile
	holder := c.leaseHolder(t, "imap:support")
	s, ok := servers[holder]
	if !ok {
		t.Fatalf("lease imap:support held by pid %d, not one of the gateways", holder)
	}
	s.cmd.Process.Kill()
	<-s.done
	killed := time.Now()
	for i := range 3 {
		appendIMAP(t, user, message("bob@customer.example", "support@example.com", fmt.Sprintf("After %d", i), fmt.Sprintf("after-%d@customer.example", i), "help"))
	}
	waitTickets(t, c.envs[0], 8, 60*time.Second)
	t.Logf("mail that arrived after the kill taken %v later (lease 3s); %d logins in all", time.Since(killed).Round(100*time.Millisecond), sessions.logins.Load())
	if h := c.leaseHolder(t, "imap:support"); h == holder || servers[h] == nil {
		t.Errorf("lease imap:support held by pid %d after the kill of %d", h, holder)
	}
	if m := sessions.most.Load(); m != 1 {
		t.Errorf("%d sessions were logged in to the mailbox at once, want 1", m)
	}
}

// editConfig replaces the first old in e's config file with new.
func (e *env) editConfig(old, new string) {
	e.t.Helper()
	text, err := os.ReadFile(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(string(text), old) {
		e.t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(e.cfg, []byte(strings.Replace(string(text), old, new, 1)), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// Two gateways that each generated their own keys sign agent and bounce
// addresses the other refuses: check says so, naming both. Given the
// same key files, they agree and check is quiet.
func TestClusterCheckWarnsWhenKeysDiffer(t *testing.T) {
	c := newCluster(t, 2, "")
	for _, e := range c.envs {
		e.serve().stop(t)
	}
	r := c.envs[0].run(nil, "check")
	if r.code != 0 || !strings.Contains(r.stdout, "warning: the gateways sharing this database use different keys") ||
		!strings.Contains(r.stdout, c.envs[0].cfg) || !strings.Contains(r.stdout, c.envs[1].cfg) {
		t.Fatalf("check with two sets of keys: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	shared := t.TempDir()
	for name, content := range map[string]string{"agent.key": "0123456789abcdef0123456789abcdef", "verp.key": "fedcba9876543210fedcba9876543210"} {
		if err := os.WriteFile(filepath.Join(shared, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range c.envs {
		e.editConfig("[outbound]\n", fmt.Sprintf("[outbound]\nverp_key_file = %q\n", filepath.Join(shared, "verp.key")))
		appendConfig(t, e.cfg, fmt.Sprintf("\n[agents]\nsecret_file = %q\n", filepath.Join(shared, "agent.key")))
		e.serve().stop(t)
	}
	r = c.envs[1].run(nil, "check")
	if r.code != 0 || strings.Contains(r.stdout, "warning") || !strings.Contains(r.stdout, "ok") {
		t.Errorf("check with shared keys: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// startTarpit listens on 127.0.0.1 and accepts connections it never
// answers: a relay that hangs.
func startTarpit(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// query runs a one-value query against the cluster's database.
func (c *cluster) query(t *testing.T, q string, dest any, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, q, args...).Scan(dest); err != nil {
		t.Fatal(err)
	}
}

// A gateway whose relay hangs claims auto-replies of the tickets it
// opened (its worker hangs on the first ones) and is SIGKILLed holding
// the claims. Another gateway sends each auto-reply once, the claimed
// ones after their claims expire (lease 3s), all within a minute.
func TestClusterSendsAKilledGatewaysClaimedMail(t *testing.T) {
	c := newCluster(t, 2, "lease = \"3s\"\n")
	a, b := c.envs[0], c.envs[1]
	a.editConfig(fmt.Sprintf("relay = %q", a.relay.Addr), fmt.Sprintf("relay = %q", startTarpit(t)))
	sa := a.serve()
	snd, err := dialSender(a.smtp)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		raw := message(fmt.Sprintf("c%d@customer.example", i), "support@example.com", fmt.Sprintf("Claimed %d", i), fmt.Sprintf("claimed-%d@customer.example", i), "help")
		if err := snd.send(fmt.Sprintf("c%d@customer.example", i), "support@example.com", raw); err != nil {
			t.Fatal(err)
		}
	}
	mine := fmt.Sprintf("%%/%d/%%", sa.cmd.Process.Pid)
	deadline := time.Now().Add(20 * time.Second)
	var claimed, queued int
	for {
		c.query(t, `SELECT count(*) FROM outbox WHERE claimed_by LIKE $1`, &claimed, mine)
		c.query(t, `SELECT count(*) FROM outbox`, &queued)
		if claimed > 0 && queued == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway a claimed %d of the %d auto-replies queued", claimed, queued)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.serve()
	sa.cmd.Process.Kill()
	<-sa.done
	killed := time.Now()
	got := b.relay.WaitFor(n, 60*time.Second)
	took := time.Since(killed)
	time.Sleep(time.Second) // room for a second copy, if one were coming
	t.Logf("%d auto-replies queued, %d claimed by the gateway killed; all sent by the other %v after the kill (lease 3s)", n, claimed, took.Round(100*time.Millisecond))
	if len(got) != n || len(b.relay.Mails()) != n {
		t.Fatalf("relay got %d mails, want the %d auto-replies once each", len(b.relay.Mails()), n)
	}
	seen := map[string]bool{}
	for _, m := range b.relay.Mails() {
		if seen[m.To[0]] {
			t.Errorf("auto-reply to %s sent twice", m.To[0])
		}
		seen[m.To[0]] = true
	}
	var left int
	c.query(t, `SELECT count(*) FROM outbox`, &left)
	if left != 0 {
		t.Errorf("%d mails left in the outbox", left)
	}
}

// Three gateways run their schedulers every second; the sweep runs on the
// one holding its lease, and only there. Resolved tickets close on their
// own after a second, and each closing sends its mail once.
func TestClusterSweepMailSentOnce(t *testing.T) {
	c := newCluster(t, 3, "lease = \"3s\"\n")
	for _, e := range c.envs {
		appendConfig(t, e.cfg, "\n[lifecycle]\nschedule = \"@every 1s\"\nresolved_close_after = \"1s\"\n")
	}
	var ids []string
	for i := range 6 {
		ids = append(ids, c.envs[0].injectOK(message(fmt.Sprintf("s%d@customer.example", i), "support@example.com",
			fmt.Sprintf("Sweep %d", i), fmt.Sprintf("sweep-%d@customer.example", i), "help")))
	}
	for _, id := range ids {
		if r := c.envs[0].run(nil, "status", id, "resolved"); r.code != 0 {
			t.Fatalf("status %s resolved: exit %d, %s", id, r.code, r.stderr)
		}
	}
	before := len(c.envs[0].relay.Mails())
	var servers []*server
	for _, e := range c.envs {
		servers = append(servers, e.serve())
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var open int
		c.query(t, `SELECT count(*) FROM tickets WHERE status <> 'closed'`, &open)
		var queued int
		c.query(t, `SELECT count(*) FROM outbox`, &queued)
		if open == 0 && queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tickets not closed, %d mails queued after 60s", open, queued)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // more sweeps on every gateway: nothing more to send
	seen := map[string]int{}
	perTicket := map[string]int{}
	for _, m := range c.envs[0].relay.Mails() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		seen[msg.Header.Get("Message-ID")]++
		for _, id := range ids {
			if strings.Contains(msg.Header.Get("Subject"), id) {
				perTicket[id]++
			}
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("mail %s sent %d times", id, n)
		}
	}
	t.Logf("relay got %d mails before serve, %d in all; per ticket %v", before, len(c.envs[0].relay.Mails()), perTicket)
	if len(c.envs[0].relay.Mails()) == before {
		t.Error("the sweep sent no mail")
	}
	swept, leased := 0, 0
	for _, s := range servers {
		log := s.stderr.String()
		if strings.Contains(log, "sweep done") {
			swept++
		}
		if strings.Contains(log, `msg="lease taken" part=scheduler lease=sweep`) {
			leased++
		}
	}
	if swept != 1 || leased != 1 {
		t.Errorf("%d gateways swept and %d took the sweep's lease, want 1 and 1", swept, leased)
	}
}

// A gateway serving for longer than check looks back (30 days) without a
// restart is still one of the gateways: another started since with other
// keys makes check warn, naming both.
func TestClusterCheckWarnsOfAGatewayServingForMonths(t *testing.T) {
	c := newCluster(t, 2, "")
	a, b := c.envs[0], c.envs[1]
	appendConfig(t, a.cfg, "\n[lifecycle]\nschedule = \"@every 1s\"\n")
	a.serve()
	// As if a had been serving for 40 days: its report is that old.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	old := time.Now().Add(-40 * 24 * time.Hour).UTC().Format(time.RFC3339Nano)
	if _, err := conn.Exec(ctx, `UPDATE instances SET rec = json_build_object('id', rec->'id', 'fingerprint', rec->'fingerprint', 'seen', $1::text)`, old); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // a few runs of a's scheduler
	b.serve().stop(t)
	r := b.run(nil, "check")
	if r.code != 0 || !strings.Contains(r.stdout, "warning: the gateways sharing this database use different keys") ||
		!strings.Contains(r.stdout, a.cfg) || !strings.Contains(r.stdout, b.cfg) {
		t.Fatalf("check with a gateway serving for 40 days and another with other keys: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
