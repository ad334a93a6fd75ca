package rules

import (
	"strings"
	"testing"
)

func TestPlanFor(t *testing.T) {
	plans := []Plan{
		{Name: "enterprise", Match: []string{"@BigCorp.com", "vip@example.org"}, MaxPriority: PriorityCritical},
		{Name: "basic", Match: []string{"", "@example.org"}, MaxPriority: PriorityMedium},
		{Name: "unset", Match: []string{"@gap.example"}},
	}
	tests := []struct {
		addr string
		name string
		max  Priority
	}{
		{"jo@bigcorp.com", "enterprise", PriorityCritical},
		{"JO@BIGCORP.COM", "enterprise", PriorityCritical},
		{"<jo@bigcorp.com>", "enterprise", PriorityCritical},
		{"Vip@Example.org", "enterprise", PriorityCritical},
		{"other@example.org", "basic", PriorityMedium},
		{"jo@eu.bigcorp.com", "standard", PriorityHigh}, // exact domain only
		{"jo@notbigcorp.com", "standard", PriorityHigh},
		{"bigcorp.com", "standard", PriorityHigh},
		{"", "standard", PriorityHigh},
		{"x@gap.example", "unset", PriorityHigh},
	}
	for _, tt := range tests {
		got := PlanFor(plans, tt.addr)
		if got.Name != tt.name || got.MaxPriority != tt.max {
			t.Errorf("PlanFor(%q) = %s/%s, want %s/%s", tt.addr, got.Name, got.MaxPriority, tt.name, tt.max)
		}
	}
	if got := PlanFor(nil, "a@b.c"); got.Name != "standard" || got.MaxPriority != PriorityHigh {
		t.Errorf("PlanFor without plans = %+v, want standard/high", got)
	}
}

func TestSubjectTags(t *testing.T) {
	tests := []struct {
		subject  string
		clean    string
		urgent   bool
		category string
	}{
		{"[Urgent] Login broken", "Login broken", true, ""},
		{"Re: [URGENT] Login broken", "Re: Login broken", true, ""},
		{"Fwd:[critical]  Server down  ", "Fwd: Server down", true, ""},
		{"Checkout fails [Bug]", "Checkout fails", false, "bug"},
		{"[feature request] Dark mode", "Dark mode", false, "feature_request"},
		{"[ Feature-Request ] Dark mode", "Dark mode", false, "feature_request"},
		{"[Billing][Urgent] Charged twice", "Charged twice", true, "billing"},
		{"[Bug] [Billing] both", "both", false, "bug"},
		{"Re: Login broken [HS-123456]", "Re: Login broken [HS-123456]", false, ""},
		{"[Urgent] Login broken [HS-123456]", "Login broken [HS-123456]", true, ""},
		{"[External]  keep   my spacing", "[External]  keep   my spacing", false, ""},
		{"Not urgent at all", "Not urgent at all", false, ""},
		{"[urgent", "[urgent", false, ""},
		{"", "", false, ""},
	}
	for _, tt := range tests {
		clean, urgent, category := SubjectTags(tt.subject)
		if clean != tt.clean || urgent != tt.urgent || category != tt.category {
			t.Errorf("SubjectTags(%q) = %q, %v, %q; want %q, %v, %q",
				tt.subject, clean, urgent, category, tt.clean, tt.urgent, tt.category)
		}
	}
}

func TestAsksEscalation(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"Please escalate this.", true},
		{"Escalate this now!", true},
		{"I want to escalate.", true},
		{"This has taken a week, I am escalating.", true},
		{"Hallo, bitte eskalieren Sie das Ticket.", true},
		{"Ich bitte um Eskalation.", true},
		{"I'd like to request an escalation to your manager", true},
		{"Can you please get this escalated?", true},
		{"It's not critical, but please escalate.", true},
		{"This is not urgent, no need to escalate.", false},
		{"This is not urgent, no need to escalate", false},
		{"Please don't escalate, it's fine.", false},
		{"Please don’t escalate", false},
		{"I do not want you to escalate it", false},
		{"Bitte nicht eskalieren.", false},
		{"Kein Grund zu eskalieren.", false},
		{"It was escalated last week and fixed.", false},
		{"Your escalation policy is in the contract.", false},
		{"Thanks, all working now.", false},
		{"", false},
		{"PLEASE ESCALATE THIS", true},
		{"Café closed. Please ESKALIEREN.", true},
		{"Bitte \u212Aein Grund. Please es\u212Aalate", false}, // a Kelvin sign: "k" only in lower case
		{"Bitte sofort es\u212Aalieren!", true},
	}
	for _, tt := range tests {
		if got := AsksEscalation(tt.text); got != tt.want {
			t.Errorf("AsksEscalation(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

// FuzzMentionsEscal: the quick look for "escal" and "eskal" finds them
// where the text in lower case has them, and only there.
func FuzzMentionsEscal(f *testing.F) {
	for _, s := range []string{"Please ESCALATE", "es\u212Aalieren", "escaL", "e\x00scal", "ESKA", "\xffeskal"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		low := strings.ToLower(s)
		if got, want := mentionsEscal(s), strings.Contains(low, "escal") || strings.Contains(low, "eskal"); got != want {
			t.Errorf("mentionsEscal(%q) = %v, want %v", s, got, want)
		}
	})
}
