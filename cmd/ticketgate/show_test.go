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

// The listing prints a customer's subject too: a C1 control (U+009B,
// CSI, which a terminal takes for ESC [) written in an encoded word does
// not reach the operator's terminal from the table.
func TestTicketsDoesNotPassTerminalControlsThrough(t *testing.T) {
	e := newEnv(t, false)
	msg := message("alice@customer.example", "support@example.com", "=?utf-8?q?Printer_=C2=9B2J=C2=9B8mhidden?=", "esc-list@customer.example", "Hello")
	e.injectOK(msg, "-to", "support@example.com")
	r := e.run(nil, "tickets")
	if r.code != 0 {
		t.Fatalf("tickets: exit %d: %s", r.code, r.stderr)
	}
	if i := strings.IndexFunc(r.stdout, func(c rune) bool {
		return c < ' ' && c != '\n' && c != '\t' || c >= 0x7f && c < 0xa0
	}); i >= 0 {
		t.Errorf("tickets printed a control character at %d:\n%q", i, r.stdout)
	}
	if !strings.Contains(r.stdout, "Printer") || !strings.Contains(r.stdout, "hidden") {
		t.Errorf("tickets lost the subject:\n%s", r.stdout)
	}
	if list := e.tickets(); len(list) != 1 || !strings.Contains(list[0].Subject, "\u009b2J") {
		t.Errorf("the JSON subject changed: %+v", list)
	}
}

// A customer's address may hold a C1 control too (a quoted local part
// of UTF-8, "\u009b8m"@…): show's requester and mail lines, the listing,
// the outbox and explain print it replaced, never to the operator's
// terminal.
func TestAddressesDoNotPassTerminalControlsThrough(t *testing.T) {
	e := newEnv(t, false)
	from := "\"\u009b8mhidden\"@evil.example"
	id := e.injectOK(message(from, "support@example.com", "Printer", "esc-addr@evil.example", "Hello"), "-to", "support@example.com")
	again := message(from, "support@example.com", "Scanner", "esc-addr-2@evil.example", "Hello")
	for _, args := range [][]string{{"show", id}, {"tickets"}, {"outbox"}, {"explain"}} {
		var stdin []byte
		if args[0] == "explain" {
			stdin = again
		}
		r := e.run(stdin, args[0], args[1:]...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		if i := strings.IndexFunc(r.stdout, func(c rune) bool {
			return c < ' ' && c != '\n' && c != '\t' || c >= 0x7f && c < 0xa0
		}); i >= 0 {
			t.Errorf("%v printed a control character at %d:\n%q", args, i, r.stdout)
		}
		if !strings.Contains(r.stdout, "8mhidden@evil.example") {
			t.Errorf("%v lost the address:\n%s", args, r.stdout)
		}
	}
}
