package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// answer is one HTTP answer read to the end.
type answer struct {
	code int
	body string
}

// send sends a request to the admin API at addr with the given headers
// ("Host" sets the Host line) and reads the answer.
func send(t *testing.T, method, url, body string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b)}
}

// A page in the operator's browser can POST text/plain to 127.0.0.1
// without a preflight. Whatever it sends, with or without the token it
// cannot have, nothing changes; the token file is the owner's alone.
func TestAdminRefusesCrossSiteFormPosts(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	id := e.injectOK(message("kim@customer.example", "support@example.com", "Cross-site", "xs-1@customer.example", "x"), "-to", "support@example.com")
	before := e.show(id)
	fi, err := os.Stat(filepath.Join(e.dir, "data", "admin.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token: %v, mode %v; want 0600", err, fi.Mode())
	}
	base := "http://" + e.admin
	closeBody := `{"action":"status","value":"closed"}`
	bearer := "Bearer " + e.token()
	for _, c := range []struct {
		what, path, body string
		header           map[string]string
		want             int
	}{
		{"form post from a page", "/api/tickets/" + id + "/actions", closeBody,
			map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}, http.StatusForbidden},
		{"form post with the token", "/api/tickets/" + id + "/actions", closeBody,
			map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example", "Authorization": bearer}, http.StatusForbidden},
		{"JSON from another local port", "/api/tickets/" + id + "/actions", closeBody,
			map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:3000", "Authorization": bearer}, http.StatusForbidden},
		{"fetch marked cross-site", "/api/tickets/" + id + "/actions", closeBody,
			map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Authorization": bearer}, http.StatusForbidden},
		{"text/plain with the token", "/api/tickets/" + id + "/actions", closeBody,
			map[string]string{"Content-Type": "text/plain", "Authorization": bearer}, http.StatusUnsupportedMediaType},
		{"form-encoded with the token", "/api/tickets/" + id + "/actions", closeBody,
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": bearer}, http.StatusUnsupportedMediaType},
		{"sweep as of 2030 from a page", "/api/sweep?now=2030-01-01T00:00:00Z", "x",
			map[string]string{"Content-Type": "text/plain", "Origin": "null"}, http.StatusForbidden},
		{"sweep with a form body", "/api/sweep?now=2030-01-01T00:00:00Z", "x",
			map[string]string{"Content-Type": "text/plain", "Authorization": bearer}, http.StatusUnsupportedMediaType},
		{"inject as text/plain", "/api/inject?to=support%40example.com", string(message("eve@evil.example", "support@example.com", "Planted", "xs-2@evil.example", "x")),
			map[string]string{"Content-Type": "text/plain", "Authorization": bearer}, http.StatusUnsupportedMediaType},
	} {
		if a := send(t, "POST", base+c.path, c.body, c.header); a.code != c.want || !strings.Contains(a.body, `"error"`) {
			t.Errorf("%s: %d %q; want %d with a reason", c.what, a.code, a.body, c.want)
		}
	}
	after := e.show(id)
	if after.Status != before.Status || len(after.Events) != len(before.Events) || len(after.Messages) != len(before.Messages) {
		t.Errorf("refused requests changed the ticket: status %s→%s, events %d→%d, messages %d→%d",
			before.Status, after.Status, len(before.Events), len(after.Events), len(before.Messages), len(after.Messages))
	}
	if n := len(e.tickets()); n != 1 {
		t.Errorf("%d tickets after the refused inject, want 1", n)
	}
	// The same action, as the operator's own client sends it, is taken.
	a := send(t, "POST", base+"/api/tickets/"+id+"/actions", closeBody, map[string]string{"Content-Type": "application/json; charset=utf-8", "Authorization": bearer})
	if a.code != http.StatusOK || e.show(id).Status != "closed" {
		t.Errorf("the operator's JSON action: %d %q; want 200 and the ticket closed", a.code, a.body)
	}
}

// Without the token (or with another) the API answers 401 and says what
// is missing; the probes stay open.
func TestAdminNeedsTheToken(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	base := "http://" + e.admin
	for _, auth := range []string{"", "Bearer ", "Bearer " + strings.Repeat("0", 64), "Basic " + e.token(), e.token()} {
		a := send(t, "GET", base+"/api/tickets", "", map[string]string{"Authorization": auth})
		if a.code != http.StatusUnauthorized || !strings.Contains(a.body, "admin token") {
			t.Errorf("Authorization %q: %d %q; want 401 naming the token", auth, a.code, a.body)
		}
	}
	if a := send(t, "GET", base+"/api/tickets", "", map[string]string{"Authorization": "Bearer " + e.token()}); a.code != http.StatusOK {
		t.Errorf("with the token: %d %q", a.code, a.body)
	}
	if a := send(t, "GET", base+"/healthz", "", nil); a.code != http.StatusOK || a.body != "ok\n" {
		t.Errorf("/healthz without a token: %d %q; want 200 ok", a.code, a.body)
	}
}

// A method a route does not take is answered 405 with the methods it
// takes in Allow, on every route: serve's own (/metrics, backup, check)
// as on the others, never as a route that is not there.
func TestAdminAnswersAWrongMethodWith405(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/metrics", "GET"},
		{"POST", "/api/backup", "GET"},
		{"DELETE", "/api/check", "GET"},
		{"POST", "/api/tickets", "GET"},
		{"POST", "/healthz", "GET"},
		{"GET", "/api/tickets/HS-000001/actions", "POST"},
	} {
		req, err := http.NewRequest(c.method, "http://"+e.admin+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if allow := resp.Header.Get("Allow"); resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(allow, c.allow) {
			t.Errorf("%s %s: %s, Allow %q: %.100q; want 405 allowing %s", c.method, c.path, resp.Status, allow, b, c.allow)
		}
	}
}

// A page on a name rebound to 127.0.0.1 sends its own Host: refused even
// with the token; the names of the API itself pass.
func TestAdminRefusesForeignHost(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	_, port, _ := net.SplitHostPort(e.admin)
	base := "http://" + e.admin
	bearer := "Bearer " + e.token()
	for _, host := range []string{"rebind.evil.example:" + port, "rebind.evil.example", "10.0.0.1:" + port} {
		for _, path := range []string{"/api/tickets", "/healthz"} {
			a := send(t, "GET", base+path, "", map[string]string{"Host": host, "Authorization": bearer})
			if a.code != http.StatusMisdirectedRequest || !strings.Contains(a.body, "hostnames") {
				t.Errorf("Host %s %s: %d %q; want 421 pointing at [admin] hostnames", host, path, a.code, a.body)
			}
		}
	}
	for _, host := range []string{e.admin, "localhost:" + port, "LOCALHOST:" + port} {
		if a := send(t, "GET", base+"/api/tickets", "", map[string]string{"Host": host, "Authorization": bearer}); a.code != http.StatusOK {
			t.Errorf("Host %s: %d %q; want 200", host, a.code, a.body)
		}
	}
}

// A listen address other hosts can reach is refused without TLS, before
// anything listens; with a certificate serve speaks HTTPS and the
// commands hand over through it.
func TestAdminOffLoopbackNeedsTLS(t *testing.T) {
	e := newEnv(t, true)
	_, port, _ := net.SplitHostPort(e.admin)
	open := e.writeConfig("open.toml", "0.0.0.0:"+port)
	r := e.runConfig(open, nil, "serve")
	if r.code != exConfig || !strings.Contains(r.stderr, `admin.listen "0.0.0.0:`+port+`" is not a loopback address`) || !strings.Contains(r.stderr, "tls_cert") {
		t.Fatalf("serve on 0.0.0.0 without TLS: exit %d, stderr %q; want %d and a clear reason", r.code, r.stderr, exConfig)
	}
	if c, err := net.Dial("tcp", e.smtp); err == nil {
		c.Close()
		t.Errorf("the SMTP listener opened although serve refused to start")
	}

	cert, key := selfSigned(t, e.dir)
	b, _ := os.ReadFile(open)
	os.WriteFile(e.cfg, append(b, fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", cert, key)...), 0o600)
	id := e.injectOK(message("lu@customer.example", "support@example.com", "Over TLS", "tls-1@customer.example", "x"), "-to", "support@example.com")
	e.admin = "" // serve's /healthz wait speaks plain HTTP
	e.serve()
	if tk := e.show(id); tk.Subject != "Over TLS" {
		t.Errorf("show via the HTTPS handover: %+v", tk)
	}
	if r := e.run(nil, "priority", id, "high"); r.code != 0 || !strings.Contains(r.stdout, "via the admin API") {
		t.Errorf("priority via the HTTPS handover: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Plain HTTP on the TLS port gets nowhere.
	if resp, err := http.Get("http://127.0.0.1:" + port + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered 200 on the HTTPS listener")
		}
	}
}

// selfSigned writes a certificate for tickets.example.com (not for
// 127.0.0.1: the commands pin the file, not a name) and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tickets.example.com"},
		DNSNames: []string{"tickets.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// /healthz on the real admin listener says unhealthy, with the reason,
// when the outbox's earliest due mail has waited too long (no worker runs
// here), and ok again once it is gone; likewise for a disk with less free
// space than asked for.
func TestHealthzReportsStuckOutboxAndFullDisk(t *testing.T) {
	a, url := healthzApp(t)
	cfg, dir := a.cfg, filepath.Dir(a.cfg.Store.Path)
	if h := send(t, "GET", url, "", nil); h.code != http.StatusOK || h.body != "ok\n" {
		t.Fatalf("empty outbox: %d %q; want ok", h.code, h.body)
	}

	ctx := context.Background()
	// Each to its own recipient: one queue would keep them due in order.
	enqueue := func(to string, due time.Time) uint64 {
		m := &store.OutMail{TicketID: "HS-000001", Kind: "auto", From: "bounces@tickets.example.com", To: []string{to},
			Raw: []byte("Subject: x\r\n\r\nx\r\n"), NextAt: due, Created: due}
		if err := a.store.UpdateNow(ctx, func(tx store.Tx) error { return tx.Enqueue(m) }); err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	fresh := enqueue("a@customer.example", time.Now().Add(-time.Minute))
	if h := send(t, "GET", url, "", nil); h.code != http.StatusOK {
		t.Errorf("mail due a minute ago: %d %q; want ok under outbox_max_age 10m", h.code, h.body)
	}
	stuck := enqueue("b@customer.example", time.Now().Add(-time.Hour))
	h := send(t, "GET", url, "", nil)
	if h.code != http.StatusServiceUnavailable || !strings.Contains(h.body, "outbox") || !strings.Contains(h.body, "outbox_max_age") {
		t.Errorf("mail due an hour ago: %d %q; want 503 naming the outbox", h.code, h.body)
	}
	if err := a.store.UpdateNow(ctx, func(tx store.Tx) error {
		if err := tx.Dequeue(stuck); err != nil {
			return err
		}
		return tx.Dequeue(fresh)
	}); err != nil {
		t.Fatal(err)
	}
	if h := send(t, "GET", url, "", nil); h.code != http.StatusOK {
		t.Errorf("after the stuck mail went: %d %q; want ok", h.code, h.body)
	}

	free, err := diskFree(dir)
	if err != nil || free < 0 {
		t.Skipf("free space not known here: %v", err)
	}
	cfg.Admin.MinFreeBytes = free + 1<<40
	h = send(t, "GET", url, "", nil)
	if h.code != http.StatusServiceUnavailable || !strings.Contains(h.body, "min_free_bytes") {
		t.Errorf("less free than min_free_bytes: %d %q; want 503 naming it", h.code, h.body)
	}
}

// Mail queued to go at once has no NextAt of its own: it is due since it
// was queued. /healthz counts its wait from then, as the outbox metric
// does, so mail never tried for an hour makes it unhealthy.
func TestHealthzReportsMailNeverTried(t *testing.T) {
	a, url := healthzApp(t)
	// As the mailer queues it: created then, due at once (no NextAt).
	m := &store.OutMail{TicketID: "HS-000001", Kind: "auto", From: "bounces@tickets.example.com", To: []string{"a@customer.example"},
		Raw: []byte("Subject: x\r\n\r\nx\r\n"), Created: time.Now().Add(-time.Hour)}
	if err := a.store.UpdateNow(context.Background(), func(tx store.Tx) error { return tx.Enqueue(m) }); err != nil {
		t.Fatal(err)
	}
	h := send(t, "GET", url, "", nil)
	if h.code != http.StatusServiceUnavailable || !strings.Contains(h.body, "outbox_max_age") {
		t.Errorf("mail queued an hour ago and never tried: %d %q; want 503 naming the outbox", h.code, h.body)
	}
}

// healthzApp opens an app on a new database with outbox_max_age 10m and
// serves its admin API on 127.0.0.1; it returns the app and the URL of
// its /healthz.
func healthzApp(t *testing.T) (*app, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := loadConfig(writeFile(t, fmt.Sprintf("[store]\npath = %q\n[admin]\nlisten = \"127.0.0.1:0\"\noutbox_max_age = \"10m\"\n", filepath.Join(dir, "tickets.db"))))
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.close() })
	s := &servers{}
	srv, err := a.listenAdmin(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return a, "http://" + s.adminAddr() + "/healthz"
}

// A request the guard refuses is answered at once, whatever body it
// announces, and its connection closed: a client without the token (or
// from another site, or under another Host) that announces a body and
// never sends it holds no connection open, and no answer, for good.
func TestAdminRefusalDoesNotWaitForTheBody(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	for _, c := range []struct {
		what, head string
		want       int
	}{
		{"no token", "Host: " + e.admin + "\r\n", http.StatusUnauthorized},
		{"another site", "Host: " + e.admin + "\r\nOrigin: http://evil.example\r\nAuthorization: Bearer " + e.token() + "\r\n", http.StatusForbidden},
		{"another Host", "Host: rebind.evil.example\r\nAuthorization: Bearer " + e.token() + "\r\n", http.StatusMisdirectedRequest},
	} {
		conn, err := net.Dial("tcp", e.admin)
		if err != nil {
			t.Fatal(err)
		}
		// A bound for a hang only: the answer comes at once or never.
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(conn, "POST /api/forget HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", c.head)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			t.Errorf("%s: no answer while the announced body is not sent: %v", c.what, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != c.want || !resp.Close {
			t.Errorf("%s: %s, closing %v; want %d and the connection closed", c.what, resp.Status, resp.Close, c.want)
		}
		conn.Close()
	}
}

// The token is the contents of the token file, as the operator wrote it:
// one written in upper-case hex is taken as it is written (curl with
// $(cat admin.token)), as the commands take it.
func TestAdminTakesTheTokenAsTheFileHasIt(t *testing.T) {
	e := newEnv(t, true)
	token := strings.ToUpper(strings.Repeat("0a1b2c3d4e5f", 6))
	if err := os.MkdirAll(filepath.Join(e.dir, "data"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "data", "admin.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.serve()
	if a := send(t, "GET", "http://"+e.admin+"/api/tickets", "", map[string]string{"Authorization": "Bearer " + e.token()}); a.code != http.StatusOK {
		t.Errorf("with the token file's contents: %d %q; want 200", a.code, a.body)
	}
	if r := e.run(nil, "tickets"); r.code != 0 {
		t.Errorf("tickets through serve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// /api/outbox/retry takes POST only. A GET of it (a curl without -X
// POST) was taken for GET /api/outbox/{id} with the id "retry", and
// answered 400 naming ?all=1 an unknown parameter; another method was
// told GET is allowed.
func TestAdminOutboxRetryAllowsOnlyPOST(t *testing.T) {
	e := newEnv(t, true)
	e.serve()
	for _, method := range []string{"GET", "DELETE"} {
		resp, err := e.apiDo(method, "/api/outbox/retry?all=1", "", "")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if allow := resp.Header.Get("Allow"); resp.StatusCode != http.StatusMethodNotAllowed || allow != "POST" {
			t.Errorf("%s /api/outbox/retry?all=1: %s, Allow %q: %s; want 405 allowing POST", method, resp.Status, allow, b)
		}
	}
}

// A client that keeps its connection to the admin API open after an
// answer and sends nothing more (a dashboard's or scraper's keep-alive
// left behind) has it closed once it stays idle past adminIdleTimeout;
// it held a connection, and a file descriptor of serve, for good.
func TestAdminClosesIdleKeepAliveConnection(t *testing.T) {
	defer func(d time.Duration) { adminIdleTimeout = d }(adminIdleTimeout)
	adminIdleTimeout = 300 * time.Millisecond
	_, url := healthzApp(t)
	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/healthz")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the answer closed the connection; the test needs it kept alive")
	}
	// A bound for the test only: the server closes the connection long
	// before it, or never.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection after %v: %v; want it closed by the server (EOF)", time.Since(start).Round(time.Millisecond), err)
	}
}
