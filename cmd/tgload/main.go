// Command tgload drives a running ticketgate over SMTP or LMTP with
// concurrent connections and a mix of new tickets and replies, and prints
// the rate, the latency to the 250, errors by reply code, given the
// gateway's pid its CPU time and disk writes per message, and given its
// admin API the messages each commit carried. It only ever
// connects to loopback addresses and always stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// maxDuration bounds every run, whatever the flags say.
const maxDuration = 10 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ue usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "tgload:", err)
		os.Exit(64)
	case err != nil:
		fmt.Fprintln(os.Stderr, "tgload:", err)
		os.Exit(1)
	}
}

// usageError is a command line tgload cannot run with.
type usageError struct{ error }

// options are the parsed flags.
type options struct {
	load
	api      string
	token    string // the admin API's bearer token (-token-file)
	pid      int
	metrics  string
	discard  bool
	seeds    int
	bodySize int
	attach   int
	rate     float64
	newOnly  bool
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("tgload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	rcpt, tokenFile := o.define(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if err := o.check(fs, *rcpt, *tokenFile); err != nil {
		return nil, usageError{err}
	}
	return o, nil
}

const usageText = `usage: tgload [flags]

Sends a mix of mail to a running ticketgate over SMTP (or LMTP) with -c
connections, each reused for message after message, until -n messages are
sent or -duration is up, and prints msg/s, the latency to the 250 (p50, p99,
max) and errors by reply code. The mix: half new tickets from senders in
2000 domains, a quarter replies by [HS-nnnnnn] token (to seed tickets whose
ids it reads from the admin API), a quarter replies by In-Reply-To only (to
new tickets of this run); -attach-rate of them carry an attachment. Only
loopback addresses are accepted.

flags:
`

// define defines tgload's flags on fs, into o but for the recipients and
// the token file, whose values it returns.
func (o *options) define(fs *flag.FlagSet) (rcpt, tokenFile *string) {
	fs.StringVar(&o.addr, "addr", "127.0.0.1:2525", "the gateway's SMTP (or LMTP) listener; loopback only")
	fs.BoolVar(&o.lmtp, "lmtp", false, "speak LMTP instead of SMTP")
	fs.IntVar(&o.conns, "c", 8, "concurrent connections")
	fs.IntVar(&o.max, "n", 0, "messages to send in all; 0: until -duration is up")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send at most (also with -n); at most "+maxDuration.String())
	rcpt = fs.String("rcpt", "support@example.com", "recipients of every message, comma-separated")
	fs.IntVar(&o.bodySize, "size", 2000, "bytes of text in each message's body")
	fs.IntVar(&o.attach, "attach-size", 200<<10, "bytes of the attachment (before base64)")
	fs.Float64Var(&o.rate, "attach-rate", 0.10, "fraction of messages with the attachment")
	fs.StringVar(&o.api, "api", "127.0.0.1:8025", "the gateway's admin API, to learn the seed tickets' ids for token replies; \"\": none (token replies become In-Reply-To replies)")
	fs.BoolVar(&o.newOnly, "new-only", false, "every message is a new ticket from a new sender (no replies, no seed tickets)")
	fs.IntVar(&o.seeds, "seeds", 64, "new tickets sent before the timed run, for token replies to go to")
	fs.IntVar(&o.pid, "pid", 0, "the gateway's process id: print its CPU time and disk bytes written per message (from /proc)")
	tokenFile = fs.String("token-file", "", "the file holding the admin API's bearer token ([admin] token_file; with the example configuration data/admin.token), for -api")
	fs.StringVar(&o.metrics, "metrics", "", "the gateway's admin API (host:port), to print from its /metrics the bbolt store's commits during the run and the messages each carried; \"\": none")
	fs.BoolVar(&o.discard, "discard", false, "first run the same load against a built-in server that discards every message, then the gateway, and print the ratio")
	return rcpt, tokenFile
}

// check checks the flags parsed into o (rcpt and tokenFile besides) and
// completes o: the recipients, the token, no seeds for -new-only.
func (o *options) check(fs *flag.FlagSet, rcpt, tokenFile string) error {
	switch {
	case o.newOnly && o.seeds > 0 && seedsSet(fs):
		return errors.New("-new-only sends no replies: -seeds has nothing to do")
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.conns < 1 || o.conns > 1000:
		return errors.New("-c must be between 1 and 1000")
	case o.duration <= 0 || o.duration > maxDuration:
		return fmt.Errorf("-duration must be more than 0 and at most %s", maxDuration)
	case o.max < 0 || o.seeds < 0 || o.bodySize < 0 || o.attach < 0 || o.rate < 0 || o.rate > 1:
		return errors.New("-n, -seeds, -size, -attach-size must not be negative, -attach-rate is between 0 and 1")
	}
	if o.newOnly {
		o.seeds = 0
	}
	for _, r := range strings.Split(rcpt, ",") {
		if r = strings.TrimSpace(r); r != "" {
			o.rcpts = append(o.rcpts, r)
		}
	}
	if len(o.rcpts) == 0 {
		return errors.New("-rcpt names no recipient")
	}
	if err := loopback(o.addr); err != nil {
		return err
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("-token-file: %w", err)
		}
		if o.token = strings.TrimSpace(string(b)); o.token == "" {
			return fmt.Errorf("-token-file: %s is empty", tokenFile)
		}
	}
	for _, a := range []string{o.api, o.metrics} {
		if a == "" {
			continue
		}
		if err := loopback(a); err != nil {
			return err
		}
	}
	return nil
}

// seedsSet reports whether -seeds was given on the command line.
func seedsSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "seeds" })
	return set
}

// loopback refuses an address that is not on this machine's loopback
// interface: a load tool must never flood someone else's server.
func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		if ips, err = net.LookupIP(host); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address: tgload only sends to this machine (127.0.0.0/8, ::1, localhost)", addr)
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tgload: %d connections, %s, %s", o.conns, proto(o.lmtp), o.duration)
	if o.max > 0 {
		fmt.Fprintf(stdout, " or %d messages", o.max)
	}
	fmt.Fprintf(stdout, ", %d bytes of text, %.0f%% with a %d-byte attachment\n", o.bodySize, o.rate*100, o.attach)
	var base *result
	if o.discard {
		d, err := startDiscard(o.lmtp)
		if err != nil {
			return fmt.Errorf("discard server: %w", err)
		}
		dl := o.load
		dl.addr = d.addr()
		base, err = o.target(ctx, stdout, dl, admin{}, 0, "discard "+dl.addr, true)
		d.close()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  discard server received %d messages\n", d.received.Load())
	}
	res, err := o.target(ctx, stdout, o.load, admin{o.api, o.token}, o.pid, "gateway "+o.addr, false)
	if err != nil {
		return err
	}
	if base != nil && base.rate() > 0 {
		fmt.Fprintf(stdout, "ratio gateway/discard: %.3f of the rate (%.1f vs %.1f msg/s), p50 latency x%.1f, p99 x%.1f\n",
			res.rate()/base.rate(), res.rate(), base.rate(),
			ratio(res.percentile(0.5), base.percentile(0.5)), ratio(res.percentile(0.99), base.percentile(0.99)))
	}
	return nil
}

// target seeds, runs and prints one run against l.addr; fake makes up the
// seed tickets' ids (for the discard server).
func (o *options) target(ctx context.Context, stdout io.Writer, l load, api admin, pid int, name string, fake bool) (*result, error) {
	m := newMix(o.bodySize, o.attach, o.rate)
	m.newOnly = o.newOnly
	note, err := seed(ctx, l, m, o.seeds, api, fake)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "%s: %s\n", name, note)
	var before usage
	if pid != 0 {
		if before, err = readUsage(pid); err != nil {
			return nil, fmt.Errorf("-pid: %w", err)
		}
	}
	metrics := admin{o.metrics, o.token}
	if fake {
		metrics.addr = "" // the discard server has none
	}
	var committed commits
	if metrics.addr != "" {
		if committed, err = readCommits(ctx, metrics); err != nil {
			return nil, fmt.Errorf("-metrics: %w", err)
		}
	}
	res := l.run(ctx, m)
	fmt.Fprint(stdout, res.describe(name))
	if pid != 0 {
		after, err := readUsage(pid)
		if err != nil {
			return nil, fmt.Errorf("-pid: %w", err)
		}
		fmt.Fprint(stdout, perMessage(pid, before, after, res.ok))
	}
	if metrics.addr != "" {
		after, err := readCommits(ctx, metrics)
		if err != nil {
			return nil, fmt.Errorf("-metrics: %w", err)
		}
		fmt.Fprint(stdout, perCommit(committed, after, res.ok))
	}
	return res, nil
}

func proto(lmtp bool) string {
	if lmtp {
		return "LMTP"
	}
	return "SMTP"
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}
