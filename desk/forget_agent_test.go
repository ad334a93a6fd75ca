package desk

import (
	"context"
	"testing"

	"ticketgate/rules"
	"ticketgate/store"
)

// TestForgetAFormerAgentErasesTheAssignee: once an agent has left the
// agents, their address may be forgotten; the tickets they were assigned
// then name the pseudonym as assignee, and no listing finds the address.
func TestForgetAFormerAgentErasesTheAssignee(t *testing.T) {
	g := startDesk(t)
	tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
	agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "Pull the plug, please.")
	if now := g.ticket(tk.ID); now.Assignee != "ana@example.com" {
		t.Fatalf("assignee %q, want ana", now.Assignee)
	}
	g.pipeline.Agents = agAgents[1:] // ana has left
	pseudonym := Pseudonym([]byte("k"), "ana@example.com")
	if _, err := g.pipeline.Forget(context.Background(), Forget{Addr: "ana@example.com", Pseudonym: pseudonym}); err != nil {
		t.Fatalf("forget: %v", err)
	}
	if now := g.ticket(tk.ID); now.Assignee != pseudonym {
		t.Errorf("assignee %q after forget, want the pseudonym %s", now.Assignee, pseudonym)
	}
	err := g.store.View(context.Background(), func(tx store.Tx) error {
		list, _, err := tx.Tickets(store.Filter{Assignee: "ana@example.com"})
		if len(list) != 0 {
			t.Errorf("%d tickets listed as assigned to ana@example.com after forget", len(list))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
