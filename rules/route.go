package rules

import "strings"

// Route is one routing address ([[route]] in the configuration).
type Route struct {
	Address  string `toml:"address"`
	Queue    string `toml:"queue"`
	Kind     string `toml:"kind"`     // RouteTickets (""), RouteEscalation or RouteStatus
	Category string `toml:"category"` // category set on tickets opened here
}

// Routes is the list of routing addresses.
type Routes []Route

// Match finds the route for a recipient address. Plus-addressed variants
// (support+anything@example.com) belong to support@example.com; tag is the
// part after the "+". Comparison ignores case.
func (rs Routes) Match(addr string) (r Route, tag string, ok bool) {
	local, domain, found := strings.Cut(strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>")), "@")
	if !found {
		return Route{}, "", false
	}
	local, tag, _ = strings.Cut(local, "+")
	for _, r := range rs {
		if strings.EqualFold(r.Address, local+"@"+domain) {
			return r, tag, true
		}
	}
	return Route{}, "", false
}

// Addresses returns the routing addresses, lowercased.
func (rs Routes) Addresses() []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = strings.ToLower(r.Address)
	}
	return out
}

// IsOwn reports whether addr is one of the routing addresses or a
// plus-addressed variant of one.
func (rs Routes) IsOwn(addr string) bool {
	_, _, ok := rs.Match(addr)
	return ok
}
