package mailin

import (
	"context"
	"errors"

	"ticketgate/store"
)

// Config is the [inbound] section of the configuration file.
type Config struct {
	SMTPListen      string `toml:"smtp_listen"`
	LMTPListen      string `toml:"lmtp_listen"`
	Hostname        string `toml:"hostname"`
	MaxMessageBytes int64  `toml:"max_message_bytes"`
	MaxRecipients   int    `toml:"max_recipients"`
	// MaxConnections caps open connections per listener (0: no cap). A
	// client past it is answered 421 4.7.0 at once and disconnected.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP caps open connections from one client address
	// (0: DefaultMaxConnectionsPerIP); TrustedRelays are exempt.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// TrustedRelays are the addresses or CIDR prefixes of the MTAs that
	// hand mail over (nil: DefaultTrustedRelays; empty: none).
	TrustedRelays []string `toml:"trusted_relays"`
	// ReadTimeout is the longest a client may stay silent: between
	// commands, and between two reads of one message (not the whole
	// transfer). A silent client gets a 4xx answer and is disconnected.
	ReadTimeout  string `toml:"read_timeout"`
	WriteTimeout string `toml:"write_timeout"`
	// MailFromTimeout is the time a client has from the greeting, and again
	// after each message or RSET, to start a message with MAIL FROM
	// ("": DefaultMailFromTimeout); past it the answer is 421 4.4.2.
	MailFromTimeout string `toml:"mail_from_timeout"`
	// MaxNoops is the number of commands that bring no message closer
	// (NOOP, RSET, VRFY, EXPN, HELP, a repeated HELO/EHLO or MAIL FROM)
	// a client may send between two messages (0: DefaultMaxNoops); one
	// more is answered 421 4.7.0 and the connection is closed.
	MaxNoops int `toml:"max_noops"`
	// MaxDataDuration bounds the transfer of one message, DATA to the
	// final dot ("": DefaultMaxDataDuration); past it the answer is 451.
	MaxDataDuration string `toml:"max_data_duration"`
	MaxHeaderBytes  int    `toml:"max_header_bytes"`
	MaxMIMEDepth    int    `toml:"max_mime_depth"`
	MaxMIMEParts    int    `toml:"max_mime_parts"`
	// MaxLineLength is the longest line accepted in SMTP/LMTP commands and
	// message data (0: DefaultMaxLineLength). A message with a longer line
	// is refused with 554 5.6.0, a longer command line with 500 5.4.0.
	MaxLineLength int `toml:"max_line_length"`
}

// Delivery is one message handed to the pipeline by a listener, the IMAP
// poller or inject.
type Delivery struct {
	MailFrom string   // reverse path; "" is the null sender
	Rcpts    []string // recipients, each a routing address (or a plus variant)
	Raw      []byte
	Source   string // "smtp", "lmtp", "inject", "imap:<name>"
	// RcptsFromHeader says Rcpts were read from the message's header (IMAP,
	// inject without -to), not given by an MTA: then only Delivered-To and
	// X-Original-To, which the delivering MTA writes, count as envelope.
	RcptsFromHeader bool
	Remote          string
	// Checkpoint, when set, is committed in the same transaction as the
	// message (the IMAP poller's exactly-once promise).
	Checkpoint *store.Checkpoint
	// Arrived, when set, ends the announcement the listener made when
	// the message's transfer began (Expecter): the handler calls it just
	// before it queues the message's commit, or when it will not.
	Arrived func()
}

// Result says what became of a delivered message.
type Result struct {
	TicketID  string
	MessageID string
	NewTicket bool
	Duplicate bool
	Action    string // thread action, or "duplicate"
}

var (
	// ErrRateLimited is returned when a sender, domain or ticket is flooding
	// the gateway; the listener answers 451 4.7.1 so the sender retries later.
	ErrRateLimited = errors.New("too much mail, try again later")
	// ErrUnknownRecipient is returned when no recipient is a routing address.
	ErrUnknownRecipient = errors.New("no such routing address")
)

// Handler takes the mail the listeners, the IMAP poller and inject bring
// in: the ticket desk. Deliver returns only after the message is committed
// to disk; its error wraps ErrUnknownRecipient or ErrNotMail for mail that
// must be refused, ErrRateLimited for a flood (retry later); any other
// error is temporary.
type Handler interface {
	Deliver(ctx context.Context, d *Delivery) (Result, error)
	// Accepts reports whether mail to addr is taken: a routing address,
	// one of its plus variants, or a bounce address.
	Accepts(addr string) bool
}

// A Pinner is a Handler whose configuration may change while mail is
// received (serve's reload): Pin returns the handler in force now. A
// listener takes it at MAIL FROM and keeps it to the end of the
// transaction, so a message is received whole, from its recipients to
// its commit, under the configuration it started with.
type Pinner interface {
	Pin() Handler
}

// An Expecter is a Handler that wants to hear of a message as soon as its
// transfer begins (DATA), so that a grouped commit starting while the
// message is read and parsed can wait a moment for it instead of leaving
// it to the next commit (see store.Store's Expect). The listener hands
// the returned function to Deliver as Delivery.Arrived, and calls it
// itself when the message never reaches Deliver.
type Expecter interface {
	Expect() (arrived func())
}
