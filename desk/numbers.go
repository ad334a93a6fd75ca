package desk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"ticketgate/store"
)

// maxNumberTries bounds the sequential numbers a new ticket tries (each
// one lookup) before the store draws one at random: numbers taken by
// another gateway, or left by random numbering, are passed over.
const maxNumberTries = 1000

// numbers hands out sequential ticket numbers (Pipeline.Sequential): the
// one after the newest ticket's when first asked, then each in turn,
// back to 000001 after 999999. A number drawn for mail that opened no
// ticket is not handed out again.
type numbers struct {
	mu   sync.Mutex
	next int // 0: not read from the store yet
}

// copy is a numbers that starts where n stands and hands out its own.
func (n *numbers) copy() *numbers {
	n.mu.Lock()
	defer n.mu.Unlock()
	return &numbers{next: n.next}
}

// take hands out the next number of ticket ids with prefix, reading the
// newest ticket's through r the first time.
func (n *numbers) take(r store.Reader, prefix string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.next == 0 {
		last, err := newestNumber(r, prefix)
		if err != nil {
			return "", err
		}
		n.next = last%999999 + 1
	}
	return n.hand(prefix), nil
}

// catchUp moves the numbers on past the newest ticket's, read through
// r, when that is ahead of the last number handed out here: another
// gateway sharing the store numbered tickets meanwhile. Without it this
// one would go on from its own last number, handing out the numbers the
// others passed over (drawn for mail that joined a ticket) after their
// newest, and at random once they were a thousand ahead. Numbers
// handed out here and not committed yet are ahead of the newest; they
// stay.
func (n *numbers) catchUp(r store.Reader, prefix string) error {
	last, err := newestNumber(r, prefix)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// How far last is ahead of the last number handed out, on the
	// circle 1..999999 that numbering goes round.
	if ahead := (last - (n.next - 1) + 999999) % 999999; n.next == 0 || ahead > 0 && ahead < 999999/2 {
		n.next = last%999999 + 1
	}
	return nil
}

// hand hands out the next number; n.mu is held and the numbers are read.
func (n *numbers) hand(prefix string) string {
	id := fmt.Sprintf("%s-%06d", prefix, n.next)
	n.next = n.next%999999 + 1
	return id
}

// newestNumber is the number of the newest ticket numbered prefix-nnnnnn
// among the last few created (0: none). The newest, not the greatest:
// numbering goes on where it stopped after it came back to 000001, or
// after the random numbers of a desk that numbered so before.
func newestNumber(r store.Reader, prefix string) (int, error) {
	// A ticket that does not decode (damage, which check reports) is
	// left out of the list: the numbers go on from the others.
	tickets, _, err := r.Tickets(store.Filter{Sort: store.SortNewest, Limit: 50})
	if err != nil && !errors.Is(err, store.ErrBadRecord) {
		return 0, fmt.Errorf("newest ticket number: %w", err)
	}
	for _, t := range tickets {
		digits, ok := strings.CutPrefix(t.ID, prefix+"-")
		if ok && len(digits) == 6 && strings.Trim(digits, "0123456789") == "" {
			return strconv.Atoi(digits)
		}
	}
	return 0, nil
}

// errNumbersUnread is drawID's answer, with sequential numbering, before
// a transaction has read where the numbers stand: that transaction
// numbers the ticket itself.
var errNumbersUnread = errors.New("sequential numbers not read from the store yet")

// drawNumber is the next sequential number, once a transaction has read
// where they stand.
func (n *numbers) drawNumber(prefix string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.next == 0 {
		return "", errNumbersUnread
	}
	return n.hand(prefix), nil
}
