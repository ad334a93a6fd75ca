package mailin

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
