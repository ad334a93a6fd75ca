package mailintest

import (
	"net"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// MemIMAP is go-imap's in-memory IMAP server on 127.0.0.1 with one user
// and an INBOX, for the tests of the IMAP poller.
type MemIMAP struct {
	Addr string
	User *imapmemserver.User
	Srv  *imapserver.Server
}

// StartMemIMAP runs a MemIMAP for user and password until the test ends.
// It offers caps (IMAP4rev1 and IMAP4rev2 when nil), and passes every
// session through wrap when it is not nil, to play a server that behaves
// differently.
func StartMemIMAP(t testing.TB, user, password string, caps imap.CapSet, wrap func(imapserver.SessionIMAP4rev2) imapserver.Session) *MemIMAP {
	t.Helper()
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	}
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if wrap != nil {
				return wrap(mem.NewSession().(imapserver.SessionIMAP4rev2)), nil, nil
			}
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &MemIMAP{Addr: ln.Addr().String(), User: u, Srv: srv}
}
