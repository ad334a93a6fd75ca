package main

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// discard is an SMTP (or LMTP) server that reads every message and answers
// 250: the ceiling the network, the protocol and this tool allow.
type discard struct {
	srv      *smtp.Server
	ln       net.Listener
	received atomic.Int64
}

// startDiscard listens on a free loopback port.
func startDiscard(lmtp bool) (*discard, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &discard{ln: ln}
	d.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return discardSession{d}, nil
	}))
	d.srv.Domain = "discard.localhost"
	d.srv.LMTP = lmtp
	d.srv.MaxMessageBytes = 64 << 20
	d.srv.MaxRecipients = 100
	d.srv.ReadTimeout = 30 * time.Second
	d.srv.WriteTimeout = 30 * time.Second
	go d.srv.Serve(ln)
	return d, nil
}

func (d *discard) addr() string { return d.ln.Addr().String() }

func (d *discard) close() { d.srv.Close() }

type discardSession struct{ d *discard }

func (discardSession) Reset()                               {}
func (discardSession) Logout() error                        { return nil }
func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s discardSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.d.received.Add(1)
	return nil
}
