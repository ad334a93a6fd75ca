package view

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

func TestTicketViewHidesTheRecordsInternals(t *testing.T) {
	zone := time.FixedZone("EST", -5*60*60)
	at := time.Date(2026, 11, 21, 5, 0, 0, 0, zone)
	rec := &store.Ticket{
		ID: "HS-000001", Subject: "a <b> & c", Status: rules.StatusOpen, CreatedAt: at, UpdatedAt: at,
		Linked: []string{"HS-000002"}, Route: "support@example.com", LastInID: "<x@y>", Thread: []string{"<x@y>"},
		SurveySent: true, Due: at, Clock: rules.Clock{Status: rules.StatusWaiting, AwaitingSince: at},
		SLA:      &rules.SLA{FirstResponseDue: at, ResolutionDue: at, Warned: []string{"resolution"}, PausedAt: at, Plan: "gold"},
		Messages: []store.Message{{MessageID: "m@x", CreatedAt: at, Raw: "0123"}},
		Events:   []store.Event{{At: at, Type: "created"}},
	}
	var b bytes.Buffer
	if err := Encode(&b, NewTicket(rec)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, hidden := range []string{`"route"`, `"last_in_id"`, `"thread"`, `"survey_sent"`, `"due"`, `"lifecycle"`,
		`"raw_sha256"`, `"warned"`, `"paused_at"`, `"plan": "gold"`, "-05:00"} {
		if strings.Contains(out, hidden) {
			t.Errorf("view has %s:\n%s", hidden, out)
		}
	}
	for _, want := range []string{`"subject": "a <b> & c"`, `"created_at": "2026-11-21T10:00:00Z"`,
		`"links": [` + "\n" + `    "HS-000002"`, `"linked": [` + "\n" + `    "HS-000002"`, `"cc": []`, `"to": []`,
		`"attachments": []`, `"breached": []`, `"first_response_at": null`, `"at": "2026-11-21T10:00:00Z"`} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %s:\n%s", want, out)
		}
	}
}

func TestActionResultWithoutTicket(t *testing.T) {
	b, err := Marshal(NewActionResult(nil, nil))
	if err != nil || string(b) != `{"ticket":null,"events":[]}` {
		t.Errorf("empty action result: %s, %v", b, err)
	}
}
