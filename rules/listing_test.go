package rules

import (
	"fmt"
	"testing"
	"time"
)

func TestIsListingRequest(t *testing.T) {
	CompileToken("HS")
	support := Route{Address: "support@example.com", Queue: "support"}
	status := Route{Address: "status@example.com", Kind: RouteStatus}
	cases := []struct {
		route   Route
		subject string
		want    bool
	}{
		{support, "my tickets", true},
		{support, "  My Tickets  ", true},
		{support, "MY TICKETS?", true},
		{support, "Re: my tickets", true},
		{support, "Fwd: RE: my tickets", true},
		{support, "AW: my   tickets.", true},
		{support, "my tickets are broken", false},
		{support, "where are my tickets", false},
		{support, "Re: [HS-123456] my tickets", false},
		{support, "", false},
		{status, "", true},
		{status, "anything at all", true},
		{status, "Re: [HS-123456] Printer on fire", true},
		{Route{Address: "escalation@example.com", Queue: "e", Kind: RouteEscalation}, "my tickets", true},
	}
	for _, c := range cases {
		if got := IsListingRequest(c.route, c.subject, "HS"); got != c.want {
			t.Errorf("route %s subject %q: %v, want %v", c.route.Address, c.subject, got, c.want)
		}
	}
}

func TestDecideListing(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tickets := []Listed{
		{ID: "HS-000001", Subject: "old open", Status: StatusOpen, UpdatedAt: now.Add(-48 * time.Hour)},
		{ID: "HS-000002", Subject: "closed", Status: StatusClosed, UpdatedAt: now.Add(-time.Hour)},
		{ID: "HS-000003", Subject: "fresh", Status: StatusWaiting, UpdatedAt: now.Add(-time.Minute)},
		{ID: "HS-000004", Subject: "resolved", Status: StatusResolved, UpdatedAt: now},
		{ID: "HS-000005", Subject: "merged", Status: StatusOpen, UpdatedAt: now, MergedInto: "HS-000001"},
	}
	base := ListingRequest{From: "Alice@Customer.example", Tickets: tickets, Now: now,
		Limits: []Limit{{Per: time.Hour, Max: 2}}}
	d := DecideListing(base)
	if !d.Send || d.Outcome != ListingSent || d.To != "alice@customer.example" {
		t.Fatalf("a requester's request: %+v", d)
	}
	if got := fmt.Sprint(ids(d.Tickets)); got != "[HS-000003 HS-000001]" {
		t.Errorf("listed %s, want the unresolved ones, most recently updated first", got)
	}

	no := map[string]func(r *ListingRequest){
		ListingNoSender:    func(r *ListingRequest) { r.From = "" },
		ListingAutomatic:   func(r *ListingRequest) { r.Auto = Auto{Automatic: true, Reason: "Precedence: bulk"} },
		ListingAgent:       func(r *ListingRequest) { r.Agent = true },
		ListingStranger:    func(r *ListingRequest) { r.Tickets = nil },
		ListingRepeat:      func(r *ListingRequest) { r.Answered = true },
		ListingBouncing:    func(r *ListingRequest) { r.Bouncing = true },
		ListingRateLimited: func(r *ListingRequest) { r.AutoTimes = []time.Time{now.Add(-time.Minute), now.Add(-30 * time.Minute)} },
	}
	for outcome, change := range no {
		r := base
		change(&r)
		d := DecideListing(r)
		if d.Send || d.Outcome != outcome || d.Reason == "" || len(d.Tickets) != 0 {
			t.Errorf("%s: %+v", outcome, d)
		}
	}
	// Mail an hour ago no longer counts.
	r := base
	r.AutoTimes = []time.Time{now.Add(-61 * time.Minute), now.Add(-90 * time.Minute)}
	if d := DecideListing(r); !d.Send {
		t.Errorf("automatic mail older than the limit's window held the list back: %+v", d)
	}

	// Only resolved tickets: the list goes out, empty.
	r = base
	r.Tickets = tickets[1:2]
	if d := DecideListing(r); !d.Send || len(d.Tickets) != 0 {
		t.Errorf("a requester with nothing open: %+v", d)
	}

	var many []Listed
	for i := range MaxListed + 3 {
		many = append(many, Listed{ID: fmt.Sprintf("HS-%06d", i), Status: StatusNew, UpdatedAt: now})
	}
	r.Tickets = many
	if d := DecideListing(r); len(d.Tickets) != MaxListed || d.More != 3 {
		t.Errorf("%d tickets listed and %d more, want %d and 3", len(d.Tickets), d.More, MaxListed)
	}
}

func ids(l []Listed) []string {
	var out []string
	for _, t := range l {
		out = append(out, t.ID)
	}
	return out
}
