package rules

import "testing"

func TestHandover(t *testing.T) {
	for _, c := range []struct {
		name          string
		by            string
		before, after TicketView
		escalated     bool
		want          Told
		merged        bool
	}{
		{"escalated unassigned", "", TicketView{Queue: "support"}, TicketView{Queue: "level2"}, true, Told{Queue: "level2", Watchers: true}, false},
		{"escalated, level-1 assignee left", "ana@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "level2"}, true, Told{Queue: "level2", Watchers: true}, false},
		{"escalated, kept by a manager", "", TicketView{Queue: "support", Assignee: "meg@example.com"}, TicketView{Queue: "level2", Assignee: "meg@example.com"}, true, Told{Assignee: "meg@example.com", Queue: "level2", Watchers: true}, false},
		{"escalated by the assignee kept", "meg@example.com", TicketView{Queue: "support", Assignee: "meg@example.com"}, TicketView{Queue: "level2", Assignee: "meg@example.com"}, true, Told{Queue: "level2", Watchers: true}, false},
		{"escalated in its own queue", "", TicketView{Queue: "support"}, TicketView{Queue: "support"}, true, Told{Queue: "support", Watchers: true}, false},
		{"moved unassigned", "", TicketView{Queue: "support"}, TicketView{Queue: "level2"}, false, Told{Queue: "level2"}, false},
		{"given to another", "meg@example.com", TicketView{Queue: "support"}, TicketView{Queue: "support", Assignee: "ben@example.com"}, false, Told{Assignee: "ben@example.com"}, false},
		{"handed on", "", TicketView{Queue: "support", Assignee: "ben@example.com"}, TicketView{Queue: "support", Assignee: "Ana@example.com"}, false, Told{Assignee: "Ana@example.com"}, false},
		{"taken", "ana@example.com", TicketView{Queue: "support", Assignee: "ben@example.com"}, TicketView{Queue: "support", Assignee: "ana@example.com"}, false, Told{}, false},
		{"still hers", "meg@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "support", Assignee: "ana@example.com"}, false, Told{}, false},
		{"unassigned", "ana@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "support"}, false, Told{}, false},
		{"merged into hers", "ben@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "support", Assignee: "ana@example.com"}, false, Told{Assignee: "ana@example.com"}, true},
		{"merged into her own", "ana@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "support", Assignee: "ana@example.com"}, false, Told{}, true},
		{"merged into nobody's", "ana@example.com", TicketView{Queue: "support"}, TicketView{Queue: "support"}, false, Told{}, true},
		{"nothing moved", "ana@example.com", TicketView{Queue: "support"}, TicketView{Queue: "support"}, false, Told{}, false},
	} {
		h := Handing{By: c.by, Before: c.before, After: c.after, Escalated: c.escalated, Merged: c.merged}
		if got := Handover(h); got != c.want {
			t.Errorf("%s: Handover = %+v, want %+v", c.name, got, c.want)
		}
	}
}
