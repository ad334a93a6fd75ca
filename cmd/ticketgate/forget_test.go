package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt" // only to plant damage the store's API cannot make

	"ticketgate/desk/view"
	"ticketgate/store/postgres/pgtest"
)

// mailWithFile builds a customer's message with a Cc and a PDF attached.
func mailWithFile(from, cc, subject, msgid, body, file string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: support@example.com\r\nCc: %s\r\nSubject: %s\r\n"+
		"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"+
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"+
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"%s\"\r\n\r\n%%PDF-1.4 passport scan\r\n"+
		"--b1--\r\n", from, cc, subject, msgid, body, file))
}

// showJSON is "show -json id" as text, for what must not be in it.
//
// Of the ticket's mail it keeps what each is and whom it is to, not where
// it stands: the outbox may send the ticket's mail between two readings.
func (e *env) showJSON(id string) string {
	e.t.Helper()
	r := e.run(nil, "show", "-json", id)
	if r.code != 0 {
		e.t.Fatalf("show %s: exit %d: %s", id, r.code, r.stderr)
	}
	var tk map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &tk); err != nil {
		e.t.Fatalf("show -json %s: %v", id, err)
	}
	mail, _ := tk["mail"].([]any)
	for _, m := range mail {
		for _, k := range []string{"state", "at", "attempts", "last_error"} {
			delete(m.(map[string]any), k)
		}
	}
	b, err := json.MarshalIndent(tk, "", "  ")
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// search is "tickets -json" with more arguments, as a list of ids.
func (e *env) search(args ...string) []string {
	e.t.Helper()
	r := e.run(nil, "tickets", append([]string{"-json"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("tickets %v: exit %d: %s", args, r.code, r.stderr)
	}
	var list []*view.Ticket
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		e.t.Fatalf("tickets -json: %v\n%s", err, r.stdout)
	}
	var ids []string
	for _, tk := range list {
		ids = append(ids, tk.ID)
	}
	return ids
}

// TestForgetErasesACustomer: forget, handed over to a running serve,
// takes a customer's address, name, texts, attachments and raw copies out
// of every ticket that names them (requester or in Cc), leaves other
// customers' tickets alone, logs who did it, and finds nothing to do the
// second time; after serve stops (the database read afresh), show, search
// and check agree.
func TestForgetErasesACustomer(t *testing.T) {
	e := agentEnv(t, "")
	own := e.injectOK(mailWithFile(`"Ann Example" <Ann@Customer.example>`, "kim@partner.example", "Refund for order 1234",
		"f1@customer.example", "My account number is zanzibar-9931, please refund.", "passport.pdf"),
		"-to", "support@example.com", "-from", "Ann@Customer.example")
	cc := e.injectOK(mailWithFile(`"Bob Other" <bob@other.example>`, "ann@customer.example", "Shared printer",
		"f2@other.example", "The printer on floor 3 jams, copying a colleague.", "jam.pdf"),
		"-to", "support@example.com", "-from", "bob@other.example")
	other := e.injectOK(message(`"Cy Third" <cy@third.example>`, "support@example.com", "Login trouble", "f3@third.example", "My code word is platypus."),
		"-to", "support@example.com", "-from", "cy@third.example")
	before := e.showJSON(other)
	report := func() string {
		t.Helper()
		r := e.run(nil, "report", "-json", "-from", "2020-01-01", "-to", "2100-01-01")
		if r.code != 0 {
			t.Fatalf("report: exit %d: %s", r.code, r.stderr)
		}
		return r.stdout
	}
	reportBefore := report()
	if got := e.search("-q", "zanzibar"); !slices.Equal(got, []string{own}) {
		t.Fatalf("search before forget: %v", got)
	}

	s := e.serve()
	r := e.run(nil, "forget", "-as", "dpo@example.com", "-json", "ANN@customer.example")
	if r.code != 0 {
		t.Fatalf("forget with serve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var res struct {
		Pseudonym string   `json:"pseudonym"`
		Tickets   []string `json:"tickets"`
		Messages  int      `json:"messages_erased"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("forget -json: %v\n%s", err, r.stdout)
	}
	slices.Sort(res.Tickets)
	want := []string{own, cc}
	slices.Sort(want)
	if !strings.HasSuffix(res.Pseudonym, "@forgotten.invalid") || !slices.Equal(res.Tickets, want) || res.Messages < 1 {
		t.Fatalf("forget result %+v, want tickets %v", res, want)
	}
	if r := e.run(nil, "forget", "ann@customer.example"); r.code != 1 || !strings.Contains(r.stderr, "no ticket names ann@customer.example") {
		t.Errorf("second forget: exit %d, stderr %q; want 1, nothing left to erase", r.code, r.stderr)
	}
	if r := e.run(nil, "forget", "Ann Example <ann@customer.example>"); r.code != 64 || !strings.Contains(r.stderr, "not a plain address") {
		t.Errorf("forget of a name and address: exit %d, stderr %q; want 64", r.code, r.stderr)
	}
	if r := e.run(nil, "forget", "support@example.com"); r.code != exDataErr || !strings.Contains(r.stderr, "desk's own") {
		t.Errorf("forget of a routing address: exit %d, stderr %q; want %d", r.code, r.stderr, exDataErr)
	}
	if r := e.run(nil, "forget", "meg@example.com"); r.code != exDataErr || !strings.Contains(r.stderr, "agent") {
		t.Errorf("forget of an agent: exit %d, stderr %q; want %d", r.code, r.stderr, exDataErr)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}

	for _, id := range []string{own, cc} {
		text := strings.ToLower(e.showJSON(id))
		for _, gone := range []string{"ann@customer.example", "ann example", "zanzibar", "passport"} {
			if strings.Contains(text, gone) {
				t.Errorf("%s still holds %q after forget:\n%s", id, gone, text)
			}
		}
		tk := e.show(id)
		ev := lastEvent(tk, "erased")
		if ev == nil || ev.Actor != "dpo@example.com" || !strings.Contains(ev.Detail, res.Pseudonym) || !strings.Contains(ev.Detail, "via the admin API") {
			t.Errorf("%s erased event: %+v", id, ev)
		}
	}
	tk := e.show(own)
	if tk.Requester != res.Pseudonym || tk.Subject != "Refund for order 1234" || tk.Messages[0].Text != "" || len(tk.Messages[0].Attachments) != 0 {
		t.Errorf("requester's ticket after forget: requester %q subject %q first message %+v", tk.Requester, tk.Subject, tk.Messages[0])
	}
	tk = e.show(cc)
	if !slices.Contains(tk.CC, res.Pseudonym) || tk.Requester != "bob@other.example" || !strings.Contains(tk.Messages[0].Text, "floor 3 jams") ||
		len(tk.Messages[0].Attachments) != 1 || !slices.Contains(tk.Messages[0].Cc, res.Pseudonym) {
		t.Errorf("ticket the customer was copied on: cc %v requester %q first message %+v", tk.CC, tk.Requester, tk.Messages[0])
	}
	if after := report(); after != reportBefore {
		t.Errorf("report numbers changed by forget:\nbefore %s\nafter  %s", reportBefore, after)
	}
	if after := e.showJSON(other); after != before {
		t.Errorf("another customer's ticket changed:\nbefore %s\nafter %s", before, after)
	}
	for _, q := range []string{"zanzibar", "ann@customer.example", "passport"} {
		if got := e.search("-q", q); len(got) != 0 {
			t.Errorf("search %q after forget finds %v", q, got)
		}
	}
	if got := e.search("-requester", "ann@customer.example"); len(got) != 0 {
		t.Errorf("tickets -requester of the erased address: %v", got)
	}
	if got := e.search("-q", "platypus"); !slices.Equal(got, []string{other}) {
		t.Errorf("search for another customer's word: %v", got)
	}
	if got := e.search("-requester", res.Pseudonym); !slices.Equal(got, []string{own}) {
		t.Errorf("tickets -requester PSEUDONYM: %v, want %s", got, own)
	}
	if r := e.run(nil, "check"); r.code != 0 {
		t.Errorf("check after forget: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "forget", res.Pseudonym); r.code != exDataErr || !strings.Contains(r.stderr, "erased already") {
		t.Errorf("forget of a pseudonym: exit %d, stderr %q; want %d", r.code, r.stderr, exDataErr)
	}

	// The same address later gets the same pseudonym, without serve.
	again := e.injectOK(message("ann@customer.example", "support@example.com", "Me again", "f4@customer.example", "Hello again."),
		"-to", "support@example.com", "-from", "ann@customer.example")
	r = e.run(nil, "forget", "ann@customer.example")
	if r.code != 0 || !strings.Contains(r.stdout, res.Pseudonym) || !strings.Contains(r.stdout, again) {
		t.Errorf("forget without serve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if ev := lastEvent(e.show(again), "erased"); ev == nil || ev.Actor != "operator" || !strings.Contains(ev.Detail, "via the command line") {
		t.Errorf("erased event without serve: %+v", ev)
	}
}

// TestForgetAPI: POST /api/forget erases, answers the result, and says
// 404, 400 and 422 for an unknown address, a malformed one and the
// desk's own; GET /api/tickets/ID then shows no trace.
func TestForgetAPI(t *testing.T) {
	e := newEnv(t, true)
	id := e.injectOK(message(`"Dee Vee" <dee@customer.example>`, "support@example.com", "Broken screen", "a1@customer.example", "Screen cracked, serial kestrel-55."),
		"-to", "support@example.com", "-from", "dee@customer.example")
	e.serve()
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := e.apiDo("POST", "/api/forget", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post(`{"address":"dee@customer.example"}`)
	var res struct {
		Pseudonym string   `json:"pseudonym"`
		Tickets   []string `json:"tickets"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != http.StatusOK || !slices.Equal(res.Tickets, []string{id}) ||
		!strings.HasSuffix(res.Pseudonym, "@forgotten.invalid") {
		t.Fatalf("POST /api/forget: %d %s", code, body)
	}
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"address":"dee@customer.example"}`, http.StatusNotFound},
		{`{"address":"dee at customer"}`, http.StatusBadRequest},
		{`{"address":"tech@example.com"}`, http.StatusUnprocessableEntity},
		{`{"addr":"dee@customer.example"}`, http.StatusBadRequest},
	} {
		if code, body := post(c.body); code != c.want {
			t.Errorf("POST /api/forget %s: %d %s, want %d", c.body, code, body, c.want)
		}
	}
	resp, err := e.apiGet("/api/tickets/" + id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := strings.ToLower(string(b))
	var tk view.Ticket
	if err := json.Unmarshal(b, &tk); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/tickets/%s after forget: %d %v %s", id, resp.StatusCode, err, b)
	}
	ev := lastEvent(&tk, "erased")
	if strings.Contains(text, "dee@customer.example") || strings.Contains(text, "kestrel") || strings.Contains(text, "dee vee") ||
		tk.Requester != res.Pseudonym || ev == nil || ev.Actor != "operator" || !strings.Contains(ev.Detail, "via the admin API") {
		t.Errorf("GET /api/tickets/%s after forget: %s", id, b)
	}
}

// TestCheckRefusesBadRetention: check (like every command) refuses a
// [retention] closed_after that does not parse, is negative or shorter
// than the reopen window, naming the key; a valid one passes. A VERP key
// (the pseudonym key) that cannot be read is reported.
func TestCheckRefusesBadRetention(t *testing.T) {
	e := newEnv(t, false)
	e.injectOK(message("ed@customer.example", "support@example.com", "Hi", "c1@customer.example", "Hello."),
		"-to", "support@example.com", "-from", "ed@customer.example")
	base, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value string
		code  int
		say   string
	}{
		{`"90 days"`, exConfig, "retention.closed_after \"90 days\" is not a duration"},
		{`"-1h"`, exConfig, "retention.closed_after \"-1h\" is not a duration"},
		{`"72h"`, exConfig, "shorter than tickets.reopen_window (168h0m0s)"},
		{`"2160h"`, 0, "ok, 1 tickets"},
		{`""`, 0, "ok, 1 tickets"},
	} {
		cfg := filepath.Join(e.dir, "retention.toml")
		if err := os.WriteFile(cfg, append(base, []byte("\n[retention]\nclosed_after = "+c.value+"\n")...), 0o600); err != nil {
			t.Fatal(err)
		}
		r := e.runConfig(cfg, nil, "check")
		if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.say) {
			t.Errorf("check with closed_after = %s: exit %d, want %d saying %q\n%s%s", c.value, r.code, c.code, c.say, r.stdout, r.stderr)
		}
	}
	if err := os.WriteFile(filepath.Join(e.dir, "data", "verp.key"), []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.run(nil, "check"); r.code != 1 || !strings.Contains(r.stdout, "verp.key") {
		t.Errorf("check with a broken VERP key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The customer may be the one who asks for the erasure (-as their own
// address, "actor" in the API): the erased event and the log line then
// name them by the pseudonym, not by the address just erased, through
// serve and without it.
func TestForgetAskedByTheCustomerKeepsNoAddress(t *testing.T) {
	e := newEnv(t, true)
	viaServe := e.injectOK(message(`"Eve Ask" <eve@customer.example>`, "support@example.com", "Delete me", "ask-1@customer.example", "Please erase my data."),
		"-to", "support@example.com", "-from", "eve@customer.example")
	s := e.serve()
	r := e.run(nil, "forget", "-as", "Eve@Customer.example", "eve@customer.example")
	if r.code != 0 {
		t.Fatalf("forget through serve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	if line := erasedLogLine(s.stderr.String()); line == "" || strings.Contains(strings.ToLower(line), "eve@customer.example") {
		t.Errorf("serve's log of the erasure names the erased address: %q", line)
	}
	local := e.injectOK(message("fay@customer.example", "support@example.com", "Delete me too", "ask-2@customer.example", "Erase."),
		"-to", "support@example.com", "-from", "fay@customer.example")
	r = e.run(nil, "forget", "-as", "fay@customer.example", "fay@customer.example")
	if line := erasedLogLine(r.stderr); r.code != 0 || line == "" || strings.Contains(line, "fay@customer.example") {
		t.Fatalf("forget without serve: exit %d, its log of the erasure names the erased address?\n%s", r.code, r.stderr)
	}
	for id, addr := range map[string]string{viaServe: "eve@customer.example", local: "fay@customer.example"} {
		tk := e.show(id)
		ev := lastEvent(tk, "erased")
		if text := strings.ToLower(e.showJSON(id)); strings.Contains(text, addr) || ev == nil || ev.Actor != tk.Requester {
			t.Errorf("%s after forget asked by %s: erased event %+v, requester %s; want the pseudonym as actor and no address\n%s", id, addr, ev, tk.Requester, text)
		}
	}
}

// erasedLogLine is the log line of an erasure in log, or "". (The mail
// sent to the customer before it was logged with their address.)
func erasedLogLine(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "personal data erased") {
			return line
		}
	}
	return ""
}

// TestForgetThatCannotCommitAsksToRunItAgain: a forget the database
// refuses to commit (here PostgreSQL refuses every change to a ticket,
// as a full disk or a lost primary would) changes nothing and exits 75,
// run it again; never 1, which says no ticket names the address and
// that there is nothing to erase.
func TestForgetThatCannotCommitAsksToRunItAgain(t *testing.T) {
	c := pgtest.Start(t)
	e := newEnv(t, false)
	e.usePostgres(c.NewDatabase(t), "")
	id := e.injectOK(message("ann@customer.example", "support@example.com", "Printer", "forget-fail@customer.example", "My card is in the printer."))

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$;
		CREATE TRIGGER refuse BEFORE UPDATE ON tickets FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	r := e.run(nil, "forget", "ann@customer.example")
	if r.code != exTempFail {
		t.Errorf("forget the database refused: exit %d, want %d (run it again)\nstdout %s\nstderr %s", r.code, exTempFail, r.stdout, r.stderr)
	}
	if _, err := conn.Exec(ctx, `DROP TRIGGER refuse ON tickets`); err != nil {
		t.Fatal(err)
	}
	if s := e.showJSON(id); !strings.Contains(s, "ann@customer.example") {
		t.Fatalf("the refused forget changed %s:\n%s", id, s)
	}
	if r := e.run(nil, "forget", "ann@customer.example"); r.code != 0 || !strings.Contains(r.stdout, id) {
		t.Errorf("forget run again: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestForgetPassesOverADamagedTicket: a customer one of whose tickets no
// longer decodes (a damaged disk, a -force restore) is erased from the
// others, with the damaged ticket named and exit 74, so the operator
// knows the erasure is not whole; forget exited 75 (run it again) at
// every run, and nothing of the customer was ever erased.
func TestForgetPassesOverADamagedTicket(t *testing.T) {
	e := newEnv(t, true)
	damaged := e.injectOK(message("ann@customer.example", "support@example.com", "Printer", "dmg-1@customer.example", "My code word is zanzibar."))
	readable := e.injectOK(message("ann@customer.example", "support@example.com", "VPN", "dmg-2@customer.example", "My code word is platypus."))
	db, err := bolt.Open(e.dbPath(), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("tickets"))
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if strings.Contains(string(v), damaged) {
				return b.Put(bytes.Clone(k), []byte{1, 0xff, 0xff})
			}
		}
		return fmt.Errorf("no record of %s", damaged)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	for _, run := range []string{"first", "second"} {
		r := e.run(nil, "forget", "-json", "ann@customer.example")
		if r.code != exIOErr || !strings.Contains(r.stderr, damaged) {
			t.Errorf("%s forget with %s damaged: exit %d, want %d naming it\nstdout %s\nstderr %s", run, damaged, r.code, exIOErr, r.stdout, r.stderr)
		}
		var res struct {
			Tickets []string `json:"tickets"`
			Damaged []string `json:"damaged"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%s forget -json: %v\n%s", run, err, r.stdout)
		}
		if len(res.Damaged) != 1 || !strings.Contains(res.Damaged[0], damaged) {
			t.Errorf("%s forget: damaged %q, want %s", run, res.Damaged, damaged)
		}
		if run == "first" && !slices.Equal(res.Tickets, []string{readable}) {
			t.Errorf("first forget erased %v, want %s", res.Tickets, readable)
		}
		if run == "second" && len(res.Tickets) != 0 {
			t.Errorf("second forget erased %v again", res.Tickets)
		}
	}
	s := e.serve()
	r := e.run(nil, "forget", "ann@customer.example")
	if r.code != exIOErr || !strings.Contains(r.stderr, damaged) || !strings.Contains(r.stdout, "erased on 0 tickets") {
		t.Errorf("forget through serve: exit %d, want %d naming %s\nstdout %s\nstderr %s", r.code, exIOErr, damaged, r.stdout, r.stderr)
	}
	s.stop(t)
	if s := e.showJSON(readable); strings.Contains(s, "ann@customer.example") || strings.Contains(s, "platypus") {
		t.Errorf("%s still names the customer:\n%s", readable, s)
	}
}

// TestBackupAfterForgetHoldsNothingErased: a backup taken after forget,
// through serve or from the file, holds none of the erased customer's
// text, file or raw mail; it restores, and the other customer's ticket
// is there whole. bbolt keeps a deleted value's bytes in the pages it
// frees, so a copy of the file's pages kept them all.
func TestBackupAfterForgetHoldsNothingErased(t *testing.T) {
	e := agentEnv(t, "")
	scan := make([]byte, 48<<10) // a photo: no compression shrinks it
	if _, err := rand.Read(scan); err != nil {
		t.Fatal(err)
	}
	encoded := base64.StdEncoding.EncodeToString(scan)
	var body strings.Builder
	for s := encoded; s != ""; s = s[min(76, len(s)):] {
		body.WriteString(s[:min(76, len(s))] + "\r\n")
	}
	msg := []byte("From: ann@customer.example\r\nTo: support@example.com\r\nSubject: Passport\r\n" +
		"Message-ID: <scan1@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nMy passport number is QX-zanzibar-77321.\r\n" +
		"--b1\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; filename=\"passport.jpg\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + body.String() + "--b1--\r\n")
	e.injectOK(msg, "-to", "support@example.com", "-from", "ann@customer.example")
	other := e.injectOK(message(`"Cy Third" <cy@third.example>`, "support@example.com", "Login trouble", "o1@third.example", "My code word is platypus."),
		"-to", "support@example.com", "-from", "cy@third.example")
	otherBefore := e.showJSON(other)
	if r := e.run(nil, "forget", "ann@customer.example"); r.code != 0 {
		t.Fatalf("forget: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	erased := map[string][]byte{
		"the text":     []byte("zanzibar-77321"),
		"the file":     scan[20000:20064],
		"the raw mail": []byte(encoded[76*100 : 76*101]),
		"the address":  []byte("ann@customer.example"),
	}
	holds := func(path string) []string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for what, bytesOf := range erased {
			if bytes.Contains(b, bytesOf) {
				found = append(found, what)
			}
		}
		slices.Sort(found)
		return found
	}

	s := e.serve()
	served := filepath.Join(t.TempDir(), "served.backup")
	r := e.run(nil, "backup", "-o", served)
	if code := s.stop(t); code != 0 || r.code != 0 {
		t.Fatalf("backup through serve: exit %d (serve %d)\n%s%s", r.code, code, r.stdout, r.stderr)
	}
	offline := filepath.Join(t.TempDir(), "offline.backup")
	if r := e.run(nil, "backup", "-o", offline); r.code != 0 {
		t.Fatalf("backup from the file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{served, offline} {
		if found := holds(f); len(found) > 0 {
			t.Errorf("backup %s taken after forget holds %v of the erased customer", filepath.Base(f), found)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(e.dbPath()), ".backup-*"))
	if len(left) > 0 {
		t.Errorf("backup left %v beside the database", left)
	}

	if err := os.Remove(e.dbPath()); err != nil {
		t.Fatal(err)
	}
	if r := e.run(nil, "restore", served); r.code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run(nil, "check"); r.code != 0 {
		t.Fatalf("check after restore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := e.showJSON(other); got != otherBefore {
		t.Errorf("the other customer's ticket after restore:\n%s\nwant\n%s", got, otherBefore)
	}
}
