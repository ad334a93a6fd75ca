package main

import (
	"strings"
	"testing"
)

// A customer's text holding terminal control sequences (clear the
// screen, hide what follows, retitle the window) is printed by show with
// those characters replaced, so the operator sees the text and their
// terminal does as it did; the JSON keeps the text as it came.
func TestShowDoesNotPassTerminalControlsThrough(t *testing.T) {
	e := newEnv(t, false)
	body := "Hello\x1b[2J\x1b]0;owned\x07\n\x1b[8mhidden\x1b[0m\tand \u009b31mred\x7f"
	id := e.injectOK(message("alice@customer.example", "support@example.com", "Printer", "esc@customer.example", body),
		"-to", "support@example.com")
	r := e.run(nil, "show", id)
	if r.code != 0 {
		t.Fatalf("show: exit %d: %s", r.code, r.stderr)
	}
	if i := strings.IndexFunc(r.stdout, func(c rune) bool {
		return c < ' ' && c != '\n' && c != '\t' || c >= 0x7f && c < 0xa0
	}); i >= 0 {
		t.Errorf("show printed the control character %q:\n%q", r.stdout[i], r.stdout)
	}
	for _, want := range []string{"Hello", "owned", "hidden", "\tand ", "red"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lost %q of the text:\n%s", want, r.stdout)
		}
	}
	if tk := e.show(id); !strings.Contains(tk.Messages[0].Text, "\x1b[2J") {
		t.Errorf("the JSON text changed: %q", tk.Messages[0].Text)
	}
}
