package rules

import "testing"

func TestRequestTypeTags(t *testing.T) {
	types := DefaultRequestTypes()
	cases := []struct {
		subject, clean, typ, category string
		prio                          Priority
		urgent                        bool
	}{
		{"[Enhancement] Dark mode", "Dark mode", "feature request", CategoryFeatureRequest, PriorityLow, false},
		{"Re: [feature-request] Dark mode", "Re: Dark mode", "feature request", CategoryFeatureRequest, PriorityLow, false},
		{"[KB Request] How to reset", "How to reset", "knowledge base request", CategoryKBRequest, PriorityLow, false},
		{"[Knowledge Base Article Request] Printers", "Printers", "knowledge base request", CategoryKBRequest, PriorityLow, false},
		{"[Urgent][Bug] Crash", "Crash", "bug report", CategoryBug, "", true},
		{"[General] Opening hours", "Opening hours", "general question", CategoryGeneral, "", false},
		{"[HS-123456] [Misc] stays", "[HS-123456] [Misc] stays", "", "", "", false},
	}
	for _, c := range cases {
		got := Tags(types, c.subject)
		if got.Clean != c.clean || got.Type.Name != c.typ || got.Type.Category != c.category || got.Type.Priority != c.prio || got.Urgent != c.urgent {
			t.Errorf("Tags(%q) = %q %q %q %q urgent %v", c.subject, got.Clean, got.Type.Name, got.Type.Category, got.Type.Priority, got.Urgent)
		}
	}
	custom := []RequestType{{Name: "outage", Tags: []string{"Down"}, Category: "outage", Priority: PriorityHigh}}
	if got := Tags(custom, "[down] site"); got.Type.Name != "outage" || got.Clean != "site" {
		t.Errorf("configured type not read: %+v", got)
	}
}
