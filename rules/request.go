package rules

import (
	"regexp"
	"strings"
	"unicode"
)

// RequestType is a kind of request a customer names with a subject tag
// ([[request_type]] in the configuration): the tags that name it, and the
// category and priority a new ticket of that type gets. Urgent types raise
// the priority as far as the customer's plan allows and alert the team.
type RequestType struct {
	Name     string   `toml:"name"`     // e.g. "feature request"; the auto-reply names it
	Tags     []string `toml:"tags"`     // e.g. ["Feature Request", "Enhancement"]; any case and spacing
	Category string   `toml:"category"` // "" keeps the route's category
	Priority Priority `toml:"priority"` // "" keeps the default (medium)
	Urgent   bool     `toml:"urgent"`
}

// Subject categories of the shipped request types.
const (
	CategoryBug            = "bug"
	CategoryFeatureRequest = "feature_request"
	CategoryBilling        = "billing"
	CategoryKBRequest      = "kb_request"
	CategoryGeneral        = "general"
)

// DefaultRequestTypes are the request types shipped: urgent, general,
// feature request / enhancement, knowledge base request, bug, billing.
func DefaultRequestTypes() []RequestType {
	return []RequestType{
		{Name: "urgent request", Tags: []string{"Urgent", "Critical"}, Urgent: true},
		{Name: "general question", Tags: []string{"General", "Question"}, Category: CategoryGeneral},
		{Name: "feature request", Tags: []string{"Feature Request", "Enhancement"}, Category: CategoryFeatureRequest, Priority: PriorityLow},
		{Name: "knowledge base request", Tags: []string{"KB Request", "Knowledge Base Request", "Knowledge Base Article Request"}, Category: CategoryKBRequest, Priority: PriorityLow},
		{Name: "bug report", Tags: []string{"Bug"}, Category: CategoryBug},
		{Name: "billing question", Tags: []string{"Billing"}, Category: CategoryBilling},
	}
}

// Tagged is what the request-type tags of a subject say.
type Tagged struct {
	Clean  string // the subject without the tags
	Urgent bool   // an urgent type was named
	// Type is the first non-urgent type named (zero Name: none).
	Type RequestType
}

// bracketTag finds innermost [tags] in a subject.
var bracketTag = regexp.MustCompile(`\[([^\[\]]*)\]`)

// Tags removes the request-type tags a customer puts in a subject and says
// which types they name. Tags are read in any case and with any spacing or
// dashes ("[ feature-request ]"), anywhere in the subject, also after
// Re:/Fwd:; the first non-urgent type wins. Runs of white space are tidied
// after removal. Unknown [tags] (and ticket references like [HS-123456])
// stay.
func Tags(types []RequestType, subject string) Tagged {
	out := Tagged{}
	removed := false
	out.Clean = bracketTag.ReplaceAllStringFunc(subject, func(tag string) string {
		rt, ok := TypeOfTag(types, tag[1:len(tag)-1])
		if !ok {
			return tag
		}
		if rt.Urgent {
			out.Urgent = true
		} else if out.Type.Name == "" {
			out.Type = rt
		}
		removed = true
		return " "
	})
	if removed {
		out.Clean = strings.Join(strings.Fields(out.Clean), " ")
	}
	return out
}

// TypeOfTag is the request type a subject tag names: the first of types
// with the tag, in any case and with any spacing or dashes.
func TypeOfTag(types []RequestType, tag string) (RequestType, bool) {
	want := tagWords(tag)
	for _, rt := range types {
		for _, t := range rt.Tags {
			if tagWords(t) == want {
				return rt, true
			}
		}
	}
	return RequestType{}, false
}

// tagWords is a tag in lower case, its words joined by one space.
func tagWords(tag string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(tag), func(r rune) bool {
		return unicode.IsSpace(r) || r == '-' || r == '_'
	}), " ")
}

// SubjectTags is Tags with the shipped request types, in the older form:
// the clean subject, whether an urgent tag was there, and the category.
func SubjectTags(subject string) (clean string, urgent bool, category string) {
	t := Tags(DefaultRequestTypes(), subject)
	return t.Clean, t.Urgent, t.Type.Category
}
