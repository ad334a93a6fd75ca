package mailout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

// TestTemplateOverridesRefusedAtLoad: files that can never be used, or do
// not parse, stop the start with an error that names them.
func TestTemplateOverridesRefusedAtLoad(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"misnamed", map[string]string{"reminders.txt": "Hello\n"},
			[]string{"reminders.txt", `no built-in template is called "reminders"`, "valid names: agent_error, attachment_refused, auto_reply, closed,", "reminder, reply_held, resolution"}},
		{"does not parse", map[string]string{"closed.txt": "Hello {{.Name\n"}, []string{"closed.txt"}},
	}
	for _, c := range cases {
		dir := writeTemplates(t, c.files)
		_, err := LoadTemplates(dir)
		if err == nil {
			t.Errorf("%s: loaded", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
	if _, err := LoadTemplates(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("a template directory that does not exist was accepted")
	}
}

// TestLifecycleNoticesSayOneDay: with a lifecycle of a day, the waiting
// and closed notices say "1 day", as the reminder does, not "1 days".
func TestLifecycleNoticesSayOneDay(t *testing.T) {
	ts, err := LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"waiting", "closed", "reminder"} {
		text, err := ts.Render(name, map[string]any{"TicketID": "HS-000001", "Subject": "Printer", "Days": 1,
			"CloseDays": 1, "ReopenDays": 1, "Resolved": false, "FromName": "Support", "Name": "Ann"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(text, "1 days") || !strings.Contains(text, "1 day") {
			t.Errorf("%s with a day's lifecycle says:\n%s", name, text)
		}
	}
}
