package rules

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTicketToken(t *testing.T) {
	CompileToken("HS")
	cases := []struct {
		subject, want string
	}{
		{"[HS-482913] Printer on fire", "HS-482913"},
		{"Re: [HS-482913] Printer on fire", "HS-482913"},
		{"AW: Fwd: RE: SV: VS: FW: [hs-482913] x", "HS-482913"},
		{"Re: HS-482913", "HS-482913"},
		{"about ticket hs-482913, please", "HS-482913"},
		{"Re[2]: (HS-000001)", "HS-000001"},
		{"HS-4829134 seven digits", ""},
		{"XHS-482913 glued prefix", ""},
		{"HS-48291 five digits", ""},
		{"no token at all", ""},
	}
	for _, c := range cases {
		got, ok := TicketToken(c.subject, "HS")
		if got != c.want || ok != (c.want != "") {
			t.Errorf("TicketToken(%q) = %q, %v; want %q", c.subject, got, ok, c.want)
		}
	}
	if got, _ := TicketToken("Re: [acme-000042] x", "ACME"); got != "ACME-000042" {
		t.Errorf("configured prefix: %q", got)
	}
}

func TestBaseSubject(t *testing.T) {
	for in, want := range map[string]string{
		"Re: AW: [HS-482913] Printer   on fire": "Printer on fire",
		"Fwd: Re[3]: hello":                     "hello",
		"hello\r\nBcc: x@y":                     "hello Bcc: x@y",
		"[HS-482913]":                           "",
		// A token in the middle leaves the words around it apart.
		"Question about HS-482913 status": "Question about status",
		// Not tokens (TicketToken reads none): the subject stays whole.
		"Order HS-20261107 missing": "Order HS-20261107 missing",
		"Parts THS-482913 broken":   "Parts THS-482913 broken",
	} {
		if got := BaseSubject(in, "HS"); got != want {
			t.Errorf("BaseSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecideThread(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	p := ThreadPolicy{ReopenWindow: 7 * 24 * time.Hour}
	open := &Candidate{ID: "HS-1", Status: StatusOpen, Requester: "a@x.example", Participants: []string{"cc@x.example"}, Via: "token"}
	closedAt := now.Add(-3 * 24 * time.Hour)
	closed := &Candidate{ID: "HS-1", Status: StatusClosed, Requester: "a@x.example", ClosedAt: closedAt, Via: "reference"}
	old := *closed
	old.ClosedAt = now.Add(-8 * 24 * time.Hour)
	autoClosed, autoOld, autoStranger := *closed, old, *closed
	autoClosed.Automatic, autoOld.Automatic, autoStranger.Automatic = true, true, true
	rated := *closed
	rated.SurveySent, rated.Rating, rated.Participants = true, true, []string{"cc@x.example"}
	cases := []struct {
		name   string
		c      *Candidate
		sender string
		agent  bool
		want   ThreadAction
	}{
		{"nothing named", nil, "a@x.example", false, ThreadNew},
		{"requester", open, "A@X.example", false, ThreadAppend},
		{"participant", open, "cc@x.example", false, ThreadAppend},
		{"agent", open, "ana@example.com", true, ThreadAppend},
		{"stranger", open, "eve@evil.example", false, ThreadLinked},
		{"empty sender", open, "", false, ThreadLinked},
		{"closed within window", closed, "a@x.example", false, ThreadReopen},
		{"closed long ago", &old, "a@x.example", false, ThreadLinked},
		{"automatic to closed", &autoClosed, "a@x.example", false, ThreadAppend},
		{"automatic to closed long ago", &autoOld, "a@x.example", false, ThreadAppend},
		{"requester's rating", &rated, "a@x.example", false, ThreadAppend},
		{"participant's score is no rating", &rated, "cc@x.example", false, ThreadReopen},
		{"automatic from a stranger", &autoStranger, "eve@evil.example", false, ThreadLinked},
	}
	for _, c := range cases {
		if got := p.DecideThread(c.c, c.sender, c.agent, now); got.Action != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got.Action, got.Reason, c.want)
		}
	}
}

// baseSubjectPlain is BaseSubject running both expressions on every
// subject: the reference its shortcuts must agree with.
func baseSubjectPlain(subject, prefix string) string {
	s := CleanHeader(subject)
	tok := tokenRE(prefix).strip
	for {
		n := replyPrefix.ReplaceAllString(s, "")
		n = strings.TrimSpace(stripTokens(n, tok))
		if n == s {
			break
		}
		s = n
	}
	return strings.Join(strings.Fields(s), " ")
}

func BenchmarkBaseSubject(b *testing.B) {
	for _, s := range []string{"Order not delivered (load 18ee9453691c779c/1)", "Re: AW: [HS-482913] Printer on fire"} {
		b.Run(s[:5], func(b *testing.B) {
			for b.Loop() {
				BaseSubject(s, "HS")
			}
		})
	}
}

// FuzzThreading checks the threading decisions on any subject and sender:
// a token found is always canonical and present in the subject, the base
// subject is a single clean line, and no stranger ever joins a ticket.
func FuzzThreading(f *testing.F) {
	for _, s := range []string{"Re: [HS-482913] x", "hs-000001", "AW: AW: [HS-1234567]", "\r\nBcc: x", "Re[2]: (HS-999999)",
		"Re：x", "Hſ-123456 x", "a-12345 b-123456", "-123456", "x-12345", "Re: Re: hs-000001 Re: y"} {
		f.Add(s, "a@x.example")
	}
	CompileToken("HS")
	f.Fuzz(func(t *testing.T, subject, sender string) {
		id, ok := TicketToken(subject, "HS")
		if m := tokenRE("HS").find.FindStringSubmatch(subject); (m != nil) != ok || ok && id != "HS-"+m[1] {
			t.Fatalf("TicketToken(%q) = %q, %v; the expression alone finds %q", subject, id, ok, m)
		}
		if ok {
			if len(id) != 9 || !strings.HasPrefix(id, "HS-") || !strings.Contains(strings.ToUpper(subject), id) {
				t.Fatalf("TicketToken(%q) = %q", subject, id)
			}
		}
		base := BaseSubject(subject, "HS")
		if strings.ContainsAny(base, "\r\n") || (utf8.ValidString(subject) && !utf8.ValidString(base)) {
			t.Fatalf("BaseSubject(%q) = %q", subject, base)
		}
		if want := baseSubjectPlain(subject, "HS"); base != want {
			t.Fatalf("BaseSubject(%q) = %q, the expressions run on every subject give %q", subject, base, want)
		}
		c := &Candidate{ID: "HS-1", Status: StatusOpen, Requester: "a@x.example", Participants: []string{"b@x.example"}, Via: "token"}
		d := ThreadPolicy{ReopenWindow: time.Hour}.DecideThread(c, sender, false, time.Now())
		member := strings.EqualFold(sender, "a@x.example") || strings.EqualFold(sender, "b@x.example")
		if (d.Action == ThreadAppend || d.Action == ThreadReopen) && !member {
			t.Fatalf("stranger %q joined the ticket: %+v", sender, d)
		}
	})
}

// TestAgentAutomaticThread: an agent's automatic mail is kept on the
// ticket it names, whatever its status, and opens no ticket when it names
// none.
func TestAgentAutomaticThread(t *testing.T) {
	for _, st := range []Status{StatusNew, StatusClosed} {
		if d := AgentAutomaticThread(&Candidate{ID: "HS-000001", Status: st, Requester: "alice@customer.example", Via: "reference"}); d.Action != ThreadAppend || d.TicketID != "HS-000001" {
			t.Errorf("%s ticket named: %+v, want it kept there", st, d)
		}
	}
	if d := AgentAutomaticThread(nil); d.Action != ThreadDrop {
		t.Errorf("no ticket named: %+v, want it dropped", d)
	}
}
