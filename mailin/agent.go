package mailin

import (
	"ticketgate/store"
)

// Agent is a support agent ([[agent]] in the configuration).
type Agent struct {
	Email   string   `toml:"email"`
	Name    string   `toml:"name"`
	Queues  []string `toml:"queues"`
	Manager bool     `toml:"manager"`
}

// AgentsConfig is the [agents] section.
type AgentsConfig struct {
	SecretFile string `toml:"secret_file"`
}

// agentMail handles mail from a verified agent (a signed reply address and
// a matching From). It returns handled=false for everything else, which
// then is customer mail.
func (p *Pipeline) agentMail(tx *store.Tx, pl *plan, res *Result) (handled bool, err error) {
	return false, nil
}

// afterCustomer runs after a customer message was added to t (new or
// existing ticket) and before t is written: subject tags, plans,
// escalation and agent notifications.
func (p *Pipeline) afterCustomer(tx *store.Tx, t *store.Ticket, pl *plan, m *store.Message, isNew bool) error {
	return nil
}
