package main

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"ticketgate/rules"
)

// writeFile writes text to a file under t.TempDir and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ticketgate.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigRejectsUnknownKeysWithNameAndLine(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"[inbound]\nsmtp_lisen = \"x\"\n", []string{"inbound.smtp_lisen", ":2:"}},
		{"[store]\npath = \"a.db\"\n\n[outbound]\ntls = \"none\"\nrelay_host = \"x\"\n", []string{"outbound.relay_host", ":6:"}},
		{"[[route]]\naddress = \"help@example.com\"\nqueue = \"help\"\nqeue = \"x\"\n", []string{"route.qeue", ":4:"}},
		{"stor = 1\n", []string{"stor", ":1:"}},
	}
	for _, c := range cases {
		p := writeFile(t, c.text)
		_, err := loadConfig(p)
		if err == nil {
			t.Errorf("%q: loaded without error", c.text)
			continue
		}
		for _, w := range append(c.want, p) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", c.text, err, w)
			}
		}
	}
}

func TestConfigRejectsBadValuesClearly(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{"tls", "[outbound]\ntls = \"bogus\"\n", []string{"outbound.tls", `"bogus"`, "none, starttls or implicit"}},
		{"prefix digit", "[tickets]\nprefix = \"H5\"\n", []string{"tickets.prefix", `"H5"`, "letters"}},
		{"prefix long", "[tickets]\nprefix = \"TOOLONGPREFIX\"\n", []string{"tickets.prefix"}},
		{"numbers", "[tickets]\nnumbers = \"consecutive\"\n", []string{"tickets.numbers", `"consecutive"`, `"random" or "sequential"`}},
		{"route without queue", "[[route]]\naddress = \"help@example.com\"\n", []string{"route[0]", "help@example.com", "needs a queue"}},
		{"plus route", "[[route]]\naddress = \"help+x@example.com\"\nqueue = \"help\"\n", []string{"route[0].address", "plain address"}},
		{"route twice", "[[route]]\naddress = \"a@example.com\"\nqueue = \"a\"\n[[route]]\naddress = \"A@example.com\"\nqueue = \"b\"\n", []string{"a@example.com", "twice"}},
		{"route kind", "[[route]]\naddress = \"a@example.com\"\nqueue = \"a\"\nkind = \"urgent\"\n", []string{"route[0].kind", `"urgent"`, `"escalation"`, `"status"`}},
		{"duration", "[outbound]\nretry_base = \"soon\"\n", []string{"outbound.retry_base", `"soon"`, "duration"}},
		{"relay sessions", "[outbound]\nrelay_sessions = -1\n", []string{"outbound.relay_sessions", "-1", "between 0"}},
		{"wrong type", "[inbound]\nmax_recipients = \"fifty\"\n", []string{":2:"}},
		{"empty store", "[store]\npath = \"\"\n", []string{"store.path"}},
	}
	for _, c := range cases {
		_, err := loadConfig(writeFile(t, c.text))
		if err == nil {
			t.Errorf("%s: loaded without error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
}

func TestBuiltInDefaultsLoad(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if cfg.Store.Path != filepath.Join(wd, "data", "ticketgate.db") || cfg.Inbound.SMTPListen != "127.0.0.1:2525" || cfg.Tickets.Prefix != "HS" ||
		cfg.Outbound.TLS != "auto" || cfg.Outbound.Relay != "maildir:"+filepath.Join(wd, "data", "sent") || cfg.Admin.Listen != "127.0.0.1:8025" || len(cfg.Routes) == 0 {
		t.Errorf("defaults: %+v", cfg)
	}
	// A file that sets one key keeps every other default, routes included.
	cfg, err = loadConfig(writeFile(t, "[tickets]\nprefix = \"SUP\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tickets.Prefix != "SUP" || cfg.Inbound.MaxMessageBytes != 26214400 || len(cfg.Routes) != 5 {
		t.Errorf("one key over the defaults: prefix %q max_message_bytes %d routes %d", cfg.Tickets.Prefix, cfg.Inbound.MaxMessageBytes, len(cfg.Routes))
	}
	// A file with routes replaces the default routes.
	cfg, err = loadConfig(writeFile(t, "[[route]]\naddress = \"help@example.org\"\nqueue = \"help\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 1 || cfg.Routes[0].Address != "help@example.org" {
		t.Errorf("routes from the file: %+v", cfg.Routes)
	}
}

const exampleConfig = "../../config.example.toml"

// A status route needs no queue; the example ships status@example.com.
func TestStatusRouteConfig(t *testing.T) {
	cfg, err := loadConfig(writeFile(t, "[[route]]\naddress = \"help@example.com\"\nqueue = \"help\"\n[[route]]\naddress = \"status@example.com\"\nkind = \"status\"\n"))
	if err != nil {
		t.Fatalf("a status route without a queue: %v", err)
	}
	if len(cfg.Routes) != 2 || cfg.Routes[1].Kind != rules.RouteStatus {
		t.Errorf("routes %+v", cfg.Routes)
	}
	if _, err := loadConfig(writeFile(t, "[[route]]\naddress = \"help@example.com\"\nkind = \"escalation\"\n")); err == nil || !strings.Contains(err.Error(), "needs a queue") {
		t.Errorf("an escalation route without a queue: %v", err)
	}
	cfg, err = loadConfig(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if rt, _, ok := rules.Routes(cfg.Routes).Match("status@example.com"); !ok || rt.Kind != rules.RouteStatus {
		t.Errorf("the example config has no status route for status@example.com: %+v", cfg.Routes)
	}
}

func TestExampleConfigLoadsAndDocumentsEveryKey(t *testing.T) {
	if _, err := os.Stat(exampleConfig); err != nil {
		t.Skipf("no %s yet", exampleConfig)
	}
	if _, err := loadConfig(exampleConfig); err != nil {
		t.Fatalf("the example config does not load: %v", err)
	}
	documented := exampleKeys(t, exampleConfig)
	for _, k := range configKeys(reflect.TypeOf(Config{}), "") {
		if !matchesAny(k, documented) {
			t.Errorf("config key %s is not in %s (set or commented out)", k, exampleConfig)
		}
	}
}

var (
	tableLine = regexp.MustCompile(`^#?\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$`)
	keyLine   = regexp.MustCompile(`^#?\s*([A-Za-z0-9_\-]+)\s*=`)
)

// exampleKeys returns the dotted keys the example sets or shows commented
// out, e.g. "inbound.smtp_listen", "imap.password_file".
func exampleKeys(t *testing.T, p string) map[string]bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]bool{}
	table := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := tableLine.FindStringSubmatch(line); m != nil {
			table = m[1] + "."
			continue
		}
		if m := keyLine.FindStringSubmatch(line); m != nil {
			keys[table+m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// configKeys lists the dotted TOML keys of a config struct; a map level is
// "*" (e.g. "sla.targets.*.first_response").
func configKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for f := range typ.Fields() {
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		keys = append(keys, subKeys(f.Type, prefix+tag)...)
	}
	return keys
}

func subKeys(typ reflect.Type, name string) []string {
	switch {
	case typ.Kind() == reflect.Struct:
		return configKeys(typ, name+".")
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.Struct:
		return configKeys(typ.Elem(), name+".")
	case typ.Kind() == reflect.Map:
		return subKeys(typ.Elem(), name+".*")
	}
	return []string{name}
}

func matchesAny(pattern string, keys map[string]bool) bool {
	pat := strings.ReplaceAll(pattern, ".", "/")
	for k := range keys {
		if ok, _ := path.Match(pat, strings.ReplaceAll(k, ".", "/")); ok {
			return true
		}
	}
	return false
}

// A PostgreSQL config with store.path emptied is refused: the keys, the
// admin token and the hand-off log would land in whatever directory each
// command is started from.
func TestPostgresConfigWithoutStorePathIsRefused(t *testing.T) {
	cfg, err := loadConfig(writeFile(t, "[store]\ndriver = \"postgres\"\ndsn = \"host=db1 dbname=ticketgate\"\npath = \"\"\n"))
	if err == nil {
		t.Fatalf("loaded; the VERP key would be %q, relative to the current directory", verpKeyFile(cfg))
	}
	if !strings.Contains(err.Error(), "store.path") {
		t.Errorf("error %q does not name store.path", err)
	}
}

// Every duration key refuses a value Go cannot read as one, naming the
// key: "30d" (Go durations have no days) must not quietly become the
// default.
func TestConfigRejectsEveryDurationThatIsNotOne(t *testing.T) {
	for _, key := range []string{"store.lease", "inbound.read_timeout", "inbound.write_timeout",
		"inbound.mail_from_timeout", "inbound.max_data_duration", "outbound.retry_base", "outbound.give_up_after",
		"admin.outbox_max_age", "tickets.reopen_window", "limits.bounce_hold", "lifecycle.remind_after",
		"lifecycle.waiting_after", "lifecycle.close_after", "lifecycle.resolved_close_after", "sla.warn_before",
		"sla.critical_update_every", "retention.closed_after", "shutdown.grace"} {
		section, name, _ := strings.Cut(key, ".")
		_, err := loadConfig(writeFile(t, "["+section+"]\n"+name+" = \"30d\"\n"))
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), `"30d"`) {
			t.Errorf("%s = \"30d\": error %v, want one naming %s and \"30d\"", key, err, key)
		}
	}
}

// A duration of 0 or below is refused, naming the key, instead of quietly
// becoming the default ("0s" for reopen_window meant 168h); the outbox
// age check alone takes "0s", for "not checked".
func TestConfigRejectsDurationsOfZero(t *testing.T) {
	for _, key := range []string{"inbound.read_timeout", "inbound.write_timeout", "inbound.mail_from_timeout",
		"inbound.max_data_duration", "outbound.retry_base", "outbound.give_up_after", "tickets.reopen_window",
		"limits.bounce_hold", "shutdown.grace"} {
		for _, v := range []string{"0s", "-1h"} {
			section, name, _ := strings.Cut(key, ".")
			_, err := loadConfig(writeFile(t, "["+section+"]\n"+name+" = \""+v+"\"\n"))
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("%s = %q: error %v, want one naming %s", key, v, err, key)
			}
		}
	}
	if _, err := loadConfig(writeFile(t, "[admin]\noutbox_max_age = \"0s\"\n")); err != nil {
		t.Errorf("admin.outbox_max_age = \"0s\" (not checked) refused: %v", err)
	}
}

// A relay that is neither host:port nor maildir:PATH is refused when the
// configuration loads: serve would start, and every mail would wait in
// the outbox for a relay it can never dial, until given up days later.
func TestConfigRejectsARelayThatIsNotHostPort(t *testing.T) {
	for _, relay := range []string{"smtp.example.com", "", "127.0.0.1:"} {
		_, err := loadConfig(writeFile(t, "[outbound]\nrelay = "+quote(relay)+"\n"))
		if err == nil || !strings.Contains(err.Error(), "outbound.relay") || !strings.Contains(err.Error(), "host:port") {
			t.Errorf("relay = %q: error %v, want one naming outbound.relay and host:port", relay, err)
		}
	}
	for _, relay := range []string{"127.0.0.1:25", "smtp.example.com:587", "[::1]:25", "maildir:data/sent"} {
		if _, err := loadConfig(writeFile(t, "[outbound]\nrelay = "+quote(relay)+"\n")); err != nil {
			t.Errorf("relay = %q: %v", relay, err)
		}
	}
}

// max_message_bytes has no "0 = no limit": the SMTP and LMTP listeners
// read 0 as no limit while inject and the admin API refused every
// message as too large (exit 65, which Postfix bounces). A value under 1
// is refused when the configuration loads.
func TestConfigRejectsAMaxMessageBytesUnderOne(t *testing.T) {
	for _, v := range []string{"0", "-1"} {
		_, err := loadConfig(writeFile(t, "[inbound]\nmax_message_bytes = "+v+"\n"))
		if err == nil || !strings.Contains(err.Error(), "inbound.max_message_bytes") {
			t.Errorf("max_message_bytes = %s: error %v, want one naming inbound.max_message_bytes", v, err)
		}
	}
}

// A PostgreSQL connection string given without driver = "postgres" is
// refused: each gateway would run on a bbolt file of its own, the
// tickets split between them, without a word.
func TestConfigRejectsADSNWithoutThePostgresDriver(t *testing.T) {
	for _, text := range []string{"[store]\ndsn_file = \"/etc/ticketgate/dsn\"\n", "[store]\ndsn = \"host=db1 dbname=ticketgate\"\n",
		"[store]\ndriver = \"bbolt\"\ndsn = \"host=db1 dbname=ticketgate\"\n"} {
		_, err := loadConfig(writeFile(t, text))
		if err == nil || !strings.Contains(err.Error(), "store.driver") || !strings.Contains(err.Error(), `"postgres"`) {
			t.Errorf("%q: error %v, want one asking for store.driver = \"postgres\"", text, err)
		}
	}
}
