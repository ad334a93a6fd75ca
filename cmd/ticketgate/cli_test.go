package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runBinary runs the built ticketgate with exactly args (no -config added)
// and waits for it, bounded.
func runBinary(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	c.Dir = t.TempDir()
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	c.Run()
	return result{code: c.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// Every command answers -h and -help with its usage, positional arguments
// included, on stdout and exit 0: asking for help is not an error.
func TestHelpOnEveryCommand(t *testing.T) {
	for _, c := range commands() {
		synopsis, _, _ := strings.Cut(c.usage, ": ")
		for _, h := range []string{"-h", "-help"} {
			r := runBinary(t, binary, c.name, h)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: ticketgate "+synopsis+"\n") || r.stderr != "" {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want 0 and the usage %q", c.name, h, r.code, r.stdout, r.stderr, synopsis)
			}
		}
	}
	r := runBinary(t, binary, "show", "-h")
	if !strings.Contains(r.stdout, "HS-123456") || !strings.Contains(r.stdout, "-json") {
		t.Errorf("show -h lists neither its argument nor its flags: %q", r.stdout)
	}
	if r := runBinary(t, binary, "help", "inject"); r.code != 0 || !strings.Contains(r.stdout, "usage: ticketgate inject") || !strings.Contains(r.stdout, "-from") {
		t.Errorf("help inject: exit %d, stdout %q", r.code, r.stdout)
	}
}

// Arguments a command does not take are a usage error (64), before the
// command does anything: serve would otherwise start listening.
func TestUnexpectedArgumentsAreRefused(t *testing.T) {
	e := newEnv(t, false)
	id := e.injectOK(message("hana@customer.example", "support@example.com", "Args", "args-1@customer.example", "x"))
	for _, args := range [][]string{
		{"serve", "now"},
		{"tickets", "open"},
		{"sweep", "today"},
		{"show", id, "extra"},
		{"assign", id, "none", "extra"},
		{"priority", id, "high", "extra"},
		{"status", id, "open", "extra"},
		{"explain", "-json", "support@example.com", "-x"},
	} {
		r := e.run([]byte("From: a@b.example\r\n\r\nx\r\n"), args[0], args[1:]...)
		if r.code != 64 || !strings.Contains(r.stderr, "usage: ticketgate "+args[0]) {
			t.Errorf("%v: exit %d, stderr %q; want 64 with the usage", args, r.code, r.stderr)
		}
	}
	if r := runBinary(t, binary, "version", "extra"); r.code != 64 || !strings.Contains(r.stderr, `unexpected argument "extra"`) {
		t.Errorf("version extra: exit %d, stderr %q; want 64", r.code, r.stderr)
	}
	if tk := e.show(id); tk.Priority != "medium" || tk.Assignee != "" || tk.Status != "new" {
		t.Errorf("a refused command changed the ticket: priority %q assignee %q status %q", tk.Priority, tk.Assignee, tk.Status)
	}
}

// version, -version and --version print the module version and the VCS
// revision of a binary built as the README builds it (-buildvcs=true):
// what the toolchain recorded, and in a git clone the commit checked out.
// (The go command records nothing in a linked git worktree.)
func TestVersionPrintsTheVCSRevision(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git work tree: %v", err)
	}
	lines := strings.Fields(string(top))
	bin := filepath.Join(t.TempDir(), "ticketgate")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	rev := regexp.MustCompile(`(?m)^\s*build\s+vcs\.revision=(\S+)$`).FindSubmatch(info)
	want := regexp.MustCompile(`^ticketgate \(devel\) \(no VCS revision: build with -buildvcs=true\)\n$`)
	if st, err := os.Stat(filepath.Join(lines[0], ".git")); err == nil && st.IsDir() {
		if rev == nil || string(rev[1]) != lines[1] {
			t.Fatalf("go build -buildvcs=true in a clone recorded revision %q, want HEAD %s", rev, lines[1])
		}
	}
	if rev != nil {
		want = regexp.MustCompile(`^ticketgate \S+ revision ` + string(rev[1]) + `( modified)?\n$`)
	}
	for _, arg := range []string{"version", "-version", "--version"} {
		r := runBinary(t, bin, arg)
		if r.code != 0 || !want.MatchString(r.stdout) {
			t.Errorf("%s: exit %d, stdout %q; want %v", arg, r.code, r.stdout, want)
		}
	}
}

// Postfix's pipe expands "-to ${recipient}" into one argument per
// recipient: each one reaches the desk, as over SMTP. Repeated -to flags
// keep working.
func TestInjectDeliversToEveryRecipientGiven(t *testing.T) {
	e := newEnv(t, true)
	id := e.injectOK(message("ivan@customer.example", "support@example.com", "First", "rcpt-1@customer.example", "x"))
	// Only the second recipient carries the ticket (a plus-address token):
	// the follow-up threads into the ticket only if it got through.
	follow := message("ivan@customer.example", "support@example.com", "More details", "rcpt-2@customer.example", "y")
	if r := e.run(follow, "inject", "-to", "support@example.com", "support+"+id+"@example.com"); r.code != 0 || r.stdout != id+" append\n" {
		t.Errorf("inject -to a b: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, id+" append")
	}
	// The first recipient is not ours, the second is.
	other := message("ivan@customer.example", "tech@example.com", "Other", "rcpt-3@customer.example", "z")
	id3 := e.injectOK(other, "-to", "nobody@example.com", "-to", "tech@example.com")
	// Through a running serve's admin API, recipients in any order with flags.
	e.serve()
	last := message("ivan@customer.example", "billing@example.com", "Invoice", "rcpt-4@customer.example", "w")
	id4 := e.injectOK(last, "-to", "nobody@example.com", "billing@example.com", "-from", "ivan@customer.example")
	if q := e.show(id3).Queue; q != "tech" {
		t.Errorf("-to nobody -to tech: queue %q, want tech", q)
	}
	if q := e.show(id4).Queue; q != "billing" {
		t.Errorf("-to nobody billing (through serve): queue %q, want billing", q)
	}
	if n := len(e.show(id).Messages); n < 2 {
		t.Errorf("ticket %s has %d messages, want the follow-up in it", id, n)
	}
}

// Text with no header field at all is not a message: Postfix bounces it
// (65) instead of the desk getting a ticket from nobody.
func TestInjectRefusesTextWithoutHeader(t *testing.T) {
	e := newEnv(t, false)
	for _, text := range []string{"not mail at all\n", "Hello,\r\n\r\nmy printer is on fire.\r\n"} {
		r := e.run([]byte(text), "inject", "-to", "support@example.com")
		if r.code != exDataErr || !strings.Contains(r.stderr, "no header fields") {
			t.Errorf("%q: exit %d, stderr %q; want %d and \"no header fields\"", text, r.code, r.stderr, exDataErr)
		}
	}
	if n := len(e.ticketsAfterRefusal()); n != 0 {
		t.Errorf("refused input left %d tickets", n)
	}
}

// "COMMAND -h" lists every flag its synopsis names: status sets a
// ticket's status with -as as the action commands do, and says so.
func TestHelpListsEveryFlagOfTheSynopsis(t *testing.T) {
	flagRE := regexp.MustCompile(`[ \[](-[a-z][a-z-]*)`)
	for _, c := range commands() {
		synopsis, _, _ := strings.Cut(c.usage, ": ")
		r := runBinary(t, binary, c.name, "-h")
		for _, m := range flagRE.FindAllStringSubmatch(synopsis, -1) {
			if !regexp.MustCompile(`(?m)^  ` + m[1] + `\b`).MatchString(r.stdout) {
				t.Errorf("%s -h does not list %s, which its synopsis names:\n%s", c.name, m[1], r.stdout)
			}
		}
	}
}
