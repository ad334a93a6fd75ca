package mailin

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// expecting is a recorder that wants to hear of each message as its
// transfer begins (Expecter), as the gateway does, and counts the
// announcements not yet ended.
type expecting struct {
	recorder
	mu        sync.Mutex
	announced int
	open      int
	handed    int // deliveries that carried their announcement
}

func (e *expecting) Expect() func() {
	e.mu.Lock()
	e.announced++
	e.open++
	e.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			e.mu.Lock()
			e.open--
			e.mu.Unlock()
		})
	}
}

func (e *expecting) Deliver(ctx context.Context, d *Delivery) (Result, error) {
	if d.Arrived != nil {
		e.mu.Lock()
		e.handed++
		e.mu.Unlock()
	}
	return e.recorder.Deliver(ctx, d)
}

func (e *expecting) counts() (announced, open, handed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.announced, e.open, e.handed
}

// TestTransferAnnouncedAndEnded: each message is announced when DATA
// begins, the announcement reaches Deliver with the message, and it is
// over once the answer is sent, whether the message was taken or
// refused while it was read (a commit would otherwise wait for a
// message that never comes). The handler here never ends it itself.
func TestTransferAnnouncedAndEnded(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		h := &expecting{}
		srv, err := Listen("127.0.0.1:0", lmtp, Config{Hostname: "tickets.example.com", MaxMessageBytes: 1 << 20, MaxLineLength: 1000}, h,
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		c := dial(t, srv.Addr(), "127.0.0.2")
		if code, msg := c.reply(); code != 220 {
			t.Fatalf("banner: %d %s", code, msg)
		}
		hello := "EHLO client.example"
		if lmtp {
			hello = "LHLO client.example"
		}
		c.must(250, "%s", hello)
		c.must(250, "MAIL FROM:<jo@customer.example>")
		c.must(250, "RCPT TO:<support@example.com>")
		c.must(354, "DATA")
		c.must(250, "From: jo@customer.example\r\nSubject: hello\r\n\r\nhello\r\n.")
		if a, open, handed := h.counts(); a != 1 || open != 0 || handed != 1 {
			t.Errorf("lmtp %v, a message taken: %d announced, %d still open, %d handed to Deliver; want 1, 0, 1", lmtp, a, open, handed)
		}
		c.must(250, "MAIL FROM:<jo@customer.example>")
		c.must(250, "RCPT TO:<support@example.com>")
		c.must(354, "DATA")
		if code, msg := c.cmd("From: jo@customer.example\r\n\r\n%s\r\n.", strings.Repeat("x", 2000)); code != 554 {
			t.Fatalf("lmtp %v, a 2000-character line: %d %s, want 554", lmtp, code, msg)
		}
		if a, open, handed := h.counts(); a != 2 || open != 0 || handed != 1 {
			t.Errorf("lmtp %v, a message refused as read: %d announced, %d still open, %d handed; want 2, 0, 1", lmtp, a, open, handed)
		}
		if h.count() != 1 {
			t.Errorf("lmtp %v: %d messages delivered, want 1", lmtp, h.count())
		}
	}
}
