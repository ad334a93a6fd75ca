package desk

import (
	"net/mail"
	"slices"
	"strings"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

// handover tells the agents rules.Handover names of the change c makes
// to its ticket (h; handover fills in h.After): each gets the text as a
// note from author (from, the display name on From; "" for the desk's
// own), one mail each answering to their note address, as an agent's
// note reaches them. Whoever made the change (h.By) and whoever this
// change mails already (the note it came with, the SLA alert that caused
// it) are not told again; nor is anyone no longer among the agents.
func handover(c *Change, s rules.Signer, agents []AgentRef, h rules.Handing, author, from, text string, now time.Time) {
	t, by := c.Ticket, h.By
	h.After = viewOf(t)
	told := rules.Handover(h)
	var to []mail.Address
	add := func(addr string) {
		for _, a := range agents {
			if strings.EqualFold(a.Email, addr) {
				to = append(to, mail.Address{Name: a.Name, Address: strings.ToLower(a.Email)})
				return
			}
		}
	}
	if told.Assignee != "" {
		add(told.Assignee)
	}
	for _, a := range agents {
		if told.Queue != "" && slices.ContainsFunc(a.Queues, func(q string) bool { return strings.EqualFold(q, told.Queue) }) {
			add(a.Email)
		}
	}
	if told.Watchers {
		for _, w := range t.Watchers {
			add(w)
		}
	}
	var sent []string
	for _, a := range to {
		if strings.EqualFold(a.Address, by) || slices.Contains(sent, a.Address) || mails(c, a.Address) {
			continue
		}
		if in, ok := noteMail(s, t, a, author, from, text); ok {
			c.send(in)
			sent = append(sent, a.Address)
		}
	}
	if len(sent) > 0 {
		c.log(store.Event{At: now, Type: rules.EventNotified, Actor: strings.ToLower(by), Detail: "agents notified: " + strings.Join(sent, ", ")})
	}
}

// mails reports whether c sends a mail to addr already.
func mails(c *Change, addr string) bool {
	return slices.ContainsFunc(c.Mails, func(in Intent) bool {
		return slices.ContainsFunc(append(slices.Clone(in.To), in.Cc...), func(a mail.Address) bool { return strings.EqualFold(a.Address, addr) })
	})
}

// agentRefs are the desk's agents as the policy knows them.
func (p *Pipeline) agentRefs() []AgentRef {
	out := make([]AgentRef, len(p.Agents))
	for i, a := range p.Agents {
		out[i] = AgentRef{Email: a.Email, Name: a.Name, Queues: a.Queues, Manager: a.Manager}
	}
	return out
}
