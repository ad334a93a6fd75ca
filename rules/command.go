package rules

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Command is one "#name args" line from the top of an agent's mail.
type Command struct {
	Name     string   // status, priority, assign, unassign, cc, close, note, escalate
	Status   Status   // for #status
	Priority Priority // for #priority
	Assign   string   // for #assign: "me" (resolved by the caller) or a lower-case e-mail address
	CcOp     string   // for #cc: "add" or "remove"
	Cc       string   // for #cc: the lower-case e-mail address
	Reply    string   // for #reply: the saved reply's lower-case name
	Ticket   string   // for #merge and #link: the other ticket's number (HS-123456)
	Line     string   // the original line without surrounding space, for error replies
}

// CommandError explains a malformed command line in words an agent can act on.
type CommandError struct {
	Line   string // the line as the agent wrote it, without surrounding space
	Reason string // what is wrong and how to write it instead
}

// Error returns the line and the reason, fit to quote back to the agent.
func (e CommandError) Error() string {
	return fmt.Sprintf("%q: %s", e.Line, e.Reason)
}

const knownCommands = "#status, #priority, #assign, #unassign, #cc, #close, #escalate, #note, #reply, #merge or #link"

// ParseCommands splits an agent mail's text into the commands at its top and
// the rest (the reply text, leading blank lines trimmed). Commands are the
// lines starting with "#" and a letter before any other text; blank lines
// between them are allowed, and a "#" line after the first line of text is
// just text. Quoted lines ("> #status open") are text. Line ends are
// normalised to "\n", and rest is always a suffix of the normalised text.
// Malformed command lines are returned as errors and not applied; the lines
// after them are still read as commands.
func ParseCommands(text string) (cmds []Command, rest string, errs []CommandError) {
	text = normalizeNewlines(text)
	for pos := 0; pos < len(text); {
		line, next := text[pos:], len(text)
		if i := strings.IndexByte(line, '\n'); i >= 0 {
			line, next = line[:i], pos+i+1
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
		case !isCommandLine(trimmed):
			return cmds, text[pos:], errs
		default:
			cmd, err := parseCommand(trimmed)
			if err != nil {
				errs = append(errs, *err)
			} else {
				cmds = append(cmds, cmd)
			}
		}
		pos = next
	}
	return cmds, "", errs
}

// normalizeNewlines turns CRLF and lone CR line ends into "\n".
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// isCommandLine reports whether a trimmed line is meant as a command: "#"
// directly followed by a letter. "#1", "# Heading" and "#" stay text.
func isCommandLine(line string) bool {
	if len(line) < 2 || line[0] != '#' {
		return false
	}
	c := line[1] | 0x20
	return c >= 'a' && c <= 'z'
}

// parseCommand reads one trimmed command line.
func parseCommand(line string) (Command, *CommandError) {
	name, args := cutField(line[1:])
	name = strings.TrimSuffix(strings.ToLower(name), ":")
	cmd := Command{Name: name, Line: line}
	fail := func(format string, a ...any) (Command, *CommandError) {
		return Command{}, &CommandError{Line: line, Reason: fmt.Sprintf(format, a...)}
	}
	switch name {
	case "status":
		st, ok := commandStatus(args)
		if !ok {
			return fail("unknown status %q; write #status open, waiting, on_hold, resolved or closed", args)
		}
		cmd.Status = st
	case "priority":
		p, ok := ParsePriority(strings.ToLower(args))
		if !ok {
			return fail("unknown priority %q; write #priority low, medium, high or critical", args)
		}
		cmd.Priority = p
	case "assign":
		if strings.EqualFold(args, "me") {
			cmd.Assign = "me"
			break
		}
		addr, ok := commandAddress(args)
		if !ok {
			return fail("cannot read %q as an agent; write #assign me or #assign name@example.com", args)
		}
		cmd.Assign = addr
	case "cc":
		op, target := cutField(args)
		op = strings.ToLower(op)
		addr, ok := commandAddress(target)
		if (op != "add" && op != "remove") || !ok {
			return fail("write #cc add name@example.com or #cc remove name@example.com")
		}
		cmd.CcOp, cmd.Cc = op, addr
	case "reply":
		if args == "" || strings.ContainsFunc(args, unicode.IsSpace) {
			return fail("write #reply and the name of one saved reply, e.g. #reply password-reset")
		}
		cmd.Reply = strings.ToLower(args)
	case "merge", "link":
		id, ok := ParseTicketID(args)
		if !ok {
			return fail("write #%s and the other ticket's number, e.g. #%s HS-123456", name, name)
		}
		cmd.Ticket = id
	case "unassign", "close", "note", "escalate":
		if args != "" {
			return fail("#%s takes nothing after it; write it alone on its line", name)
		}
	default:
		return fail("unknown command #%s; the commands are %s", name, knownCommands)
	}
	return cmd, nil
}

// commandStatus reads the status an agent may set: not "new", and "on hold"
// or "on-hold" for on_hold.
func commandStatus(s string) (Status, bool) {
	v := strings.ToLower(strings.Join(strings.Fields(s), "_"))
	v = strings.ReplaceAll(v, "-", "_")
	st, ok := ParseStatus(v)
	if !ok || st == StatusNew {
		return "", false
	}
	return st, true
}

// commandAddress reads exactly one e-mail address, bare or with a display
// name, and returns it in lower case. An address Outlook made a link is
// followed, in its plain text, by the link: "bob@example.com<mailto:
// bob@example.com>"; it is read as the address it names.
func commandAddress(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	// "< bob@example.com >", as HTML reads with the address a link: RFC
	// 5322 allows the white space, net/mail does not.
	s = angleSpace.ReplaceAllString(unlink(s), "<$1>")
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address == "" {
		return "", false
	}
	return strings.ToLower(a.Address), true
}

// mailtoLink is the link Outlook's plain text writes after an address it
// turned into one: "<mailto:bob@example.com>".
var mailtoLink = regexp.MustCompile(`(?i)\s*<mailto:([^<>\s]+)>`)

// angleSpace is an address in angle brackets with white space inside them.
var angleSpace = regexp.MustCompile(`<\s*([^<>\s]+)\s*>`)

// unlink removes from s the links that follow the address they name
// ("bob@example.com<mailto:bob@example.com>", also inside a display
// name's angle brackets); a link to another address stays, and s does
// not read as one address.
func unlink(s string) string {
	for {
		m := mailtoLink.FindStringSubmatchIndex(s)
		if m == nil {
			return s
		}
		shown, target := s[:m[0]], s[m[2]:m[3]]
		if len(shown) < len(target) || !strings.EqualFold(shown[len(shown)-len(target):], target) {
			return s
		}
		s = shown + s[m[1]:]
	}
}

// cutField splits s at its first run of white space.
func cutField(s string) (first, rest string) {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// Actor is who sends a command.
type Actor struct {
	Email    string   // the agent's address, any case
	Manager  bool     // managers may do everything on every ticket
	Queues   []string // the queues the agent works on
	Operator bool     // CLI operator: allowed everything
	// TakeOver lets the agent take a ticket assigned to someone else with
	// #assign me ([agents] takeover); managers always may.
	TakeOver bool
}

// MayReply says whether actor's public reply on the ticket may reach the
// customer: on an assigned ticket only the assignee's does (after the
// mail's own commands, so "#assign me" by an agent allowed to take the
// ticket over comes first). On an unassigned ticket the first reply takes
// the ticket, so it needs the right "#assign me" needs: an agent of the
// ticket's queue or a manager (an agent of the queue an escalation moved
// it from answers it no more). Otherwise the reply is held as a note.
func MayReply(actor Actor, t TicketView) error {
	if t.Assignee != "" && !strings.EqualFold(strings.TrimSpace(actor.Email), strings.TrimSpace(t.Assignee)) {
		return fmt.Errorf("%w: the ticket is assigned to %s; only the assignee's replies reach the customer (write #assign me to take it over)", ErrNotAllowed, t.Assignee)
	}
	if t.Assignee == "" && !actor.Manager && !actor.Operator &&
		!slices.ContainsFunc(actor.Queues, func(q string) bool { return strings.EqualFold(q, t.Queue) }) {
		return fmt.Errorf("%w: the ticket is in the queue %q; only its agents' or a manager's replies reach the customer", ErrNotAllowed, t.Queue)
	}
	return nil
}

// TicketView is what authorization needs to know about a ticket.
type TicketView struct {
	Queue    string
	Assignee string // e-mail address, "" when unassigned
	Status   Status
	Priority Priority
}

// ErrNotAllowed is wrapped by every refusal from Authorize.
var ErrNotAllowed = errors.New("not allowed")

// Authorize returns nil when actor may apply cmd to the ticket, or an error
// wrapping ErrNotAllowed saying why not (e.g. "only the assignee
// ana@example.com or a manager can change the status"). Operators and
// managers may do everything. Status, priority and close on an assigned
// ticket: the assignee only; on an unassigned ticket: any agent of the
// ticket's queue. "#assign me" on an unassigned ticket: any agent of the
// queue; reassigning an assigned ticket: the assignee only; assigning an
// unassigned ticket to someone else: a manager only. #unassign: the assignee
// (on an unassigned ticket, where it changes nothing, any agent of the
// queue). #note and #cc: any agent of the
// queue, or the assignee. #escalate: as status. Addresses and queue names compare in any case.
func Authorize(cmd Command, actor Actor, t TicketView) error {
	if actor.Operator || actor.Manager {
		return nil
	}
	assigned := t.Assignee != ""
	isAssignee := assigned && strings.EqualFold(strings.TrimSpace(actor.Email), strings.TrimSpace(t.Assignee))
	inQueue := slices.ContainsFunc(actor.Queues, func(q string) bool { return strings.EqualFold(q, t.Queue) })

	// ownerOnly is the rule for changing a ticket someone may be working on.
	ownerOnly := func(what string) error {
		switch {
		case assigned && !isAssignee:
			return fmt.Errorf("%w: only the assignee %s or a manager can %s", ErrNotAllowed, t.Assignee, what)
		case !assigned && !inQueue:
			return fmt.Errorf("%w: only agents of the queue %q or a manager can %s", ErrNotAllowed, t.Queue, what)
		}
		return nil
	}
	switch cmd.Name {
	case "status":
		return ownerOnly("change the status")
	case "priority":
		return ownerOnly("change the priority")
	case "close":
		return ownerOnly("close the ticket")
	case "escalate":
		return ownerOnly("escalate the ticket")
	case "assign":
		return authorizeAssign(cmd, actor, t, isAssignee, inQueue)
	case "unassign":
		return ownerOnly("unassign the ticket")
	case "reply":
		// Whether the text reaches the customer is MayReply's to say.
		return nil
	case "merge", "link":
		what := "merge the ticket into another"
		if cmd.Name == "link" {
			what = "link the ticket to another"
		}
		return ownerOnly(what)
	case "note", "cc":
		what := "add notes"
		if cmd.Name == "cc" {
			what = "change the Cc list"
		}
		if !inQueue && !isAssignee {
			return fmt.Errorf("%w: only agents of the queue %q, the assignee or a manager can %s", ErrNotAllowed, t.Queue, what)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown command #%s", ErrNotAllowed, cmd.Name)
}

// AuthorizeMergeInto returns nil when actor may merge a ticket into the
// ticket id (t), or an error wrapping ErrNotAllowed saying why not.
// Authorize checks the rights on the ticket merged; a merge also adds its
// requester and participants to t's participants, so it needs the rights
// "#cc add" on t would need.
func AuthorizeMergeInto(actor Actor, id string, t TicketView) error {
	if Authorize(Command{Name: "cc", CcOp: "add"}, actor, t) != nil {
		return fmt.Errorf("%w: only agents of the queue %q, its assignee or a manager can merge a ticket into %s", ErrNotAllowed, t.Queue, id)
	}
	return nil
}

// authorizeAssign applies the #assign rules for a non-manager.
func authorizeAssign(cmd Command, actor Actor, t TicketView, isAssignee, inQueue bool) error {
	self := cmd.Assign == "me" || strings.EqualFold(cmd.Assign, strings.TrimSpace(actor.Email))
	switch {
	case t.Assignee != "" && !isAssignee && self && actor.TakeOver:
		return nil
	case t.Assignee != "" && !isAssignee:
		return fmt.Errorf("%w: only the assignee %s or a manager can reassign the ticket", ErrNotAllowed, t.Assignee)
	case t.Assignee != "":
		return nil
	case !self:
		return fmt.Errorf("%w: only a manager can assign an unassigned ticket to someone else; write #assign me to take it", ErrNotAllowed)
	case !inQueue:
		return fmt.Errorf("%w: only agents of the queue %q or a manager can take the ticket", ErrNotAllowed, t.Queue)
	}
	return nil
}
