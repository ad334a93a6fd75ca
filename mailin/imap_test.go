package mailin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"ticketgate/mailin/mailintest"
	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// These tests run the poller against go-imap's in-memory server; the
// desk package tests what becomes of the mail in tickets, and Dovecot.

const imapUser, imapPassword = "support", "imap-test-password"

// memBox is an in-memory IMAP server on 127.0.0.1 with one user, each
// session passed through wrap when it is not nil.
type memBox struct {
	addr string
	user *imapmemserver.User
}

func startMemBox(t *testing.T, wrap func(imapserver.SessionIMAP4rev2) imapserver.Session) *memBox {
	t.Helper()
	m := mailintest.StartMemIMAP(t, imapUser, imapPassword, nil, wrap)
	return &memBox{addr: m.Addr, user: m.User}
}

func (m *memBox) put(t *testing.T, raw []byte) {
	t.Helper()
	if _, err := m.user.Append("INBOX", bytes.NewReader(raw), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

// count is the number of messages in mailbox (0 when there is none).
func (m *memBox) count(mailbox string) uint32 {
	st, err := m.user.Status(mailbox, &imap.StatusOptions{NumMessages: true})
	if err != nil {
		return 0
	}
	return *st.NumMessages
}

// taker is a Handler that commits each message's checkpoint, as the desk
// does in the message's transaction, and keeps its text. slow, when set,
// is run before each commit.
type taker struct {
	store store.Store
	slow  func()
	mu    sync.Mutex
	taken []string
}

func (h *taker) Deliver(ctx context.Context, d *Delivery) (Result, error) {
	if len(bytes.TrimSpace(d.Raw)) == 0 {
		return Result{}, ErrNotMail
	}
	if h.slow != nil {
		h.slow()
	}
	if err := h.store.Update(ctx, func(tx store.Tx) error { return tx.PutCheckpoint(*d.Checkpoint) }); err != nil {
		return Result{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.taken = append(h.taken, string(d.Raw))
	return Result{}, nil
}

func (h *taker) Accepts(string) bool { return true }

func (h *taker) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.taken)
}

// newMemPoller returns a poller of m's INBOX that moves what it took to
// Processed, handing mail to a taker with a fresh database.
func newMemPoller(t *testing.T, m *memBox) (*Poller, *taker) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := boltdb.Open(filepath.Join(t.TempDir(), "tickets.db"), boltdb.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pw := filepath.Join(t.TempDir(), "imap.password")
	if err := os.WriteFile(pw, []byte(imapPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	routes := rules.Routes{{Address: "support@example.com", Queue: "support"}}
	cfg := IMAPConfig{Name: "box", Addr: m.addr, TLS: "none", Username: imapUser, PasswordFile: pw,
		Route: "support@example.com", After: "move", MoveTo: "Processed", FailedFolder: "Failed", MaxTries: 1}
	h := &taker{store: db}
	p, err := NewPoller(cfg, Intake{Handler: h, Store: db, Routes: routes, Prefix: "HS"}, log)
	if err != nil {
		t.Fatal(err)
	}
	p.Timeout = 5 * time.Second
	return p, h
}

func boxMail(subject, body string) []byte {
	return fmt.Appendf(nil, "From: alice@customer.example\r\nTo: support@example.com\r\nSubject: %s\r\n"+
		"Message-ID: <%s@customer.example>\r\n\r\n%s\r\n", subject, subject, body)
}

// Deliveries slower than the IMAP timeout (a commit held up by the
// database) are not taken for a server that stopped answering: the
// connection stays, the messages are taken and moved in one pass.
func TestIMAPSlowCommitsDoNotEndTheConnection(t *testing.T) {
	m := startMemBox(t, nil)
	for _, s := range []string{"one", "two", "three"} {
		m.put(t, boxMail(s, "hello"))
	}
	p, h := newMemPoller(t, m)
	p.Timeout, p.Parallel = 200*time.Millisecond, 1
	h.slow = func() { time.Sleep(3 * p.Timeout) }
	n, err := p.RunOnce(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("took %d (%v), want all 3 messages", n, err)
	}
	if got := m.count("Processed"); got != 3 {
		t.Errorf("Processed holds %d, want 3", got)
	}
}

// slowLink is a server that sends message bodies in pieces of 8 KiB,
// pause between them, as over a slow link.
type slowLink struct {
	imapserver.SessionIMAP4rev2
	raws  map[imap.UID][]byte
	pause time.Duration
}

func (s slowLink) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	uids, ok := set.(imap.UIDSet)
	if !ok || len(o.BodySection) != 1 {
		return s.SessionIMAP4rev2.Fetch(w, set, o)
	}
	all, err := s.Search(imapserver.NumKindUID, &imap.SearchCriteria{}, &imap.SearchOptions{ReturnAll: true})
	if err != nil {
		return err
	}
	for i, uid := range all.AllUIDs() {
		if !uids.Contains(uid) {
			continue
		}
		raw := s.raws[uid]
		m := w.CreateMessage(uint32(i + 1))
		m.WriteUID(uid)
		wc := m.WriteBodySection(o.BodySection[0], int64(len(raw)))
		for len(raw) > 0 {
			n := min(len(raw), 8<<10)
			if _, err := wc.Write(raw[:n]); err != nil {
				return err
			}
			raw = raw[n:]
			time.Sleep(s.pause)
		}
		wc.Close()
		if err := m.Close(); err != nil {
			return err
		}
	}
	return nil
}

// A large message that arrives slowly but steadily is taken, however long
// it takes in all: the timeout is for a server that stops sending.
func TestIMAPLargeMessageOverSlowLinkIsTaken(t *testing.T) {
	raws := map[imap.UID][]byte{1: boxMail("large", strings.Repeat("a line of an attached report\r\n", 6000))}
	m := startMemBox(t, func(s imapserver.SessionIMAP4rev2) imapserver.Session {
		return slowLink{s, raws, 40 * time.Millisecond}
	})
	m.put(t, raws[1])
	p, h := newMemPoller(t, m)
	p.Timeout = 300 * time.Millisecond // a tenth of the time the message takes
	n, err := p.RunOnce(context.Background())
	if err != nil || n != 1 || h.count() != 1 {
		t.Fatalf("took %d (%v), want the large message", n, err)
	}
	if got := m.count("Processed"); got != 1 {
		t.Errorf("Processed holds %d, want 1", got)
	}
}

// A message whose transfer takes longer than 5 minutes, however steadily
// it comes, is taken with the mail behind it. The IMAP library gives a
// message's body 5 minutes in all: such a message failed on every try
// ("i/o timeout"), and nothing behind it was ever taken. It runs for over
// 5 minutes, so not with -short.
func TestIMAPMessageArrivingOverMoreThanFiveMinutesIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("one message sent over 5 minutes and a half")
	}
	t.Parallel()
	raws := map[imap.UID][]byte{
		1: boxMail("large", strings.Repeat("a line of an attached report\r\n", 6100)), // 23 pieces
		2: boxMail("behind", "hello"),
	}
	m := startMemBox(t, func(s imapserver.SessionIMAP4rev2) imapserver.Session {
		return slowLink{s, raws, 14 * time.Second}
	})
	m.put(t, raws[1])
	m.put(t, raws[2])
	p, h := newMemPoller(t, m)
	p.Timeout = time.Minute
	n, err := p.RunOnce(context.Background())
	if err != nil || n != 2 || h.count() != 2 {
		t.Fatalf("took %d (%v), want the large message and the one behind it", n, err)
	}
	if got := m.count("Processed"); got != 2 {
		t.Errorf("Processed holds %d, want 2", got)
	}
}

// The poller speaks implicit TLS and STARTTLS, verifying the server.
func TestIMAPOverTLSAndSTARTTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imap.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			mem := imapmemserver.New()
			u := imapmemserver.NewUser(imapUser, imapPassword)
			if err := u.Create("INBOX", nil); err != nil {
				t.Fatal(err)
			}
			mem.AddUser(u)
			srv := imapserver.New(&imapserver.Options{
				NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
					return mem.NewSession(), nil, nil
				},
				Caps:      imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
				TLSConfig: serverTLS,
			})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if mode == "implicit" {
				ln = tls.NewListener(ln, serverTLS)
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			m := &memBox{addr: ln.Addr().String(), user: u}
			m.put(t, boxMail("secure", "hello"))
			p, h := newMemPoller(t, m)
			p.cfg.TLS = mode
			p.TLSConfig = &tls.Config{RootCAs: roots}
			if n, err := p.RunOnce(context.Background()); err != nil || n != 1 || h.count() != 1 {
				t.Fatalf("took %d (%v), want the message", n, err)
			}
			p.TLSConfig = nil // the system's roots know no such server
			m.put(t, boxMail("unverified", "hello"))
			if n, err := p.RunOnce(context.Background()); err == nil || n != 0 {
				t.Errorf("a server whose certificate does not verify: took %d (%v), want a refusal", n, err)
			}
		})
	}
}
