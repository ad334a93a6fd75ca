package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"ticketgate/mailin/mailintest"
)

// startIMAP runs go-imap's in-memory server on 127.0.0.1 with one user
// and an INBOX.
func startIMAP(t *testing.T) (addr string, user *imapmemserver.User) {
	t.Helper()
	m := mailintest.StartMemIMAP(t, "support", "imap-pw", nil, nil)
	return m.Addr, m.User
}

func messages(t *testing.T, u *imapmemserver.User, mailbox string) uint32 {
	t.Helper()
	st, err := u.Status(mailbox, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		return 0
	}
	return *st.NumMessages
}

// addIMAP appends an [[imap]] section (extra are more "key = value" lines)
// to the installation's config; the password goes into a file.
func (e *env) addIMAP(name, addr string, extra ...string) {
	e.t.Helper()
	pw := filepath.Join(e.dir, name+".password")
	if err := os.WriteFile(pw, []byte("imap-pw\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	text := fmt.Sprintf("\n[[imap]]\nname = %q\naddr = %q\ntls = \"none\"\nusername = \"support\"\npassword_file = %q\n"+
		"route = \"support@example.com\"\nafter = \"move\"\nmove_to = \"Processed\"\n%s\n", name, addr, pw, strings.Join(extra, "\n"))
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		e.t.Fatal(err)
	}
}

func TestServePollsIMAPAndStatusShowsTheMailbox(t *testing.T) {
	addr, user := startIMAP(t)
	raw := message("alice@customer.example", "support@example.com", "Printer on fire", "imap-1@customer.example", "It burns.")
	if _, err := user.Append("INBOX", bytes.NewReader(raw), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, true)
	e.addIMAP("support-box", addr)
	s := e.serve()

	deadline := time.Now().Add(10 * time.Second)
	for messages(t, user, "Processed") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the message was not taken and moved within 10s:\n%s", s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	list := e.tickets()
	if len(list) != 1 || list[0].Subject != "Printer on fire" || list[0].Requester != "alice@customer.example" {
		t.Fatalf("tickets %+v, want the one from the mailbox", list)
	}

	r := e.run(nil, "status")
	if r.code != 0 {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"gateway: serving", "mailbox support-box (INBOX on " + addr + ")", "connected, idle",
		"taken: 1 (0 already known)", "outbox: ", "checkpoint: uidvalidity "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.stdout)
		}
	}

	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	r = e.run(nil, "status")
	if r.code != 0 {
		t.Fatalf("status without serve: exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"not running", "only checkpoints from the database", "uid 1\n", "outbox: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status without serve lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "connected") {
		t.Errorf("status without serve claims to know the connection:\n%s", r.stdout)
	}
}

func TestServeRefusesBadIMAPConfigNamingTheMailbox(t *testing.T) {
	for _, tc := range []struct {
		extra []string
		addr  string
		want  string
	}{
		{nil, "imap.example.net:143", `imap "box": tls "none" is only allowed to a loopback address`},
		{[]string{`max_tries = -1`}, "127.0.0.1:143", `imap "box": max_tries -1`},
	} {
		e := newEnv(t, false)
		e.addIMAP("box", tc.addr, tc.extra...)
		r := e.run(nil, "serve")
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("serve with %s %v: exit %d, stderr %q, want an error with %q", tc.addr, tc.extra, r.code, r.stderr, tc.want)
		}
	}
}

func TestIMAPPasswordIsNeverInline(t *testing.T) {
	e := newEnv(t, false)
	e.addIMAP("box", "127.0.0.1:143", `password = "hunter2"`)
	r := e.run(nil, "status")
	if r.code == 0 || !strings.Contains(r.stderr, `unknown key "imap.password"`) {
		t.Errorf("exit %d, stderr %q: want the inline password refused by name", r.code, r.stderr)
	}
}

func TestStatusWithTicketArgumentsIsTheStatusAction(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "missing.toml")
	args := []string{"-config", cfg, "HS-000001", "open"}
	var got, want bytes.Buffer
	errGot := runStatus(context.Background(), args, nil, &got)
	errWant := runAction("status")(context.Background(), args, nil, &want)
	if fmt.Sprint(errGot) != fmt.Sprint(errWant) || got.String() != want.String() {
		t.Errorf("status with a ticket: %v %q; the status action: %v %q", errGot, got.String(), errWant, want.String())
	}
	if strings.Contains(got.String(), "outbox") {
		t.Errorf("status with a ticket printed the gateway status:\n%s", got.String())
	}
}

// TestIMAPMailboxNamedTwiceIsAConfigError: two [[imap]] mailboxes of one
// name would share its checkpoint and lease; the configuration is
// refused when it is loaded, by any command, before serve opens a
// listener.
func TestIMAPMailboxNamedTwiceIsAConfigError(t *testing.T) {
	e := newEnv(t, true)
	e.addIMAP("support-box", "127.0.0.1:1143")
	e.addIMAP("support-box", "127.0.0.1:1144")
	probe := message("x@customer.example", "support@example.com", "Probe", "p1@customer.example", "Hi.")
	// inject with 75, so that Postfix keeps the mail until the fix.
	if r := e.run(probe, "inject", "-to", "support@example.com"); r.code != exTempFail || !strings.Contains(r.stderr, `imap "support-box" is listed twice`) {
		t.Errorf("inject: exit %d, stderr %q; want %d and the name listed twice", r.code, r.stderr, exTempFail)
	}
	if r := e.run(nil, "serve"); r.code != exConfig || !strings.Contains(r.stderr, `imap "support-box" is listed twice`) {
		t.Errorf("serve: exit %d, stderr %q; want %d and the name listed twice", r.code, r.stderr, exConfig)
	}
}
