package rules

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSpan(t *testing.T) {
	tests := []struct {
		in   string
		want Span
		str  string
	}{
		{"4h", Span{Dur: 4 * time.Hour}, "4h"},
		{"90m", Span{Dur: 90 * time.Minute}, "1h30m"},
		{" 30s ", Span{Dur: 30 * time.Second}, "30s"},
		{"5bd", Span{BusinessDays: 5, Business: true}, "5bd"},
		{"8bh", Span{Dur: 8 * time.Hour, Business: true}, "8bh"},
		{"7.5bh", Span{Dur: 450 * time.Minute, Business: true}, "7.5bh"},
		{"1h20mbh", Span{Dur: 80 * time.Minute, Business: true}, "1h20mbh"},
	}
	for _, tt := range tests {
		got, err := ParseSpan(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSpan(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.str {
			t.Errorf("%+v.String() = %q, want %q", got, s, tt.str)
		}
		if back, err := ParseSpan(got.String()); err != nil || back != got {
			t.Errorf("ParseSpan(%q) = %+v, %v; want the span back", got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "0h", "-4h", "4", "bd", "0bd", "-1bd", "1.5bd", "0bh", "xbh", "4 hours", "3d"} {
		if got, err := ParseSpan(bad); !errors.Is(err, ErrSpan) {
			t.Errorf("ParseSpan(%q) = %+v, %v; want ErrSpan", bad, got, err)
		}
	}
}

func TestSLAStart(t *testing.T) {
	p := DefaultSLAPolicy()
	bh := DefaultSLAPolicy()
	bh.Targets[PriorityMedium] = Target{FirstResponse: Span{Dur: 4 * time.Hour, Business: true}, Resolution: Span{Dur: 8 * time.Hour, Business: true}}
	tests := []struct {
		name       string
		p          SLAPolicy
		created    string
		prio       Priority
		plan       string
		first, res string
	}{
		{"critical, calendar hours", p, "2025-01-11 23:30", PriorityCritical, "", "2025-01-12 00:30", "2025-01-12 03:30"},
		{"high", p, "2025-01-06 10:00", PriorityHigh, "", "2025-01-06 14:00", "2025-01-07 10:00"},
		{"high on premium", p, "2025-01-06 10:00", PriorityHigh, "premium", "2025-01-06 12:00", "2025-01-07 10:00"},
		{"plan without override", p, "2025-01-06 10:00", PriorityHigh, "basic", "2025-01-06 14:00", "2025-01-07 10:00"},
		{"premium has no override for medium", p, "2025-01-06 10:00", PriorityMedium, "premium", "2025-01-07 10:00", "2025-01-13 10:00"},
		{"medium on Friday 16:30", p, "2025-01-10 16:30", PriorityMedium, "", "2025-01-11 16:30", "2025-01-17 16:30"},
		{"medium on Saturday", p, "2025-01-11 10:00", PriorityMedium, "", "2025-01-12 10:00", "2025-01-20 09:00"},
		{"low on Friday 16:30", p, "2025-01-10 16:30", PriorityLow, "", "2025-01-12 16:30", "2025-01-24 16:30"},
		{"unknown priority counts as medium", p, "2025-01-06 10:00", "urgent!!", "", "2025-01-07 10:00", "2025-01-13 10:00"},
		{"business hours on Friday 16:30", bh, "2025-01-10 16:30", PriorityMedium, "", "2025-01-13 12:30", "2025-01-13 16:30"},
		{"business hours on Saturday", bh, "2025-01-11 10:00", PriorityMedium, "", "2025-01-13 13:00", "2025-01-13 17:00"},
		{"business hours in the evening", bh, "2025-01-07 20:00", PriorityMedium, "", "2025-01-08 13:00", "2025-01-08 17:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.p.Start(utcAt(t, tt.created), tt.prio, tt.plan)
			if want := utcAt(t, tt.first); !s.FirstResponseDue.Equal(want) {
				t.Errorf("first response due %v, want %v", s.FirstResponseDue, want)
			}
			if want := utcAt(t, tt.res); !s.ResolutionDue.Equal(want) {
				t.Errorf("resolution due %v, want %v", s.ResolutionDue, want)
			}
		})
	}
}

// alerts runs Check at each instant in turn and collects what it raised.
func alerts(p SLAPolicy, s SLA, nows ...time.Time) ([]Alert, SLA) {
	var all []Alert
	for _, now := range nows {
		var got []Alert
		got, s = p.Check(s, now)
		all = append(all, got...)
	}
	return all, s
}

func kinds(as []Alert) []string {
	var out []string
	for _, a := range as {
		k := a.Kind
		if !a.Breach {
			k = "warn " + k
		}
		out = append(out, k)
	}
	return out
}

func TestSLABreachOnce(t *testing.T) {
	p := DefaultSLAPolicy()
	created := utcAt(t, "2025-01-06 10:00")
	s := p.Start(created, PriorityCritical, "")
	got, s := alerts(p, s, hourly(created, created.Add(3*time.Hour))...)
	if want := []string{KindFirstResponse}; !slices.Equal(kinds(got), want) {
		t.Fatalf("first three hours: %v, want %v", kinds(got), want)
	}
	if !got[0].Due.Equal(created.Add(time.Hour)) {
		t.Fatalf("breach names due %v, want %v", got[0].Due, created.Add(time.Hour))
	}
	got, s = alerts(p, s, hourly(created.Add(3*time.Hour), created.Add(48*time.Hour))...)
	if want := []string{KindResolution}; !slices.Equal(kinds(got), want) {
		t.Fatalf("after three hours: %v, want %v", kinds(got), want)
	}
	if !slices.Equal(s.Breached, []string{KindFirstResponse, KindResolution}) {
		t.Fatalf("breached = %v", s.Breached)
	}
	if next := p.NextCheck(s); !next.IsZero() {
		t.Fatalf("everything raised, yet NextCheck = %v", next)
	}
}

func TestSLAWarning(t *testing.T) {
	p := DefaultSLAPolicy()
	p.WarnBefore = 15 * time.Minute
	created := utcAt(t, "2025-01-06 10:00")
	s := p.Start(created, PriorityCritical, "")
	var every []time.Time
	for m := range 5 * 60 {
		every = append(every, created.Add(time.Duration(m)*time.Minute))
	}
	got, _ := alerts(p, s, every...)
	want := []string{"warn " + KindFirstResponse, KindFirstResponse, "warn " + KindResolution, KindResolution}
	if !slices.Equal(kinds(got), want) {
		t.Fatalf("minute by minute: %v, want %v", kinds(got), want)
	}
	if !got[0].Due.Equal(created.Add(time.Hour)) {
		t.Fatalf("warning names due %v, want %v", got[0].Due, created.Add(time.Hour))
	}

	// Checked for the first time after the due time: the breach only.
	got, _ = alerts(p, s, created.Add(2*time.Hour), created.Add(2*time.Hour))
	if want := []string{KindFirstResponse}; !slices.Equal(kinds(got), want) {
		t.Fatalf("late check: %v, want %v", kinds(got), want)
	}
}

func TestSLARespondedAndResolved(t *testing.T) {
	p := DefaultSLAPolicy()
	created := utcAt(t, "2025-01-06 10:00")
	s := p.Start(created, PriorityCritical, "")
	s = s.Responded(created.Add(30 * time.Minute))
	s = s.Responded(created.Add(50 * time.Minute))
	if !s.FirstResponseAt.Equal(created.Add(30 * time.Minute)) {
		t.Fatalf("first response at %v, want the first reply", s.FirstResponseAt)
	}
	got, _ := alerts(p, s, created.Add(2*time.Hour))
	if len(got) != 0 {
		t.Fatalf("answered in time, yet %v", kinds(got))
	}
	s = s.Resolve(created.Add(3 * time.Hour))
	if got, _ := alerts(p, s, created.Add(10*time.Hour)); len(got) != 0 {
		t.Fatalf("resolved in time, yet %v", kinds(got))
	}
	if next := p.NextCheck(s); !next.IsZero() {
		t.Fatalf("resolved, yet NextCheck = %v", next)
	}
}

func TestSLAPause(t *testing.T) {
	p := DefaultSLAPolicy()
	created := utcAt(t, "2025-01-06 10:00")
	s := p.Start(created, PriorityMedium, "").Responded(created.Add(time.Hour))
	if want := utcAt(t, "2025-01-13 10:00"); !s.ResolutionDue.Equal(want) {
		t.Fatalf("resolution due %v, want %v", s.ResolutionDue, want)
	}

	// On hold from Tuesday 10:00 to Thursday 10:00: 16 business hours.
	s = s.Pause(utcAt(t, "2025-01-07 10:00"))
	if got, _ := alerts(p, s, utcAt(t, "2025-01-14 12:00")); len(got) != 0 {
		t.Fatalf("paused past the due time, yet %v", kinds(got))
	}
	s = p.Resume(s, utcAt(t, "2025-01-09 10:00"))
	want := utcAt(t, "2025-01-15 10:00")
	if !s.ResolutionDue.Equal(want) {
		t.Fatalf("resolution due after the pause %v, want %v", s.ResolutionDue, want)
	}
	if got, _ := alerts(p, s, want.Add(-time.Minute)); len(got) != 0 {
		t.Fatalf("before the moved due time: %v", kinds(got))
	}
	if got, _ := alerts(p, s, want); !slices.Equal(kinds(got), []string{KindResolution}) {
		t.Fatalf("at the moved due time: %v, want the breach", kinds(got))
	}

	// Waiting on the customer over a weekend pauses no business time.
	weekend := s.Pause(utcAt(t, "2025-01-10 17:00"))
	weekend = p.Resume(weekend, utcAt(t, "2025-01-13 09:00"))
	if !weekend.ResolutionDue.Equal(want) {
		t.Fatalf("a weekend pause moved the due time to %v", weekend.ResolutionDue)
	}

	// A calendar target moves by calendar time.
	c := p.Start(created, PriorityCritical, "")
	c = p.Resume(c.Pause(created.Add(time.Hour)), created.Add(2*time.Hour+30*time.Minute))
	if want := created.Add(5*time.Hour + 30*time.Minute); !c.ResolutionDue.Equal(want) {
		t.Fatalf("critical after a pause: due %v, want %v", c.ResolutionDue, want)
	}
}

func TestSLAWarningAfterPause(t *testing.T) {
	p := DefaultSLAPolicy()
	p.WarnBefore = 15 * time.Minute
	created := utcAt(t, "2025-01-06 10:00")
	s := p.Start(created, PriorityCritical, "").Responded(created)
	got, s := alerts(p, s, created.Add(3*time.Hour+50*time.Minute))
	if !slices.Equal(kinds(got), []string{"warn " + KindResolution}) {
		t.Fatalf("ten minutes before the due time: %v, want a warning", kinds(got))
	}
	// Waiting on the customer for an hour moves the due time to 5h, and
	// the agents are warned again before it.
	s = p.Resume(s.Pause(created.Add(3*time.Hour+50*time.Minute)), created.Add(4*time.Hour+50*time.Minute))
	got, _ = alerts(p, s, created.Add(4*time.Hour+50*time.Minute), created.Add(4*time.Hour+55*time.Minute), created.Add(5*time.Hour))
	if !slices.Equal(kinds(got), []string{"warn " + KindResolution, KindResolution}) || !got[1].Due.Equal(created.Add(5*time.Hour)) {
		t.Fatalf("after the pause: %v, want a new warning, then the breach of the 5h due time", got)
	}
}

func TestSLAReprioritise(t *testing.T) {
	p := DefaultSLAPolicy()
	p.WarnBefore = 30 * time.Minute
	created := utcAt(t, "2025-01-06 10:00")
	s := p.Start(created, PriorityLow, "")
	s = p.Resume(s.Pause(created.Add(time.Hour)), created.Add(2*time.Hour))
	_, s = p.Check(s, created.Add(2*time.Hour))

	s = p.Reprioritise(s, PriorityCritical)
	if want := created.Add(time.Hour); !s.FirstResponseDue.Equal(want) {
		t.Errorf("first response due %v, want %v from creation", s.FirstResponseDue, want)
	}
	if want := created.Add(5 * time.Hour); !s.ResolutionDue.Equal(want) {
		t.Errorf("resolution due %v, want %v (4h plus the hour on hold)", s.ResolutionDue, want)
	}
	got, _ := alerts(p, s, created.Add(2*time.Hour), created.Add(4*time.Hour+40*time.Minute), created.Add(6*time.Hour))
	want := []string{KindFirstResponse, "warn " + KindResolution, KindResolution}
	if !slices.Equal(kinds(got), want) {
		t.Errorf("after raising to critical: %v, want %v", kinds(got), want)
	}
}

func TestSLANextCheck(t *testing.T) {
	p := DefaultSLAPolicy()
	p.WarnBefore = 10 * time.Minute
	created := utcAt(t, "2025-01-10 16:30")
	s := p.Start(created, PriorityMedium, "")
	var seen []string
	for range 10 {
		next := p.NextCheck(s)
		if next.IsZero() {
			break
		}
		if got, _ := p.Check(s, next.Add(-time.Nanosecond)); len(got) != 0 {
			t.Fatalf("alerts %v before NextCheck %v", kinds(got), next)
		}
		var got []Alert
		got, s = p.Check(s, next)
		if len(got) == 0 {
			t.Fatalf("nothing at NextCheck %v", next)
		}
		seen = append(seen, kinds(got)...)
	}
	want := []string{"warn " + KindFirstResponse, KindFirstResponse, "warn " + KindResolution, KindResolution}
	if !slices.Equal(seen, want) {
		t.Fatalf("following NextCheck: %v, want %v", seen, want)
	}
	if paused := p.NextCheck(p.Start(created, PriorityMedium, "").Responded(created).Pause(created)); !paused.IsZero() {
		t.Fatalf("answered and paused, yet NextCheck = %v", paused)
	}
}

func TestSLAJSON(t *testing.T) {
	p := DefaultSLAPolicy()
	created := utcAt(t, "2025-01-06 10:00")
	for name, s := range map[string]SLA{"started": p.Start(created, PriorityHigh, ""), "zero": {}} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"first_response_due", "resolution_due", "first_response_at", "breached"} {
			if _, ok := m[key]; !ok {
				t.Errorf("%s: JSON %s lacks %q", name, b, key)
			}
		}
		if string(m["first_response_at"]) != "null" || string(m["breached"]) != "[]" {
			t.Errorf("%s: first_response_at %s breached %s, want null and []", name, m["first_response_at"], m["breached"])
		}
		if _, ok := m["warned"]; ok {
			t.Errorf("%s: JSON %s carries an empty warned", name, b)
		}
	}

	s := p.Start(created, PriorityCritical, "").Responded(created.Add(time.Minute))
	_, s = p.Check(s, created.Add(5*time.Hour))
	b, _ := json.Marshal(s)
	if !strings.Contains(string(b), `"breached":["resolution"]`) || !strings.Contains(string(b), `"first_response_at":"2025-01-06T10:01:00Z"`) {
		t.Errorf("JSON %s does not record the response and the breach", b)
	}
	var back SLA
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Check(back, created.Add(6*time.Hour)); len(got) != 0 {
		t.Errorf("after a round trip through JSON the breach is raised again: %v", kinds(got))
	}
}

func TestSLACheckLeavesInputAlone(t *testing.T) {
	p := DefaultSLAPolicy()
	created := utcAt(t, "2025-01-06 10:00")
	s := p.Start(created, PriorityCritical, "")
	s.Breached = make([]string, 0, 4) // spare room a careless append would share
	answered := s.Responded(created.Add(time.Minute))
	_, a := p.Check(s, created.Add(2*time.Hour))
	_, b := p.Check(answered, created.Add(5*time.Hour))
	if !slices.Equal(a.Breached, []string{KindFirstResponse}) || !slices.Equal(b.Breached, []string{KindResolution}) {
		t.Fatalf("two checks from copies of one SLA recorded %v and %v; want [first_response] and [resolution]", a.Breached, b.Breached)
	}
}
