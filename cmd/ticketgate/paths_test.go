package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/mailin"
)

// runIn runs the ticketgate binary with args in the working directory dir.
func runIn(t *testing.T, dir string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, binary, args...)
	c.Dir = dir
	c.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code: c.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// files lists every file and directory under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var list []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			list = append(list, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// appendConfig adds text to the installation's config file.
func (e *env) appendConfig(text string) {
	e.t.Helper()
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		e.t.Fatal(err)
	}
}

// Postfix runs the pipe in its spool directory, operators run commands
// from their home: relative paths in the config are the config
// directory's, wherever the command starts.
func TestRelativePathsAreTakenFromTheConfigDirectory(t *testing.T) {
	e := newEnv(t, false)
	e.appendConfig("[agents]\nsecret_file = \"keys/agent.key\"\n")
	elsewhere := t.TempDir()
	raw := message("ida@customer.example", "support@example.com", "From elsewhere", "paths-1@customer.example", "hi")
	r := runIn(t, elsewhere, raw, "inject", "-config", e.cfg)
	m := ticketLine.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("inject from another directory: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"data/tickets.db", "data/verp.key", "keys/agent.key"} {
		if _, err := os.Stat(filepath.Join(e.dir, f)); err != nil {
			t.Errorf("%s is not next to the config: %v", f, err)
		}
	}
	if got := files(t, elsewhere); len(got) != 0 {
		t.Errorf("inject created %v in its working directory", got)
	}

	// A relative -config is the working directory's; the paths in it are
	// still the config file's directory's.
	other := t.TempDir()
	rel, err := filepath.Rel(other, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r = runIn(t, other, nil, "tickets", "-config", rel, "-json")
	var list []struct {
		ID string `json:"id"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 1 || list[0].ID != m[1] {
		t.Errorf("tickets -config %s from another directory: exit %d, stdout %q, stderr %q; want %s", rel, r.code, r.stdout, r.stderr, m[1])
	}
	if r := runIn(t, other, nil, "show", "-config", rel, m[1]); r.code != 0 || !strings.Contains(r.stdout, "From elsewhere") {
		t.Errorf("show from another directory: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// Every command but serve and inject needs a database: on a missing one
// it says where it looked, exits 66 (EX_NOINPUT) and creates nothing, not
// even a directory or a key, wherever it is started.
func TestCommandsOnAMissingDatabaseFailWithNoInput(t *testing.T) {
	e := newEnv(t, true) // admin API configured, no serve: nothing to hand over to
	elsewhere := t.TempDir()
	db := filepath.Join(e.dir, "data", "tickets.db")
	msg := message("ida@customer.example", "support@example.com", "Missing", "paths-2@customer.example", "hi")
	for _, args := range [][]string{
		{"tickets"}, {"tickets", "-json"}, {"show", "HS-123456"}, {"show", "-json", "HS-123456"},
		{"status"}, {"status", "-json"}, {"status", "HS-123456", "open"},
		{"assign", "HS-123456", "ana@example.com"}, {"priority", "HS-123456", "high"},
		{"note", "HS-123456", "a note"}, {"sweep"}, {"sweep", "-dry-run"}, {"explain"},
	} {
		cmd := append([]string{args[0], "-config", e.cfg}, args[1:]...)
		r := runIn(t, elsewhere, msg, cmd...)
		if r.code != exNoInput || !strings.Contains(r.stderr, db) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d naming %s", strings.Join(args, " "), r.code, r.stdout, r.stderr, exNoInput, db)
		}
	}
	if got := files(t, e.dir); !slices.Equal(got, []string{"ticketgate.toml"}) {
		t.Errorf("the commands created files next to the config: %v", got)
	}
	if got := files(t, elsewhere); len(got) != 0 {
		t.Errorf("the commands created files in their working directory: %v", got)
	}

	// Without -config the built-in defaults' ./data is the working
	// directory's.
	r := runIn(t, elsewhere, nil, "tickets")
	if want := filepath.Join(elsewhere, "data", "ticketgate.db"); r.code != exNoInput || !strings.Contains(r.stderr, want) {
		t.Errorf("tickets without -config: exit %d, stderr %q; want %d naming %s", r.code, r.stderr, exNoInput, want)
	}
	if got := files(t, elsewhere); len(got) != 0 {
		t.Errorf("tickets without -config created %v", got)
	}
}

// An error about a file names it by its absolute path, whatever relative
// name the config or the command line gave it.
func TestErrorsNameAbsolutePaths(t *testing.T) {
	elsewhere := t.TempDir()
	msg := message("ida@customer.example", "support@example.com", "Paths", "paths-3@customer.example", "hi")

	r := runIn(t, elsewhere, nil, "tickets", "-config", "nowhere/ticketgate.toml")
	if want := filepath.Join(elsewhere, "nowhere", "ticketgate.toml"); r.code != exConfig || !strings.Contains(r.stderr, want) {
		t.Errorf("missing config: exit %d, stderr %q; want %d naming %s", r.code, r.stderr, exConfig, want)
	}

	cases := []struct {
		name, config string
		want         string // relative to the config's directory
	}{
		{"unknown key", "[inbound]\nsmtp_lisen = \"x\"\n", "ticketgate.toml"},
		{"templates", "[outbound]\ntemplates = \"tpl\"\n", "tpl"},
		{"bad key", "[agents]\nsecret_file = \"bad.key\"\n", "bad.key"},
		{"previous key", "[agents]\nprevious_secret_file = \"old.key\"\n", "old.key"},
		{"store directory", "[store]\npath = \"afile/tickets.db\"\n", "afile"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "ticketgate.toml")
		os.WriteFile(cfg, []byte("[admin]\nlisten = \"\"\n"+c.config), 0o600)
		os.WriteFile(filepath.Join(dir, "bad.key"), []byte("not hex\n"), 0o600)
		os.WriteFile(filepath.Join(dir, "afile"), nil, 0o600)
		rel, err := filepath.Rel(elsewhere, cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := runIn(t, elsewhere, msg, "inject", "-config", rel)
		if want := filepath.Join(dir, c.want); r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, stderr %q; want an error naming %s", c.name, r.code, r.stderr, want)
		}
	}
}

// Every configuration value that names a file is resolved: a key whose
// name says it is a path and that pathFields does not list fails here.
func TestEveryPathKeyIsResolved(t *testing.T) {
	cfg := Config{IMAP: make([]mailin.IMAPConfig, 1)}
	var keys []string
	pathKeys(reflect.ValueOf(&cfg).Elem(), "", func(key string, v reflect.Value) {
		v.SetString("rel/" + key)
		keys = append(keys, key)
	})
	if len(keys) < 5 {
		t.Fatalf("found only the path keys %v", keys)
	}
	base := t.TempDir()
	cfg.resolvePaths(base)
	pathKeys(reflect.ValueOf(&cfg).Elem(), "", func(key string, v reflect.Value) {
		if want := filepath.Join(base, "rel", key); v.String() != want {
			t.Errorf("%s = %q after resolving against %s; want %q (add it to pathFields)", key, v.String(), base, want)
		}
	})
}

// pathKey matches the names of keys that hold a file or directory.
var pathKey = regexp.MustCompile(`(^|_)(path|file|dir|directory|templates|maildir)$`)

// pathKeys calls fn with every string value under v whose key is a path
// key, with its dotted key.
func pathKeys(v reflect.Value, prefix string, fn func(key string, v reflect.Value)) {
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
		fv := v.Field(i)
		switch {
		case name == "" || name == "-":
		case fv.Kind() == reflect.Struct:
			pathKeys(fv, prefix+name+".", fn)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for j := 0; j < fv.Len(); j++ {
				pathKeys(fv.Index(j), prefix+name+".", fn)
			}
		case fv.Kind() == reflect.String && pathKey.MatchString(name):
			fn(prefix+name, fv)
		}
	}
}

// The configuration docs/deploy.md installs loads, keeps its state where
// the systemd unit lets it write, and names the addresses and port the
// Postfix files in contrib/postfix hand mail to.
func TestDeployConfigMatchesThePostfixFiles(t *testing.T) {
	cfg, err := loadConfig("../../contrib/ticketgate.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range cfg.pathFields() {
		if *p != "" && !strings.HasPrefix(*p, "/var/lib/ticketgate/") {
			t.Errorf("path %s is outside the service's StateDirectory /var/lib/ticketgate", *p)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile("../../contrib/postfix/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	recipients, transport, pipe := read("recipients"), read("transport"), read("transport-pipe")
	addrs := []string{"bounces@" + cfg.Inbound.Hostname}
	for _, r := range cfg.Routes {
		addrs = append(addrs, r.Address)
	}
	for _, a := range addrs {
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(a) + `\s+(\S+)$`)
		if m := line.FindStringSubmatch(recipients); m == nil || m[1] != "OK" {
			t.Errorf("contrib/postfix/recipients does not accept %s", a)
		}
		if m := line.FindStringSubmatch(transport); m == nil || m[1] != "lmtp:inet:"+cfg.Inbound.LMTPListen {
			t.Errorf("contrib/postfix/transport does not send %s to lmtp:inet:%s", a, cfg.Inbound.LMTPListen)
		}
		if m := line.FindStringSubmatch(pipe); m == nil || m[1] != "ticketgate:" {
			t.Errorf("contrib/postfix/transport-pipe does not send %s to ticketgate:", a)
		}
	}
}

// relay holds host:port or "maildir:PATH": only a Maildir's PATH is a
// path, and it resolves like every other one.
func TestMaildirRelayResolvesAgainstTheConfigFile(t *testing.T) {
	base := t.TempDir()
	for relay, want := range map[string]string{
		"maildir:data/sent": "maildir:" + filepath.Join(base, "data/sent"),
		"maildir:/srv/mail": "maildir:/srv/mail",
		"127.0.0.1:25":      "127.0.0.1:25",
	} {
		cfg := Config{}
		cfg.Outbound.Relay = relay
		cfg.resolvePaths(base)
		if cfg.Outbound.Relay != want {
			t.Errorf("relay %q resolves to %q, want %q", relay, cfg.Outbound.Relay, want)
		}
	}
}

// A command that only reads (tickets, show, status, outbox, report)
// creates no key files beside an existing database that has none (a
// restored backup, a new gateway of a PostgreSQL cluster before its keys
// are copied): made by whoever ran the command, they would be keys of
// their own, owned by them, where serve expects the installation's.
func TestReadingCommandsCreateNoKeys(t *testing.T) {
	e := newEnv(t, false)
	id := e.injectOK(message("ida@customer.example", "support@example.com", "Keys", "keys-1@customer.example", "hi"))
	keys := []string{filepath.Join(e.dir, "data", "agent.key"), filepath.Join(e.dir, "data", "verp.key")}
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"tickets"}, {"show", id}, {"status"}, {"outbox"}, {"report"}} {
		if r := e.run(nil, args[0], args[1:]...); r.code != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, k := range keys {
			if _, err := os.Stat(k); err == nil {
				t.Fatalf("%v created %s", args, k)
			}
		}
	}
}

// explain and sweep -dry-run store and send nothing: like the commands
// that only read, they make no key file beside a database that has none
// (an operator trying a message on a restored backup would leave keys of
// their own where serve expects the installation's, and every agent's
// answer to the addresses signed with the real ones would be refused).
func TestDryRunCommandsCreateNoKeys(t *testing.T) {
	e := newEnv(t, false)
	msg := message("ida@customer.example", "support@example.com", "Keys", "keys-2@customer.example", "hi")
	e.injectOK(msg)
	keys := []string{filepath.Join(e.dir, "data", "agent.key"), filepath.Join(e.dir, "data", "verp.key")}
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"explain"}, {"explain", "-json"}, {"sweep", "-dry-run"}} {
		if r := e.run(msg, args[0], args[1:]...); r.code != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, k := range keys {
			if _, err := os.Stat(k); err == nil {
				t.Fatalf("%v created %s", args, k)
			}
		}
	}
}
