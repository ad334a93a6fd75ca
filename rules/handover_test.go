package rules

import "testing"

func TestHandover(t *testing.T) {
	for _, c := range []struct {
		name          string
		by            string
		before, after TicketView
		want          Told
	}{
		{"escalated unassigned", "", TicketView{Queue: "support"}, TicketView{Queue: "level2"}, Told{Queue: "level2"}},
		{"escalated, level-1 assignee left", "ana@example.com", TicketView{Queue: "support", Assignee: "ana@example.com"}, TicketView{Queue: "level2"}, Told{Queue: "level2"}},
		{"escalated, kept by a manager", "", TicketView{Queue: "support", Assignee: "meg@example.com"}, TicketView{Queue: "level2", Assignee: "meg@example.com"}, Told{}},
		{"escalated in its own queue", "", TicketView{Queue: "support"}, TicketView{Queue: "Support"}, Told{}},
		{"nothing moved", "ana@example.com", TicketView{Queue: "support"}, TicketView{Queue: "support"}, Told{}},
	} {
		if got := Handover(c.by, c.before, c.after); got != c.want {
			t.Errorf("%s: Handover = %+v, want %+v", c.name, got, c.want)
		}
	}
}
