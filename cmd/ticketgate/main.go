// Command ticketgate is an e-mail helpdesk gateway: mail to the support
// addresses becomes tickets, agents answer by mail, and a scheduler keeps
// the support policy's promises about time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is the version serve and version print: the one set at build
// time with -ldflags "-X main.version=...", else the module version from
// the build info.
var version string

func init() {
	if version == "" {
		version = buildVersion().module
	}
}

// exitError carries a process exit code (sysexits.h) with its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Exit codes from sysexits.h, as Postfix's pipe transport understands them.
const (
	exDataErr  = 65 // bad input
	exNoUser   = 67 // unknown recipient
	exSoftware = 70
	exIOErr    = 74 // records that do not decode
	exTempFail = 75 // try again later
	exConfig   = 78
)

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "serve -config F: run the listeners, outbox and scheduler", runServe},
		{"tickets", "tickets -config F [-view new|active|completed|mine [-as EMAIL]] [-requester ADDR] [-assignee ADDR|none] [-queue Q] [-status S] [-q TEXT] [-sort created|updated|priority|due] [-limit N [-cursor C]] [-json]: list tickets (summaries, oldest first)", runTickets},
		{"show", "show -config F [-json] HS-123456: one ticket with messages and events", runShow},
		{"inject", "inject -config F [-from ADDR] [-to ADDR]... [ADDR...] < message: deliver one message from stdin to every recipient given", runInject},
		{"status", "status -config F [-json] [-as EMAIL HS-123456 open|waiting|on_hold|resolved|closed]: mailboxes and outbox; with a ticket, set its status", runStatus},
		{"outbox", "outbox -config F [-json] | outbox show -config F ID | outbox retry -config F ID|-all: list queued mail, print one, make it due now", runOutbox},
		{"sweep", "sweep -config F [-now T] [-dry-run]: run the lifecycle/SLA sweep once", runSweep},
		{"assign", "assign -config F [-as EMAIL] [-json] HS-123456 me|EMAIL|none: assign a ticket", runAction("assign")},
		{"priority", "priority -config F [-as EMAIL] [-json] HS-123456 low|medium|high|critical: set priority", runAction("priority")},
		{"note", "note -config F [-as EMAIL] [-json] HS-123456 [TEXT...]: add an internal note (the text from stdin when none is given)", runAction("note")},
		{"merge", "merge -config F [-as EMAIL] [-json] HS-SOURCE HS-TARGET: merge a ticket into another (messages, participants and events move; the source is closed)", runAction("merge")},
		{"link", "link -config F [-as EMAIL] [-json] HS-123456 HS-654321: link two tickets both ways", runAction("link")},
		{"explain", "explain -config F [-json] [-from ADDR] [-to ADDR]... [ADDR...] < message: what would happen to a message, without doing it", runExplain},
		{"backup", "backup -config F -o FILE: consistent copy of the database, while serve runs or not", runBackup},
		{"restore", "restore -config F [-force] FILE: replace the database with a backup (serve must be stopped)", runRestore},
		{"report", "report -config F [-from D] [-to D] [-queue Q] [-json]: tickets opened, resolved and reopened, response and resolution times, SLA compliance, satisfaction", runReport},
		{"forget", "forget -config F [-as EMAIL] [-json] ADDR: erase a customer's personal data (texts, raw copies, attachments; the address becomes a pseudonym)", runForget},
		{"check", "check -config F: verify records against indexes; exit 1 with the list of problems", runCheck},
		{"migrate", "migrate -config F -from OLD.db: copy a bbolt database into the PostgreSQL database of the config (idempotent, resumable)", runMigrate},
		{"version", "version: print the module version and the VCS revision it was built from", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ticketgate:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return &exitError{code: 64, err: errors.New("no command given")}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "ticketgate help serve" is "ticketgate serve -h".
			return run(ctx, []string{args[1], "-h"}, stdin, stdout)
		}
		usage(stdout)
		return nil
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.usageExit(stdout, c.run(ctx, args[1:], stdin, stdout))
		}
	}
	usage(os.Stderr)
	return &exitError{code: 64, err: fmt.Errorf("unknown command %q", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ticketgate <command> [flags] [arguments]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintln(w, "  "+c.usage)
	}
	fmt.Fprintln(w, "\n\"ticketgate <command> -h\" or \"ticketgate help <command>\" describes a command's flags;\n\"ticketgate -version\" is \"ticketgate version\".")
}

// usageError is a command line a command cannot run with. help marks a
// request for the usage (-h, -help), which is not an error.
type usageError struct {
	fs   *flag.FlagSet
	help bool
	err  error
}

func (e *usageError) Error() string {
	if e.help {
		return "help requested"
	}
	return e.err.Error()
}

// usageExit prints the command's usage for a usage error: on stdout with
// exit 0 when it was asked for, on stderr with exit 64 (EX_USAGE) when the
// command line was wrong. Other results pass through.
func (c command) usageExit(stdout io.Writer, err error) error {
	var ue *usageError
	if !errors.As(err, &ue) {
		return err
	}
	if ue.help {
		c.printUsage(stdout, ue.fs)
		return nil
	}
	c.printUsage(os.Stderr, ue.fs)
	return &exitError{code: 64, err: fmt.Errorf("%s: %w", c.name, ue.err)}
}

// printUsage writes the synopsis (flags and positional arguments), what
// the command does and its flags.
func (c command) printUsage(w io.Writer, fs *flag.FlagSet) {
	synopsis, what, _ := strings.Cut(c.usage, ": ")
	fmt.Fprintf(w, "usage: ticketgate %s\n\n%s\n", synopsis, what)
	if fs != nil && hasFlags(fs) {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses a command's flags and checks the number of positional
// arguments after them: at least min, at most max (max < 0: no limit).
// Errors are usage errors, which run answers with the command's usage.
func parseFlags(fs *flag.FlagSet, args []string, min, max int) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return &usageError{fs: fs, help: true}
	case err != nil:
		return &usageError{fs: fs, err: err}
	case fs.NArg() < min:
		return &usageError{fs: fs, err: fmt.Errorf("%d argument(s) missing", min-fs.NArg())}
	case max >= 0 && fs.NArg() > max:
		return &usageError{fs: fs, err: fmt.Errorf("unexpected argument %q", fs.Arg(max))}
	}
	return nil
}

func runVersion(_ context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlagSet("version")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	b := buildVersion()
	if version != b.module {
		b.module = version // set with -ldflags
	}
	fmt.Fprintln(stdout, "ticketgate", b)
	return nil
}

// build is what the Go toolchain recorded about the binary.
type build struct {
	module   string // the main module's version; "(devel)" when it has none
	revision string // vcs.revision; "" when built without VCS information
	modified bool   // vcs.modified: the work tree had uncommitted changes
}

func (b build) String() string {
	switch {
	case b.revision == "":
		return b.module + " (no VCS revision: build with -buildvcs=true)"
	case b.modified:
		return b.module + " revision " + b.revision + " modified"
	}
	return b.module + " revision " + b.revision
}

// buildVersion reads the module version and VCS revision from the build
// info. "go build" records the revision only with -buildvcs=true (or when
// the default "auto" applies and GOFLAGS does not say -buildvcs=false).
func buildVersion() build {
	b := build{module: "(devel)"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.module = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// flags returns a flag set with the -config flag every command takes.
func flags(name string) (*flag.FlagSet, *string) {
	fs := newFlagSet(name)
	cfg := fs.String("config", "", "configuration file (default: built-in defaults)")
	return fs, cfg
}

// newFlagSet returns a flag set that prints nothing itself: run prints the
// usage for a usage error.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
