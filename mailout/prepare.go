package mailout

import (
	"net/mail"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"ticketgate/store"
)

// Prepared is a mail composed before the transaction that queues it: the
// template rendered and the message encoded and deflated, with its
// Message-ID and date, from the ticket as the caller expects it to stand.
// Queue uses its bytes
// only when everything they were built from still holds in the
// transaction (the same ticket id, route, subject, recipients after the
// admission checks, threading, date and template inputs); otherwise it
// composes the mail as it would without one. A Prepared may be offered to
// Queue more than once (a batched commit that runs again).
type Prepared struct {
	in     draftInputs
	fields []string // the data fields the template reads
	// MessageID is the Message-ID the prepared mail carries.
	MessageID string
	subject   string
	body      string
	raw       []byte
}

// draftInputs is everything a prepared mail was built from, as one value
// compared with ==: the ticket's fields that reach the headers, the Out's
// fields, the time, the templates and the values the template reads.
type draftInputs struct {
	mailer    *Mailer
	templates *Templates
	deskName  string // the Mailer's FromName and Hostname
	host      string
	ticket    string
	route     string
	topic     string // the ticket's subject
	lastIn    string
	thread    string
	kind      string
	subject   string
	fromName  string
	replyTo   string
	to, cc    string
	auto      string
	template  string
	text      string
	data      string
	date      time.Time
}

// Prepare composes o for ticket t as Queue would at now, before the
// transaction. It returns nil when o cannot be prepared: a mail with
// attachments, a template that reads values that cannot be compared
// cheaply (the whole ticket, the whole data), or one that fails to render
// (Queue then renders it and reports the error in the transaction).
func (d *Mailer) Prepare(t *store.Ticket, o Out, now time.Time) *Prepared {
	if len(o.Attachments) > 0 || o.Internal || now.IsZero() || d.Templates == nil && o.Template != "" {
		return nil
	}
	var fields []string
	if o.Template != "" {
		var ok bool
		if fields, ok = d.Templates.reads(o.Template); !ok {
			return nil
		}
	}
	in, ok := d.draftInputs(t, o, o.To, fields, now)
	if !ok {
		return nil
	}
	m, body, err := d.compose(t, o, o.To, now)
	if err != nil {
		return nil
	}
	raw, err := Compose(m)
	if err != nil || len(raw) > maxDraft {
		return nil
	}
	// Kept packed (OutboxMail unpacks it): an auto-reply is mostly the
	// same text each time, and takes a fraction of its bytes; packed
	// here, on the caller's goroutine, it costs the transaction nothing.
	return &Prepared{in: in, fields: fields, MessageID: m.MessageID, subject: m.Subject, body: body, raw: pack(mailPacked, raw)}
}

// fits says why p cannot stand for o queued for t to recipients to at now
// ("" when it can). It only compares strings: no rendering, no encoding.
func (p *Prepared) fits(d *Mailer, t *store.Ticket, o Out, to []mail.Address, now time.Time) string {
	in, ok := d.draftInputs(t, o, to, p.fields, now)
	switch {
	case !ok || in.templates != p.in.templates || in.mailer != p.in.mailer:
		return "the templates changed"
	case in.ticket != p.in.ticket:
		return "the ticket id changed"
	case in.to != p.in.to:
		return "the recipients changed"
	case in.lastIn != p.in.lastIn || in.thread != p.in.thread:
		return "the threading changed"
	case in.data != p.in.data:
		return "the template's inputs changed"
	case in != p.in:
		return "the mail's headers changed"
	}
	return ""
}

// draftInputs gathers what a mail composed for t from o depends on; ok is
// false when the template reads a value that is not a plain string, number,
// flag or list of strings.
func (d *Mailer) draftInputs(t *store.Ticket, o Out, to []mail.Address, fields []string, now time.Time) (draftInputs, bool) {
	in := draftInputs{mailer: d, templates: d.Templates, deskName: d.FromName, host: d.Hostname, ticket: t.ID, route: t.Route, topic: t.Subject, lastIn: t.LastInID,
		thread: strings.Join(t.Thread, " "), kind: o.Kind, subject: o.Subject, fromName: o.FromName,
		to: addrList(to), cc: addrList(o.Cc), auto: o.Auto, template: o.Template, text: o.Text, date: now}
	if o.ReplyTo != nil {
		in.replyTo = o.ReplyTo.String()
	}
	var b []byte
	for _, f := range fields {
		v, present := o.Data[f]
		if !present {
			v, present = d.baseValue(t, f)
		}
		var ok bool
		if b, ok = appendValue(b, v, present); !ok {
			return in, false
		}
	}
	in.data = string(b)
	return in, true
}

// baseValue is the value Queue gives the template for field f besides the
// Out's own data (see Mailer.body).
func (d *Mailer) baseValue(t *store.Ticket, f string) (any, bool) {
	switch f {
	case "Ticket":
		return t, true
	case "TicketID":
		return t.ID, true
	case "Subject":
		return t.Subject, true
	case "FromName":
		return d.FromName, true
	case "SavedReplies":
		return d.Templates.ReplyNames(), true
	}
	return nil, false
}

// appendValue appends v, length-prefixed so that no two lists of values
// encode alike; ok is false for a value of another kind.
func appendValue(b []byte, v any, present bool) ([]byte, bool) {
	if !present {
		return append(b, '-'), true
	}
	str := func(s string) []byte {
		b = strconv.AppendInt(append(b, 's'), int64(len(s)), 10)
		return append(append(b, ':'), s...)
	}
	switch v := v.(type) {
	case string:
		return str(v), true
	case bool:
		return strconv.AppendBool(append(b, 'b'), v), true
	case int:
		return append(strconv.AppendInt(append(b, 'i'), int64(v), 10), ';'), true
	case []string:
		b = strconv.AppendInt(append(b, 'l'), int64(len(v)), 10)
		for _, s := range v {
			b = str(s)
		}
		return b, true
	}
	return b, false
}

func addrList(l []mail.Address) string {
	var b strings.Builder
	for _, a := range l {
		b.WriteString(a.String())
		b.WriteByte(0)
	}
	return b.String()
}

// reads lists the top-level data fields template name may read, its
// override and the built-in text both (an override that fails falls back
// to the built-in one). ok is false when it may read the data as a whole
// ({{.}} or $ at the top level, e.g. handed to another template).
func (ts *Templates) reads(name string) ([]string, bool) {
	if r, ok := ts.fields.Load(name); ok {
		return r.(readFields).fields, r.(readFields).ok
	}
	r := readFields{ok: true}
	for _, w := range ts.walk(name, "") {
		if w.whole {
			r = readFields{}
			break
		}
		for _, f := range w.fields {
			if !contains(r.fields, f) {
				r.fields = append(r.fields, f)
			}
		}
	}
	ts.fields.Store(name, r)
	return r.fields, r.ok
}

// readFields is reads's answer for one template.
type readFields struct {
	fields []string
	ok     bool
}

// walk walks every part of template name, its override and the built-in
// text both, leaving plain prints of printed aside ("" for none).
func (ts *Templates) walk(name, printed string) []fieldWalk {
	var walks []fieldWalk
	for _, t := range []*template.Template{ts.override[name], ts.builtin[name]} {
		if t == nil {
			continue
		}
		for _, sub := range t.Templates() {
			if sub.Tree == nil || sub.Root == nil {
				continue
			}
			w := fieldWalk{top: sub.Name() == t.Name(), printed: printed}
			w.node(sub.Root)
			walks = append(walks, w)
		}
	}
	return walks
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// fieldWalk collects the fields a template reads from its data. top is
// true while dot is the data itself: inside {{with}} and {{range}} dot is
// a value read from a field already collected, and a template run by
// {{template}} gets the value its caller passed, which the caller's walk
// judged. Fields read below such a dot are collected too: harmless, as a
// value absent from the data only adds a constant to the comparison.
type fieldWalk struct {
	top    bool
	fields []string
	whole  bool
	// printed is a field whose plain prints ({{.Field}} while dot is the
	// data) are not collected (see Templates.printsPlain).
	printed string
}

func (w *fieldWalk) field(name string) {
	if !contains(w.fields, name) {
		w.fields = append(w.fields, name)
	}
}

func (w *fieldWalk) node(n parse.Node) {
	switch n := n.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			w.node(c)
		}
	case *parse.ActionNode:
		if w.printed != "" && w.top && printsField(n, w.printed) {
			return
		}
		w.node(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			w.node(c)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			w.node(a)
		}
	case *parse.FieldNode:
		w.field(n.Ident[0])
	case *parse.ChainNode:
		w.node(n.Node)
	case *parse.DotNode:
		if w.top {
			w.whole = true
		}
	case *parse.VariableNode:
		// $ is the data in the template being run; $x a variable set
		// from a pipeline already walked.
		if n.Ident[0] == "$" {
			if len(n.Ident) == 1 {
				w.whole = true
			} else {
				w.field(n.Ident[1])
			}
		}
	case *parse.IfNode:
		w.branch(&n.BranchNode, false)
	case *parse.WithNode:
		w.branch(&n.BranchNode, true)
	case *parse.RangeNode:
		w.branch(&n.BranchNode, true)
	case *parse.TemplateNode:
		w.node(n.Pipe)
	}
}

// branch walks an if, with or range; rebinds says its body runs with dot
// set to the pipeline's value (its else branch keeps dot as it was).
func (w *fieldWalk) branch(b *parse.BranchNode, rebinds bool) {
	w.node(b.Pipe)
	top := w.top
	if rebinds {
		w.top = false
	}
	w.node(b.List)
	w.top = top
	w.node(b.ElseList)
}
