package desk

import (
	"context"
	"sync"
	"testing"
	"time"

	"ticketgate/store"
)

// announcing is a store that counts the announcements (Expect) not yet
// ended, and what that count was at each Update: a message's own
// announcement still open when its commit is queued would make a lone
// client's commit wait the whole bound for a message that is already
// there.
type announcing struct {
	store.Store
	mu      sync.Mutex
	open    int
	made    int
	atQueue []int
}

func (a *announcing) Expect() func() {
	end := a.Store.Expect()
	a.mu.Lock()
	a.open++
	a.made++
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.open--
			a.mu.Unlock()
			end()
		})
	}
}

func (a *announcing) Update(ctx context.Context, fn func(store.Tx) error) error {
	a.mu.Lock()
	a.atQueue = append(a.atQueue, a.open)
	a.mu.Unlock()
	return a.Store.Update(ctx, fn)
}

// TestMessageEndsItsAnnouncementBeforeItsCommit: a message taken over
// SMTP and one over LMTP, each from a lone client, are announced when
// DATA begins and no announcement is open when their commits are
// queued; both are stored and the outbox sends their auto-replies.
func TestMessageEndsItsAnnouncementBeforeItsCommit(t *testing.T) {
	g := startGateway(t)
	a := &announcing{Store: g.pipeline.Store}
	g.pipeline.Store = a
	g.mustSend("alice@customer.example", []string{"support@example.com"},
		msg("alice@customer.example", "support@example.com", "Printer on fire", "It is really on fire."))
	for r, err := range lmtpAnswers(t, g, "bob@customer.example", []string{"tech@example.com"},
		msg("bob@customer.example", "tech@example.com", "Scanner on fire", "It too.")) {
		if err != nil {
			t.Fatalf("LMTP %s: %v", r, err)
		}
	}
	a.mu.Lock()
	made, open, atQueue := a.made, a.open, append([]int(nil), a.atQueue...)
	a.mu.Unlock()
	if made != 2 || open != 0 {
		t.Errorf("%d announcements made, %d still open; want 2 made, none open", made, open)
	}
	if len(atQueue) != 2 || atQueue[0] != 0 || atQueue[1] != 0 {
		t.Errorf("announcements open as each message's commit was queued: %v, want [0 0]", atQueue)
	}
	if n := len(g.tickets()); n != 2 {
		t.Fatalf("%d tickets, want 2", n)
	}
	if got := g.relay.WaitFor(2, 10*time.Second); len(got) != 2 {
		t.Errorf("%d auto-replies sent, want 2", len(got))
	}
}
