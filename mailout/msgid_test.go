package mailout

import (
	"regexp"
	"testing"
)

// Message-IDs made one after another are distinct, sort in the order
// they were made (so the store's index takes them at its end) and keep
// to the characters of a dot-atom.
func TestNewMessageIDsSortInOrder(t *testing.T) {
	form := regexp.MustCompile(`^tg\.[0-9a-z]{13}\.[0-9a-z_-]{12}@tickets\.example\.com$`)
	prev := ""
	seen := map[string]bool{}
	for range 10000 {
		id := NewMessageID("tickets.example.com")
		if !form.MatchString(id) {
			t.Fatalf("Message-ID %q is not of the form tg.<time>.<random>@domain", id)
		}
		if seen[id] {
			t.Fatalf("Message-ID %q made twice", id)
		}
		seen[id] = true
		if id[:17] < prev {
			t.Fatalf("Message-ID %q sorts before the one made earlier, %q", id, prev)
		}
		prev = id[:17]
	}
}
