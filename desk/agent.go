package desk

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"ticketgate/mailin"
	"ticketgate/mailout"
	"ticketgate/rules"
	"ticketgate/store"
)

// Agent is a support agent ([[agent]] in the configuration).
type Agent struct {
	Email   string   `toml:"email"`
	Name    string   `toml:"name"`
	Queues  []string `toml:"queues"` // whose new tickets the agent is notified of
	Manager bool     `toml:"manager"`
	// AuthservID, when set, makes the agent's mail count only with an
	// Authentication-Results header from this authserv-id that shows
	// dkim=pass or spf=pass for the agent's domain. It is filled from
	// [agents] require_auth and trusted_authserv_id, not per agent.
	AuthservID string `toml:"-"`
	// TakeOver lets the agent take a ticket someone else owns with #assign
	// me; filled from [agents] takeover.
	TakeOver bool `toml:"-"`
}

// AgentsConfig is the [agents] section.
type AgentsConfig struct {
	// SecretFile holds the key that signs agents' reply addresses; it is
	// generated (mode 0600) on first start when missing.
	SecretFile string `toml:"secret_file"`
	// PreviousSecretFile holds the key in use before a rotation: addresses
	// signed with it keep working until the file is removed from the
	// configuration.
	PreviousSecretFile string `toml:"previous_secret_file"`
	// RequireAuth also demands a passing DKIM or SPF result for the
	// agent's domain from TrustedAuthservID before mail counts as an agent's.
	RequireAuth       bool   `toml:"require_auth"`
	TrustedAuthservID string `toml:"trusted_authserv_id"`
	// TakeOver says who may take a ticket assigned to someone else with
	// #assign me: "managers" (the default) or "agents" (any agent).
	TakeOver string `toml:"takeover"`
}

// ApplyAuth returns the agents with the authentication requirement of the
// [agents] section set on each of them.
func (c AgentsConfig) ApplyAuth(agents []Agent) []Agent {
	out := slices.Clone(agents)
	for i := range out {
		out[i].TakeOver = strings.EqualFold(strings.TrimSpace(c.TakeOver), "agents")
		out[i].AuthservID = ""
		if c.RequireAuth {
			out[i].AuthservID = strings.TrimSpace(c.TrustedAuthservID)
		}
	}
	return out
}

// actor is the agent as command authorization sees it.
func (a Agent) actor() rules.Actor {
	return rules.Actor{Email: strings.ToLower(a.Email), Manager: a.Manager, Queues: a.Queues, TakeOver: a.TakeOver}
}

// displayName is the agent's name, or the address when no name is set.
func (a Agent) displayName() string {
	if a.Name != "" {
		return a.Name
	}
	return a.Email
}

// agent returns the configured agent with address addr (any case).
func (p *Pipeline) agent(addr string) (Agent, bool) {
	for _, a := range p.Agents {
		if addr != "" && strings.EqualFold(strings.TrimSpace(a.Email), addr) {
			return a, true
		}
	}
	return Agent{}, false
}

// signedAddr is a signed plus-address found on a message.
type signedAddr struct {
	addr   string
	token  string
	kind   rules.TokenKind
	ticket string
}

// signedAddrs returns the signed addresses a message was delivered to: its
// envelope recipients only, never To or Cc, so a token copied from some
// mail's header cannot be replayed. For mail without an envelope (IMAP,
// inject without -to) the envelope is what the delivering MTA wrote in
// Delivered-To and X-Original-To.
func (p *Pipeline) signedAddrs(pl *plan) []signedAddr {
	var out []signedAddr
	seen := map[string]bool{}
	envelope := [][]string{pl.d.Rcpts}
	if pl.d.RcptsFromHeader {
		envelope = nil
		for _, k := range []string{"Delivered-To", "X-Original-To"} {
			for _, v := range pl.in.Header[k] {
				var list []string
				for _, a := range strings.Split(v, ",") {
					list = append(list, strings.ToLower(strings.Trim(strings.TrimSpace(a), "<>")))
				}
				envelope = append(envelope, list)
			}
		}
	}
	for _, list := range envelope {
		for _, a := range list {
			_, tag, ok := p.Routes.Match(a)
			if !ok || tag == "" || seen[strings.ToLower(tag)] {
				continue
			}
			seen[strings.ToLower(tag)] = true
			if kind, id, ok := rules.ParseToken(tag); ok {
				out = append(out, signedAddr{addr: strings.ToLower(a), token: tag, kind: kind, ticket: id})
			}
		}
	}
	return out
}

// agentMail handles mail from a verified agent (a signed reply address and
// a matching From). It returns handled=false for everything else, which
// then is customer mail; mail that claims to be an agent's but fails the
// checks is logged as a security event on the ticket it names.
func (p *Pipeline) agentMail(tx store.Tx, pl *plan, res *mailin.Result) (handled bool, err error) {
	from := strings.ToLower(pl.in.From.Address)
	agent, isAgent := p.agent(from)
	var refused []signedAddr
	var why []string
	for _, s := range p.signedAddrs(pl) {
		reason := p.verifyAgent(pl, s, from, agent, isAgent)
		if reason == "" {
			t, err := tx.Ticket(s.ticket)
			if err == nil {
				// An answer to a notification of a merged ticket belongs
				// where its conversation went: the merged one is closed
				// and must not reopen nor mail its customers again.
				t, _, err = mergedEnd(tx, t)
			}
			if err == nil {
				return true, p.agentReply(tx, pl, res, t, agent, s.kind)
			}
			if !errors.Is(err, store.ErrNotFound) {
				return false, err
			}
			reason = "ticket " + s.ticket + " does not exist"
		}
		if !isAgent && from != "" && p.Signer.Verify(s.token, s.kind, s.ticket, from) {
			// The desk signed this address for the sender, who is no
			// agent now: they left the agents after it was mailed to
			// them. Their answer reaches no customer and opens no
			// ticket; they are told so.
			t, err := tx.Ticket(s.ticket)
			if err == nil {
				return true, p.refuseNonAgent(tx, pl, res, t, from, s.addr)
			}
			if !errors.Is(err, store.ErrNotFound) {
				return false, err
			}
		}
		refused, why = append(refused, s), append(why, reason)
	}
	if len(refused) > 0 {
		for i, s := range refused {
			if err := p.securityEvent(tx, pl, s.ticket, fmt.Sprintf("mail from %s to %s not accepted as agent mail: %s; handled as customer mail", orNone(from), s.addr, why[i])); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	if isAgent && !p.agentAutomatic(pl) {
		// An agent writing to the plain address about a ticket bypasses
		// the signed address: it may be someone using the agent's name.
		// (Their vacation reply goes where the notification came from,
		// and changes nothing: decideThread.)
		cand, err := p.namedTicket(tx, pl.in, nil, func() bool { return false })
		if err != nil || cand == nil {
			return false, err
		}
		return false, p.securityEvent(tx, pl, cand.ID, fmt.Sprintf("mail from agent %s about %s arrived without a signed reply address; handled as customer mail", from, cand.ID))
	}
	return false, nil
}

// verifyAgent returns why s does not make the mail an agent's, or "".
func (p *Pipeline) verifyAgent(pl *plan, s signedAddr, from string, agent Agent, isAgent bool) string {
	switch {
	case !isAgent:
		return "sender " + orNone(from) + " is not an agent"
	case !p.Signer.Verify(s.token, s.kind, s.ticket, from):
		return "the address is not signed for " + from + " (forged sender, altered or expired address)"
	case agent.AuthservID != "" && !authenticated(pl.in.Header, agent.AuthservID, from):
		return "no dkim=pass or spf=pass for " + from + " from " + agent.AuthservID
	}
	return ""
}

// refuseNonAgent keeps the mail of from, who is not an agent, to the
// address s signed for them on t as a note, records a security event and,
// unless the mail is automatic, tells them that it was not applied.
func (p *Pipeline) refuseNonAgent(tx store.Tx, pl *plan, res *mailin.Result, t *store.Ticket, from, addr string) error {
	res.TicketID, res.Action = t.ID, "agent-refused"
	detail := fmt.Sprintf("mail from %s to %s not applied: %s is not an agent; kept as a note", from, addr, from)
	p.Log.Warn("security: "+detail, "ticket", t.ID, "msgid", pl.in.MessageID, "remote", pl.d.Remote)
	c := &Change{Ticket: t}
	c.log(store.Event{At: pl.now, Type: rules.EventSecurity, Detail: detail})
	m := p.message(pl, "note")
	m.VisibleText = newText(cutNotification(pl.in.Text))
	c.Messages = append(c.Messages, m)
	if !pl.auto.Automatic && !pl.auto.OutOfOffice && !pl.auto.Bounce {
		o := mailout.Out{
			Kind: "error", To: []mail.Address{{Address: from}},
			Subject:  fmt.Sprintf("[%s] Not applied: %s", t.ID, t.Subject),
			Template: "agent_error", Internal: true,
			Data: markerData(map[string]any{"AgentName": from, "NotAgent": true,
				"Problems": []string{from + " is not one of the desk's agents: only an agent's mail answers the customer or changes the ticket"}}),
		}
		if reply := p.signedAddress(t, rules.TokenReply, from); reply != "" {
			o.ReplyTo = &mail.Address{Address: reply}
		}
		c.send(Intent{Out: o})
	}
	return p.apply(tx, pl.now, c)
}

// securityEvent records a refused claim to be an agent on the ticket id
// (when it exists) and in the log.
func (p *Pipeline) securityEvent(tx store.Tx, pl *plan, id, detail string) error {
	p.Log.Warn("security: "+detail, "ticket", id, "msgid", pl.in.MessageID, "remote", pl.d.Remote)
	if _, err := tx.Ticket(id); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	c := &Change{ID: id}
	c.log(store.Event{At: pl.now, Type: rules.EventSecurity, Detail: detail})
	return p.apply(tx, pl.now, c)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// afterCustomer decides, for a customer message m added to c's ticket (new
// or existing), what the ticket's plan, the subject tags and escalation
// change, and whom the agents' notifications go to.
func (p *Pipeline) afterCustomer(c *Change, pl *plan, m *store.Message, isNew bool) {
	out := p.customerRules(c, pl, m, isNew)
	p.notifyAgents(c, pl, m, out)
}

// isAgent reports whether addr is one of the configured agents.
func (p *Pipeline) isAgent(addr string) bool {
	_, ok := p.agent(addr)
	return ok
}
