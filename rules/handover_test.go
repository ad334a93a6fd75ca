package rules

import "testing"

func TestHandover(t *testing.T) {
	for _, c := range []struct {
		name          string
		by            string
		before, after TicketView
		escalated     bool
		want          Told
	}{
		{"escalated unassigned", "", TicketView{Queue: "support"}, TicketView{Queue: "level2"}, true, Told{Queue: "level2", Watchers: true}},
		{"escalated, level-1 assignee left", "ana@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "level2"}, true, Told{Queue: "level2", Watchers: true}},
		{"escalated, kept by a manager", "", TicketView{Queue: "support", Assignee: "meg@example.com"}, TicketView{Queue: "level2", Assignee: "meg@example.com"}, true, Told{Assignee: "meg@example.com", Queue: "level2", Watchers: true}},
		{"escalated by the assignee kept", "meg@example.com", TicketView{Queue: "support", Assignee: "meg@example.com"}, TicketView{Queue: "level2", Assignee: "meg@example.com"}, true, Told{Queue: "level2", Watchers: true}},
		{"escalated in its own queue", "", TicketView{Queue: "support"}, TicketView{Queue: "support"}, true, Told{Queue: "support", Watchers: true}},
		{"moved unassigned", "", TicketView{Queue: "support"}, TicketView{Queue: "level2"}, false, Told{Queue: "level2"}},
		{"given to another", "meg@example.com", TicketView{Queue: "support"}, TicketView{Queue: "support", Assignee: "ben@example.com"}, false, Told{Assignee: "ben@example.com"}},
		{"handed on", "", TicketView{Queue: "support", Assignee: "ben@example.com"}, TicketView{Queue: "support", Assignee: "Ana@example.com"}, false, Told{Assignee: "Ana@example.com"}},
		{"taken", "ana@example.com", TicketView{Queue: "support", Assignee: "ben@example.com"}, TicketView{Queue: "support", Assignee: "ana@example.com"}, false, Told{}},
		{"still hers", "meg@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "support", Assignee: "ana@example.com"}, false, Told{}},
		{"unassigned", "ana@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "support"}, false, Told{}},
		{"nothing moved", "ana@example.com", TicketView{Queue: "support"}, TicketView{Queue: "support"}, false, Told{}},
	} {
		if got := Handover(c.by, c.before, c.after, c.escalated); got != c.want {
			t.Errorf("%s: Handover = %+v, want %+v", c.name, got, c.want)
		}
	}
}
