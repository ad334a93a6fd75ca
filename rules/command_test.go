package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCommands(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []Command
		rest    string
		errLine []string
	}{
		{
			name: "no commands",
			text: "Hello,\n#status closed is what I'd pick\n",
			rest: "Hello,\n#status closed is what I'd pick\n",
		},
		{
			name: "status and reply",
			text: "#status waiting\n\nHi Sam, can you send the logs?\n",
			want: []Command{{Name: "status", Status: StatusWaiting, Line: "#status waiting"}},
			rest: "Hi Sam, can you send the logs?\n",
		},
		{
			name: "several commands, blank lines, CRLF, any case, trailing space",
			text: "\r\n#Status ON HOLD  \r\n\r\n#PRIORITY High\t\r\n#assign Me\r\n#cc add Bob@Example.com\r\n\r\nThanks\r\n",
			want: []Command{
				{Name: "status", Status: StatusOnHold, Line: "#Status ON HOLD"},
				{Name: "priority", Priority: PriorityHigh, Line: "#PRIORITY High"},
				{Name: "assign", Assign: "me", Line: "#assign Me"},
				{Name: "cc", CcOp: "add", Cc: "bob@example.com", Line: "#cc add Bob@Example.com"},
			},
			rest: "Thanks\n",
		},
		{
			name: "on-hold, close, note, unassign, nothing after",
			text: "#status on-hold\n#close\n#note\n#unassign",
			want: []Command{
				{Name: "status", Status: StatusOnHold, Line: "#status on-hold"},
				{Name: "close", Line: "#close"},
				{Name: "note", Line: "#note"},
				{Name: "unassign", Line: "#unassign"},
			},
		},
		{
			name: "assign with display name, cc remove, colon after name",
			text: "#assign Ana Lima <Ana@Example.com>\n#cc: remove carol@example.org\nok",
			want: []Command{
				{Name: "assign", Assign: "ana@example.com", Line: "#assign Ana Lima <Ana@Example.com>"},
				{Name: "cc", CcOp: "remove", Cc: "carol@example.org", Line: "#cc: remove carol@example.org"},
			},
			rest: "ok",
		},
		{
			name: "an address Outlook made a link",
			text: "#cc add Bob@Example.com<mailto:Bob@Example.com>\n#assign Ana Lima <ana@example.com<mailto:ana@example.com>>\n#cc add bob@example.com<mailto:eve@example.com>\nok",
			want: []Command{
				{Name: "cc", CcOp: "add", Cc: "bob@example.com", Line: "#cc add Bob@Example.com<mailto:Bob@Example.com>"},
				{Name: "assign", Assign: "ana@example.com", Line: "#assign Ana Lima <ana@example.com<mailto:ana@example.com>>"},
			},
			rest:    "ok",
			errLine: []string{"#cc add bob@example.com<mailto:eve@example.com>"},
		},
		{
			name: "white space inside the angle brackets",
			text: "#assign Ben Ode < Ben@example.com >\nok",
			want: []Command{{Name: "assign", Assign: "ben@example.com", Line: "#assign Ben Ode < Ben@example.com >"}},
			rest: "ok",
		},
		{
			name: "command after text is text",
			text: "Done.\n#status resolved\n",
			rest: "Done.\n#status resolved\n",
		},
		{
			name: "quoted command is text",
			text: "> #status closed\n#status open\n",
			rest: "> #status closed\n#status open\n",
		},
		{
			name: "hash not followed by a letter is text",
			text: "#1 thing to check: the DNS\n",
			rest: "#1 thing to check: the DNS\n",
		},
		{
			name:    "malformed lines are errors, good ones still apply",
			text:    "#status nonsense\n#stauts open\n#priority urgent\n#priority low\n#close now\n#cc bob@example.com\n#assign bob\n#status new\n#status\n\nText",
			want:    []Command{{Name: "priority", Priority: PriorityLow, Line: "#priority low"}},
			rest:    "Text",
			errLine: []string{"#status nonsense", "#stauts open", "#priority urgent", "#close now", "#cc bob@example.com", "#assign bob", "#status new", "#status"},
		},
		{
			name: "indented command and reply keeps its indent",
			text: "  #status resolved\n  indented reply",
			want: []Command{{Name: "status", Status: StatusResolved, Line: "#status resolved"}},
			rest: "  indented reply",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, rest, errs := ParseCommands(tt.text)
			if !reflect.DeepEqual(cmds, tt.want) {
				t.Errorf("commands = %+v\nwant %+v", cmds, tt.want)
			}
			if rest != tt.rest {
				t.Errorf("rest = %q, want %q", rest, tt.rest)
			}
			var lines []string
			for _, e := range errs {
				lines = append(lines, e.Line)
				if e.Reason == "" || !strings.Contains(e.Error(), e.Line) {
					t.Errorf("error %q does not quote its line or give a reason", e.Error())
				}
			}
			if !reflect.DeepEqual(lines, tt.errLine) {
				t.Errorf("error lines = %q, want %q", lines, tt.errLine)
			}
		})
	}
}

func TestCommandErrorWording(t *testing.T) {
	_, _, errs := ParseCommands("#stauts open\n#priority urgent")
	if len(errs) != 2 {
		t.Fatalf("got %d errors, want 2", len(errs))
	}
	if !strings.Contains(errs[0].Error(), "#status") {
		t.Errorf("unknown command error %q does not name the known commands", errs[0].Error())
	}
	if !strings.Contains(errs[1].Error(), "critical") {
		t.Errorf("priority error %q does not name the allowed values", errs[1].Error())
	}
}

func TestAuthorize(t *testing.T) {
	ana := Actor{Email: "ana@example.com", Queues: []string{"billing"}}
	bob := Actor{Email: "Bob@Example.com", Queues: []string{"Billing"}}
	eve := Actor{Email: "eve@example.com", Queues: []string{"sales"}}
	boss := Actor{Email: "boss@example.com", Manager: true}
	cli := Actor{Operator: true}
	unassigned := TicketView{Queue: "billing", Status: StatusOpen, Priority: PriorityMedium}
	anas := TicketView{Queue: "billing", Assignee: "ana@example.com", Status: StatusOpen, Priority: PriorityMedium}

	status := Command{Name: "status", Status: StatusResolved}
	priority := Command{Name: "priority", Priority: PriorityHigh}
	closeCmd := Command{Name: "close"}
	me := Command{Name: "assign", Assign: "me"}
	toBob := Command{Name: "assign", Assign: "bob@example.com"}
	toAna := Command{Name: "assign", Assign: "ana@example.com"}
	unassign := Command{Name: "unassign"}
	note := Command{Name: "note"}
	cc := Command{Name: "cc", CcOp: "add", Cc: "x@example.org"}

	tests := []struct {
		name  string
		cmd   Command
		actor Actor
		t     TicketView
		ok    bool
		says  string // part of the refusal
	}{
		{"assignee sets status", status, ana, anas, true, ""},
		{"assignee escalates", Command{Name: "escalate"}, ana, anas, true, ""},
		{"queue agent escalates unassigned", Command{Name: "escalate"}, bob, unassigned, true, ""},
		{"other agent cannot escalate assigned", Command{Name: "escalate"}, bob, anas, false, "only the assignee ana@example.com or a manager can escalate the ticket"},
		{"agent of another queue cannot escalate", Command{Name: "escalate"}, eve, unassigned, false, "only agents of the queue"},
		{"other queue agent cannot set status of assigned", status, bob, anas, false, "only the assignee ana@example.com or a manager can change the status"},
		{"manager sets status of assigned", status, boss, anas, true, ""},
		{"operator sets status", status, cli, anas, true, ""},
		{"queue agent sets status of unassigned", status, bob, unassigned, true, ""},
		{"outsider cannot set status of unassigned", status, eve, unassigned, false, "queue"},
		{"queue agent cannot raise priority of assigned", priority, bob, anas, false, "change the priority"},
		{"queue agent closes unassigned", closeCmd, bob, unassigned, true, ""},
		{"queue agent cannot close assigned", closeCmd, bob, anas, false, "close"},
		{"queue agent takes unassigned", me, bob, unassigned, true, ""},
		{"queue agent takes unassigned by own address", Command{Name: "assign", Assign: "bob@example.com"}, bob, unassigned, true, ""},
		{"outsider cannot take unassigned", me, eve, unassigned, false, "queue"},
		{"queue agent cannot hand unassigned to someone else", toAna, bob, unassigned, false, "manager"},
		{"manager hands unassigned to someone", toAna, boss, unassigned, true, ""},
		{"queue agent cannot grab assigned", me, bob, anas, false, "reassign"},
		{"assignee hands over", toBob, ana, anas, true, ""},
		{"manager reassigns", toBob, boss, anas, true, ""},
		{"assignee unassigns", unassign, ana, anas, true, ""},
		{"other agent cannot unassign", unassign, bob, anas, false, "unassign"},
		{"queue agent notes on assigned", note, bob, anas, true, ""},
		{"assignee outside queue notes", note, Actor{Email: "ANA@example.com"}, anas, true, ""},
		{"outsider cannot note", note, eve, anas, false, "add notes"},
		{"queue agent changes cc", cc, bob, anas, true, ""},
		{"outsider cannot change cc", cc, eve, unassigned, false, "Cc"},
		{"empty address is not the assignee of unassigned", status, Actor{}, unassigned, false, "queue"},
		{"unknown command refused", Command{Name: "frobnicate"}, ana, anas, false, "unknown"},
		{"assignee merges", Command{Name: "merge", Ticket: "HS-000002"}, ana, anas, true, ""},
		{"other queue agent cannot merge assigned", Command{Name: "merge", Ticket: "HS-000002"}, bob, anas, false, "merge"},
		{"other queue agent cannot link assigned", Command{Name: "link", Ticket: "HS-000002"}, bob, anas, false, "link"},
		{"any agent may name a saved reply", Command{Name: "reply", Reply: "thanks"}, bob, anas, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Authorize(tt.cmd, tt.actor, tt.t)
			if (err == nil) != tt.ok {
				t.Fatalf("Authorize = %v, want allowed %v", err, tt.ok)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrNotAllowed) {
				t.Errorf("refusal %v does not wrap ErrNotAllowed", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("refusal %q does not say %q", err, tt.says)
			}
		})
	}
}

func FuzzParseCommands(f *testing.F) {
	f.Add("#status waiting\n\nHi Sam\n")
	f.Add("\r\n#Status ON HOLD  \r\n#priority high\r\n#assign Ana <ana@example.com>\r\n#cc remove b@x.org\rtext")
	f.Add("#stauts open\n#close now\n> #status closed\n#note")
	f.Add("  #unassign \n\u00a0\n#cc: add \"a b\"@example.com\n#1\n")
	f.Fuzz(func(t *testing.T, text string) {
		cmds, rest, errs := ParseCommands(text)
		norm := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
		if !strings.HasSuffix(norm, rest) {
			t.Fatalf("rest %q is not a suffix of %q", rest, norm)
		}
		if rest != "" && strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]) == "" {
			t.Fatalf("rest %q starts with a blank line", rest)
		}
		for _, c := range cmds {
			again, r2, e2 := ParseCommands(c.Line)
			if len(again) != 1 || !reflect.DeepEqual(again[0], c) || r2 != "" || len(e2) != 0 {
				t.Fatalf("command %+v re-parses from its line to %+v, %q, %v", c, again, r2, e2)
			}
		}
		for _, e := range errs {
			again, _, e2 := ParseCommands(e.Line)
			if len(again) != 0 || len(e2) != 1 || e2[0] != e {
				t.Fatalf("error %+v re-parses from its line to %+v, %v", e, again, e2)
			}
		}
	})
}

// TestMayReply: on an assigned ticket only the assignee's reply reaches
// the customer; on an unassigned one, which the reply takes, an agent of
// its queue's or a manager's, as "#assign me" would.
func TestMayReply(t *testing.T) {
	bob := Actor{Email: "Bob@Example.com", Queues: []string{"Billing"}}
	eve := Actor{Email: "eve@example.com", Queues: []string{"sales"}}
	boss := Actor{Email: "boss@example.com", Manager: true}
	unassigned := TicketView{Queue: "billing", Status: StatusOpen}
	anas := TicketView{Queue: "billing", Assignee: "ana@example.com", Status: StatusOpen}
	for _, tt := range []struct {
		name  string
		actor Actor
		t     TicketView
		ok    bool
	}{
		{"queue agent on unassigned", bob, unassigned, true},
		{"manager on unassigned", boss, unassigned, true},
		{"agent of another queue on unassigned", eve, unassigned, false},
		{"assignee", Actor{Email: "ANA@example.com"}, anas, true},
		{"queue agent on assigned", bob, anas, false},
		{"manager on assigned", boss, anas, false},
	} {
		if err := MayReply(tt.actor, tt.t); (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%s: MayReply = %v, want allowed %v", tt.name, err, tt.ok)
		}
	}
}
