package metrics

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"ticketgate/store"
)

// families gathers the registry after one of each hook was called, so
// every vector has a series.
func families(t *testing.T) map[string]bool {
	t.Helper()
	m := New(func(context.Context) (store.Stats, error) { return store.Stats{}, nil })
	m.Received("smtp", "support@example.com", "new")
	m.Session("smtp")
	m.Reply("smtp", "rcpt", 550)
	m.Ingest("smtp", time.Millisecond)
	m.Delivery("sent")
	m.Sweep(time.Second, nil)
	m.Poll("box", nil)
	m.Poll("box", errors.New("down"))
	m.Commit("batch", time.Millisecond)
	m.GroupCommit(12, 3*time.Millisecond)
	m.Reload(nil)
	m.Ticket("opened")
	m.Rating(5)
	got, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range got {
		names[f.GetName()] = true
	}
	return names
}

func TestEveryFamilyIsNamedTicketgate(t *testing.T) {
	names := families(t)
	if len(names) < 14 {
		t.Errorf("only %d families: %v", len(names), names)
	}
	for n := range names {
		if !strings.HasPrefix(n, "ticketgate_") {
			t.Errorf("family %s is not named ticketgate_…", n)
		}
	}
}

// TestDashboardPlotsFamiliesThatExist: every series the Grafana dashboard
// queries is one this package exports, so a renamed family cannot leave
// an empty panel behind.
func TestDashboardPlotsFamiliesThatExist(t *testing.T) {
	b, err := os.ReadFile("../contrib/grafana/ticketgate.json")
	if err != nil {
		t.Fatal(err)
	}
	names := families(t)
	used := regexp.MustCompile(`ticketgate_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the dashboard queries no ticketgate_ series")
	}
	for _, s := range used {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s, "_bucket"), "_sum"), "_count")
		if !names[base] {
			t.Errorf("the dashboard queries %s, which is not exported", s)
		}
	}
}

// TestDashboardPlotsEveryFamily: docs/operations.md promises a panel per
// family, so a family added to /metrics needs its panel too.
func TestDashboardPlotsEveryFamily(t *testing.T) {
	b, err := os.ReadFile("../contrib/grafana/ticketgate.json")
	if err != nil {
		t.Fatal(err)
	}
	plotted := map[string]bool{}
	for _, s := range regexp.MustCompile(`ticketgate_[a-z_]+`).FindAllString(string(b), -1) {
		plotted[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s, "_bucket"), "_sum"), "_count")] = true
	}
	for name := range families(t) {
		if !plotted[name] {
			t.Errorf("the dashboard has no panel for %s", name)
		}
	}
}
