package desk

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"ticketgate/mailout"
	"ticketgate/rules"
)

// TestTemplateOverrides: a good override is what the customer gets; one
// that fails when it runs is logged and the built-in text goes out, so the
// sweep (and inbound mail) carries on.
func TestTemplateOverrides(t *testing.T) {
	dir := writeTemplates(t, map[string]string{
		"waiting.txt":  "Custom waiting notice for {{.TicketID}} after {{.Days}} days.\n",
		"reminder.txt": "Hello {{.Customer}}, still there?\n", // no such field
		"notes.md":     "not a template, ignored",
	})
	tpl, err := mailout.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	tpl.Log = slog.New(slog.NewTextHandler(&log, nil))
	e := newEnv(t)
	e.desk.Templates = tpl
	e.create("HS-400001", "cy@customer.example", day0, rules.PriorityLow)
	e.agentReply("HS-400001", day0)

	e.run(day(3))
	mails := e.delivered()
	if len(mails) != 1 {
		t.Fatalf("reminder day: %d mails, want 1", len(mails))
	}
	if _, body := parse(t, mails[0]); !strings.Contains(body, "we are waiting for your answer on ticket HS-400001") {
		t.Errorf("broken reminder override: the built-in text was not sent:\n%s", body)
	}
	if l := log.String(); !strings.Contains(l, "template=reminder") || !strings.Contains(l, filepath.Join(dir, "reminder.txt")) || !strings.Contains(l, "Customer") {
		t.Errorf("the failing override is not logged with its file and error:\n%s", l)
	}

	e.run(day(7))
	mails = e.delivered()
	if len(mails) != 2 {
		t.Fatalf("waiting day: %d mails, want 2", len(mails))
	}
	if _, body := parse(t, mails[1]); body != "Custom waiting notice for HS-400001 after 7 days.\n" {
		t.Errorf("good override not used:\n%q", body)
	}
}

func writeTemplates(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
