package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"ticketgate/desk"
	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// Config is the whole configuration file.
type Config struct {
	Store    store.Config   `toml:"store"`
	Inbound  mailin.Config  `toml:"inbound"`
	Outbound mailout.Config `toml:"outbound"`
	Admin    AdminConfig    `toml:"admin"`
	Tickets  TicketsConfig  `toml:"tickets"`
	Routes   []rules.Route  `toml:"route"`

	// Agents and plans (agents by mail).
	Agents     []desk.Agent      `toml:"agent"`
	AgentsConf desk.AgentsConfig `toml:"agents"`
	Plans      []PlanConfig      `toml:"plan"`
	// RequestTypes map subject tags to category and priority; none
	// configured means the shipped ones (rules.DefaultRequestTypes).
	RequestTypes []rules.RequestType `toml:"request_type"`
	Lifecycle    LifecycleConfig     `toml:"lifecycle"`
	SLA          SLAConfig           `toml:"sla"`
	// Calendars are named business calendars; queues and the escalation
	// level name theirs.
	Calendars  map[string]BusinessHoursConfig `toml:"calendars"`
	Queues     map[string]QueueConfig         `toml:"queues"`
	Escalation EscalationConfig               `toml:"escalation"`
	IMAP       []mailin.IMAPConfig            `toml:"imap"`
	Limits     LimitsConfig                   `toml:"limits"`
	Log        LogConfig                      `toml:"log"`
	Shutdown   ShutdownConfig                 `toml:"shutdown"`
	Retention  RetentionConfig                `toml:"retention"`

	file string // absolute path of the config file; "" for the built-in defaults
}

// AdminConfig is the [admin] section: the HTTP admin API.
type AdminConfig struct {
	Listen string `toml:"listen"`
	// TokenFile holds the bearer token the API asks for; "" is
	// admin.token next to the database. serve creates it (0600) when
	// missing; the commands read it to hand over to a running serve.
	TokenFile string `toml:"token_file"`
	// Hostnames are the names (or addresses) the API may be reached by
	// besides the listen address: any other Host is refused.
	Hostnames []string `toml:"hostnames"`
	// TLSCert and TLSKey (PEM files) make the API speak HTTPS; a listen
	// address that is not loopback needs them.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// MinFreeBytes is the free space /healthz wants on the database's
	// disk (0: not checked).
	MinFreeBytes int64 `toml:"min_free_bytes"`
	// OutboxMaxAge is how long the earliest due outbox entry may wait
	// past its due time before /healthz says unhealthy ("0s": not checked).
	OutboxMaxAge string `toml:"outbox_max_age"`
}

// TicketsConfig is the [tickets] section.
type TicketsConfig struct {
	Prefix string `toml:"prefix"` // ticket id prefix, default "HS"
	// Numbers is how new tickets are numbered: "random" (the default) or
	// "sequential".
	Numbers      string `toml:"numbers"`
	ReopenWindow string `toml:"reopen_window"` // replies to closed tickets within it reopen them; default 168h
	// NotifyStatus lists the statuses whose setting by an agent or operator
	// mails the customer; nil means resolved and closed.
	NotifyStatus []string `toml:"notify_status"`
	// MaxParticipants caps a ticket's participants besides the requester
	// (0: 20).
	MaxParticipants int `toml:"max_participants"`
}

//go:embed defaults.toml
var defaultConfig []byte

// loadConfig reads the file at path over the built-in defaults ("" reads
// only the defaults). Unknown keys are refused with their name and line.
// Relative paths in it are taken from the file's directory (from the
// current directory for the defaults) and returned absolute.
func loadConfig(path string) (*Config, error) {
	cfg := &Config{}
	if err := decode(defaultConfig, cfg, "built-in defaults"); err != nil {
		return nil, err
	}
	base, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("config: current directory: %w", err)
	}
	if path != "" {
		if path, err = filepath.Abs(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		cfg.Routes = nil // a file with routes replaces the default routes
		if err := decode(b, cfg, path); err != nil {
			return nil, err
		}
		if len(cfg.Routes) == 0 {
			if err := decodeRoutesOnly(defaultConfig, cfg); err != nil {
				return nil, err
			}
		}
		cfg.file = path
		base = filepath.Dir(path)
	}
	cfg.resolvePaths(base)
	return cfg, cfg.validate()
}

func decodeRoutesOnly(b []byte, cfg *Config) error {
	var d struct {
		Routes []rules.Route `toml:"route"`
	}
	if err := toml.Unmarshal(b, &d); err != nil {
		return err
	}
	cfg.Routes = d.Routes
	return nil
}

func decode(b []byte, cfg *Config, name string) error {
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(cfg)
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q", name, row, strings.Join(e.Key(), ".")))
		}
		return fmt.Errorf("config: %s", strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Errorf("config: %s:%d:%d: %v", name, row, col, de)
	}
	if err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	return nil
}

var prefixRE = regexp.MustCompile(`^[A-Za-z]{1,8}$`)

func (c *Config) validate() error {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	checkStore(c.Store, bad)
	c.checkMail(bad)
	c.checkDurations(bad)
	checkRoutes(c.Routes, bad)
	if !prefixRE.MatchString(c.Tickets.Prefix) {
		bad("tickets.prefix %q must be 1 to 8 letters", c.Tickets.Prefix)
	}
	if n := c.Tickets.Numbers; n != "random" && n != "sequential" {
		bad("tickets.numbers %q must be \"random\" or \"sequential\"", n)
	}
	if (c.Admin.TLSCert == "") != (c.Admin.TLSKey == "") {
		bad("admin.tls_cert and admin.tls_key go together: set both or neither")
	}
	if c.Admin.MinFreeBytes < 0 {
		bad("admin.min_free_bytes %d must be 0 (off) or more", c.Admin.MinFreeBytes)
	}
	errs = append(errs, c.Log.check()...)
	checkIMAP(c.IMAP, c.Routes, bad)
	if _, err := policyFromConfig(c); err != nil {
		bad("%s", strings.TrimPrefix(err.Error(), "config: "))
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// checkStore reports to bad what is wrong in [store].
func checkStore(s store.Config, bad func(string, ...any)) {
	switch s.Driver {
	case "", "bbolt":
		if s.Path == "" {
			bad("store.path must be set")
		}
		if s.DSN != "" || s.DSNFile != "" {
			// Forgotten driver: this gateway would run on a file of its
			// own instead of the database the others share.
			bad("store.dsn and store.dsn_file name a PostgreSQL database, which only driver \"postgres\" uses: set store.driver = \"postgres\", or remove them")
		}
	case "postgres":
		if (s.DSN == "") == (s.DSNFile == "") {
			bad("store.dsn or store.dsn_file (one of them) must be set with driver \"postgres\"")
		}
		if s.Path == "" {
			// Beside it are this gateway's keys, admin token and
			// hand-off log; "" would put them in the current directory.
			bad("store.path must be set with driver \"postgres\" too: its directory holds the keys and the hand-off log")
		}
	default:
		bad("store.driver %q must be bbolt or postgres", s.Driver)
	}
	if s.Lease != "" {
		if d, err := time.ParseDuration(s.Lease); err != nil || d < 3*time.Second {
			bad("store.lease %q must be a duration of at least 3s", s.Lease)
		}
	}
}

// checkMail reports to bad what is wrong in [inbound] and [outbound]
// but their durations (checkDurations).
func (c *Config) checkMail(bad func(string, ...any)) {
	if c.Inbound.Hostname == "" {
		bad("inbound.hostname must be set")
	}
	if n := c.Inbound.MaxMessageBytes; n < 1 {
		// go-smtp reads 0 as no limit, inject and the admin API as
		// room for nothing: there is no "no limit".
		bad("inbound.max_message_bytes %d must be at least 1 (e.g. 26214400, 25 MiB)", n)
	}
	if _, err := mailin.ParseTrustedRelays(c.Inbound.TrustedRelays); err != nil {
		bad("inbound.trusted_relays: %v", err)
	}
	switch c.Outbound.TLS {
	case "", mailout.TLSAuto, "none", "starttls", "implicit":
	default:
		bad("outbound.tls %q must be auto, none, starttls or implicit", c.Outbound.TLS)
	}
	if n := c.Outbound.RelaySessions; n < 0 || n > 100 {
		bad("outbound.relay_sessions %d must be between 0 (the default, %d) and 100", n, mailout.DefaultRelaySessions)
	}
	if dir, ok := mailout.MaildirPath(c.Outbound.Relay); ok && dir == "" {
		bad("outbound.relay %q names no directory: maildir:PATH", c.Outbound.Relay)
	} else if _, port, err := net.SplitHostPort(c.Outbound.Relay); !ok && (err != nil || port == "") {
		bad("outbound.relay %q must be the relay's host:port (\"127.0.0.1:25\") or maildir:PATH", c.Outbound.Relay)
	}
}

// checkDurations reports to bad the durations of the configuration that
// do not parse as one (those with rules of their own, like [lifecycle]'s,
// are checked with the policy).
func (c *Config) checkDurations(bad func(string, ...any)) {
	for _, k := range []struct{ name, v string }{{"tickets.reopen_window", c.Tickets.ReopenWindow},
		{"outbound.retry_base", c.Outbound.RetryBase}, {"outbound.give_up_after", c.Outbound.GiveUpAfter},
		{"inbound.read_timeout", c.Inbound.ReadTimeout}, {"inbound.write_timeout", c.Inbound.WriteTimeout},
		{"inbound.mail_from_timeout", c.Inbound.MailFromTimeout}, {"inbound.max_data_duration", c.Inbound.MaxDataDuration},
		{"shutdown.grace", c.Shutdown.Grace}, {"admin.outbox_max_age", c.Admin.OutboxMaxAge},
		{"limits.bounce_hold", c.Limits.BounceHold}} {
		if k.v == "" {
			continue
		}
		d, err := time.ParseDuration(k.v)
		switch {
		case err != nil:
			bad("%s %q is not a duration like \"90s\" or \"72h\"", k.name, k.v)
		case d < 0 || d == 0 && k.name != "admin.outbox_max_age":
			// Read as "use the default" it would quietly mean the
			// opposite of what was written ("0s": never reopen).
			bad("%s %q must be more than 0", k.name, k.v)
		}
	}
}

// checkIMAP reports to bad what is wrong in the [[imap]] mailboxes: each
// one's settings, and a name given twice (each has a lease, a checkpoint
// and a line in status by its name).
func checkIMAP(list []mailin.IMAPConfig, routes []rules.Route, bad func(string, ...any)) {
	names := map[string]bool{}
	for _, m := range list {
		if _, err := m.Check(routes); err != nil {
			bad("%v", err)
		}
		if m.Name != "" && names[m.Name] {
			bad("imap %q is listed twice", m.Name)
		}
		names[m.Name] = true
	}
}

// checkRoutes reports to bad what is wrong in the [[route]] tables.
func checkRoutes(routes []rules.Route, bad func(string, ...any)) {
	seen := map[string]bool{}
	for i, r := range routes {
		a := strings.ToLower(r.Address)
		if !strings.Contains(a, "@") || strings.Contains(a, "+") {
			bad("route[%d].address %q must be a plain address like support@example.com", i, r.Address)
		}
		if r.Queue == "" && r.Kind != rules.RouteStatus {
			bad("route[%d] (%s) needs a queue", i, r.Address)
		}
		if !slices.Contains(rules.RouteKinds, r.Kind) {
			bad("route[%d].kind %q is not a route kind: use \"\" (mail opens and joins tickets, the default), \"escalation\" or \"status\" (answers with the sender's open tickets)", i, r.Kind)
		}
		if seen[a] {
			bad("route %s is listed twice", a)
		}
		seen[a] = true
	}
	if len(routes) == 0 {
		bad("at least one [[route]] is needed")
	}
}

func dur(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}
