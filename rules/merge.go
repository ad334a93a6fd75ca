package rules

import (
	"fmt"
	"slices"
	"strings"
)

// JoinView is what a merge or link decision needs to know of a ticket.
type JoinView struct {
	ID         string
	Requester  string
	CC         []string
	Watchers   []string // the managers watching it
	MergedInto string   // the ticket it was merged into, "" when none
	Linked     []string
}

// Join is the decision on a #merge or #link of Source into (or with)
// Target: the links each ticket has after it, and for a merge the
// target's participants and that the source is closed.
type Join struct {
	Merge       bool
	Changed     bool // false: the tickets already are linked (link only)
	SourceLinks []string
	TargetLinks []string
	// TargetCC is the target's participants after a merge: its own, the
	// source's requester and the source's participants.
	TargetCC []string
	// TargetWatchers is the target's watchers after a merge: its own and
	// the source's, so that whoever watched the source (the managers of
	// an escalated ticket) hears of the conversation where it goes on.
	TargetWatchers []string
	// SourceDetail and TargetDetail are the events' words on each ticket.
	SourceDetail, TargetDetail string
}

// DecideJoin decides a #merge (cmd.Name "merge") or #link of src with dst.
// A ticket is never merged or linked with itself; a merged ticket takes no
// more merges, and one merged into another is named by where it went;
// a merge that would take the target past maxParticipants (0: no limit) is
// refused.
func DecideJoin(cmd Command, src, dst JoinView, maxParticipants int) (Join, error) {
	merge := cmd.Name == "merge"
	switch {
	case strings.EqualFold(src.ID, dst.ID):
		return Join{}, fmt.Errorf("a ticket cannot be %s itself", map[bool]string{true: "merged into", false: "linked to"}[merge])
	case merge && src.MergedInto != "":
		return Join{}, fmt.Errorf("%s was merged into %s already", src.ID, src.MergedInto)
	case dst.MergedInto != "":
		return Join{}, fmt.Errorf("%s was merged into %s; name %s instead", dst.ID, dst.MergedInto, dst.MergedInto)
	}
	j := Join{Merge: merge, SourceLinks: addOnce(src.Linked, dst.ID), TargetLinks: addOnce(dst.Linked, src.ID)}
	j.Changed = merge || len(j.SourceLinks) != len(src.Linked) || len(j.TargetLinks) != len(dst.Linked)
	if !merge {
		j.SourceDetail, j.TargetDetail = "linked to "+dst.ID, "linked to "+src.ID
		return j, nil
	}
	cc := slices.Clone(dst.CC)
	for _, a := range append([]string{src.Requester}, src.CC...) {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" || strings.EqualFold(a, dst.Requester) || slices.Contains(cc, a) {
			continue
		}
		cc = append(cc, a)
	}
	if maxParticipants > 0 && len(cc) > maxParticipants && len(cc) > len(dst.CC) {
		return Join{}, fmt.Errorf("%s would have %d participants after the merge, over the limit of %d", dst.ID, len(cc), maxParticipants)
	}
	j.TargetCC = cc
	j.TargetWatchers = slices.Clone(dst.Watchers)
	for _, w := range src.Watchers {
		if !slices.ContainsFunc(j.TargetWatchers, func(x string) bool { return strings.EqualFold(x, w) }) {
			j.TargetWatchers = append(j.TargetWatchers, w)
		}
	}
	j.SourceDetail = fmt.Sprintf("merged into %s; later mail about %s goes there", dst.ID, src.ID)
	j.TargetDetail = fmt.Sprintf("%s merged into this ticket: its messages, participants and events are here", src.ID)
	return j, nil
}

// MayActOnMerged returns nil when cmd may apply to ticket id, merged into
// mergedInto ("" when it was not merged), or why not. A merged ticket
// stays closed: its mail goes to the target, so a reopened or reassigned
// source would be a ticket nobody's mail reaches. Notes and links leave it
// as it is and are taken; anything else names the target to act on.
func MayActOnMerged(cmd Command, id, mergedInto string) error {
	if mergedInto == "" || cmd.Name == "note" || cmd.Name == "link" {
		return nil
	}
	return fmt.Errorf("%s was merged into %s and stays closed; act on %s instead", id, mergedInto, mergedInto)
}

// addOnce returns list with id added unless it is there (any case).
func addOnce(list []string, id string) []string {
	if slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, id) }) {
		return slices.Clone(list)
	}
	return append(slices.Clone(list), id)
}
