package desk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ticketgate/mailout"
)

// withSavedReplies gives g's mailer the saved replies in files (NAME.txt).
func withSavedReplies(t *testing.T, g *gateway, files map[string]string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "replies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tpl, err := mailout.LoadTemplates(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	g.pipeline.Desk.Templates = tpl
}

// TestSavedReplyReachesCustomer: "#reply NAME" puts the saved reply,
// filled with the ticket's fields, before the agent's own text in the
// customer's mail; the notification lists the saved replies.
func TestSavedReplyReachesCustomer(t *testing.T) {
	g := startDesk(t)
	withSavedReplies(t, g, map[string]string{
		"password-reset.txt": "Hello {{.Name}},\n\nto reset your password for ticket {{.TicketID}} ({{.Subject}}), open the login page.\n",
		"thanks.txt":         "Thank you for writing.\n",
	})
	tk := agOpen(t, g, "Cannot log in", "My password is gone.")
	notif := agOne(t, g, 0, "ana@example.com")
	if body := agBody(t, notif.Data); !strings.Contains(body, "#reply NAME") || !strings.Contains(body, "password-reset thanks") {
		t.Errorf("notification footer does not list the saved replies:\n%s", body)
	}
	before := len(g.relay.Mails())
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), tk, "#reply password-reset\n\nWrite again if it fails.")

	body := agBody(t, agOne(t, g, before, "alice@customer.example").Data)
	want := "Hello Alice Doe,\n\nto reset your password for ticket " + tk.ID + " (Cannot log in), open the login page.\n\nWrite again if it fails."
	if !strings.Contains(body, want) || strings.Contains(body, "#reply") {
		t.Errorf("customer's mail, want the saved reply then the agent's text:\n%s", body)
	}
	last := g.ticket(tk.ID).Messages
	if m := last[len(last)-1]; m.Kind != "agent" || !strings.HasPrefix(m.VisibleText, "Hello Alice Doe,") {
		t.Errorf("stored reply: kind %q text %q", m.Kind, m.VisibleText)
	}
}

// TestUnknownSavedReplyTellsTheAgent: a misspelt name sends nothing to the
// customer; the agent is told which saved replies there are.
func TestUnknownSavedReplyTellsTheAgent(t *testing.T) {
	g := startDesk(t)
	withSavedReplies(t, g, map[string]string{"thanks.txt": "Thank you for writing.\n"})
	tk := agOpen(t, g, "Cannot log in", "My password is gone.")
	notif := agOne(t, g, 0, "ana@example.com")
	before := len(g.relay.Mails())
	agReply(g, "Ana Lima <ana@example.com>", agReplyTo(t, notif), tk, "#reply thankz\n\nSee above.")

	if n := len(agMailsTo(g, before, "alice@customer.example")); n != 0 {
		t.Errorf("customer got %d mails after an unknown saved reply", n)
	}
	body := agBody(t, agOne(t, g, before, "ana@example.com").Data)
	if !strings.Contains(body, `no saved reply is called "thankz"`) || !strings.Contains(body, "the saved replies are thanks") {
		t.Errorf("agent's error mail does not name the unknown reply and the known ones:\n%s", body)
	}
}
