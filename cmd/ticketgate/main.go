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
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
		{"tickets", "tickets -config F [-status S] [-json]: list tickets", runTickets},
		{"show", "show -config F [-json] HS-123456: one ticket with messages and events", runShow},
		{"inject", "inject -config F [-to ADDR] [-from ADDR] < message: deliver one message from stdin", runInject},
		{"status", "status -config F [HS-123456 STATUS]: mailboxes and outbox; with a ticket, set its status", runStatus},
		{"sweep", "sweep -config F [-now T] [-dry-run]: run the lifecycle/SLA sweep once", runSweep},
		{"assign", "assign -config F HS-123456 me|EMAIL|none: assign a ticket", runAction("assign")},
		{"priority", "priority -config F HS-123456 low|medium|high|critical: set priority", runAction("priority")},
		{"note", "note -config F HS-123456 TEXT: add an internal note", runAction("note")},
		{"explain", "explain -config F [-to ADDR] [-json] < message: what would happen to a message, without doing it", runExplain},
		{"backup", "backup -config F -o FILE: consistent copy of the database, while serve runs or not", runBackup},
		{"restore", "restore -config F [-force] FILE: replace the database with a backup (serve must be stopped)", runRestore},
		{"check", "check -config F: verify records against indexes; exit 1 with the list of problems", runCheck},
		{"version", "version: print the version", runVersion},
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
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdin, stdout)
		}
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	usage(os.Stderr)
	return &exitError{code: 64, err: fmt.Errorf("unknown command %q", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ticketgate <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintln(w, "  "+c.usage)
	}
}

func runVersion(_ context.Context, _ []string, _ io.Reader, stdout io.Writer) error {
	fmt.Fprintln(stdout, "ticketgate", version)
	return nil
}

// flags returns a flag set with the -config flag every command takes.
func flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfg := fs.String("config", "", "configuration file (default: built-in defaults)")
	return fs, cfg
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
