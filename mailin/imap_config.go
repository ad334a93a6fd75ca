package mailin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"ticketgate/rules"
)

// IMAPConfig is one [[imap]] mailbox to poll.
type IMAPConfig struct {
	Name         string `toml:"name"`
	Addr         string `toml:"addr"`
	TLS          string `toml:"tls"` // implicit | starttls | none (loopback only)
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	Mailbox      string `toml:"mailbox"`
	Route        string `toml:"route"`
	After        string `toml:"after"`   // move | seen | delete
	MoveTo       string `toml:"move_to"` // created if missing
	PollEvery    string `toml:"poll_every"`
	FailedFolder string `toml:"failed_folder"` // where poison messages go after MaxTries
	MaxTries     int    `toml:"max_tries"`
}

// Defaults of the IMAP poller.
const (
	DefaultPollEvery = 60 * time.Second
	DefaultMaxTries  = 3
	// IdleRestart is how long one IDLE may run before it is re-issued;
	// servers may drop a client idle for 30 minutes (RFC 2177).
	IdleRestart = 25 * time.Minute
	// IdleWatchdog is how often IDLE is interrupted for a NOOP: the IMAP
	// library sets no read deadline while idling, so a dead connection
	// would otherwise go unnoticed.
	IdleWatchdog = 5 * time.Minute
)

// Check validates c against the configured routes and returns it with
// defaults filled in. Errors name the mailbox.
func (c IMAPConfig) Check(routes rules.Routes) (IMAPConfig, error) {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if c.Name == "" {
		return c, errors.New("imap: every [[imap]] needs a name")
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		bad("addr %q must be host:port", c.Addr)
	}
	switch c.TLS {
	case "implicit", "starttls":
	case "none":
		if err == nil && !isLoopback(host) {
			bad("tls \"none\" is only allowed to a loopback address, not %s", host)
		}
	default:
		bad("tls %q must be implicit, starttls or none", c.TLS)
	}
	if c.Username == "" {
		bad("username must be set")
	}
	if c.PasswordFile == "" {
		bad("password_file must be set (passwords are never written in the config)")
	} else if _, err := readPassword(c.PasswordFile); err != nil {
		bad("%v", err)
	}
	if c.Mailbox == "" {
		c.Mailbox = "INBOX"
	}
	if rt, tag, ok := routes.Match(c.Route); !ok || tag != "" || !strings.EqualFold(rt.Address, c.Route) {
		bad("route %q is not a configured [[route]] address", c.Route)
	}
	switch c.After {
	case "seen", "delete":
	case "move":
		if c.MoveTo == "" {
			bad("after = \"move\" needs move_to")
		} else if strings.EqualFold(c.MoveTo, c.Mailbox) {
			bad("move_to must differ from mailbox %s", c.Mailbox)
		}
	default:
		bad("after %q must be move, seen or delete", c.After)
	}
	if c.PollEvery != "" {
		if d, err := time.ParseDuration(c.PollEvery); err != nil || d <= 0 {
			bad("poll_every %q is not a duration like \"60s\"", c.PollEvery)
		}
	}
	if c.FailedFolder != "" && strings.EqualFold(c.FailedFolder, c.Mailbox) {
		bad("failed_folder must differ from mailbox %s", c.Mailbox)
	}
	if c.MaxTries < 0 {
		bad("max_tries %d must not be negative", c.MaxTries)
	} else if c.MaxTries == 0 {
		c.MaxTries = DefaultMaxTries
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("imap %q: %s", c.Name, strings.Join(errs, "; "))
	}
	return c, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password_file %s is empty", path)
	}
	return pw, nil
}
