package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"ticketgate/rules"
)

// TestMergeAndLinkFromTheCommandLine: link without serve, merge handed
// over to a running serve; both tickets' JSON shows the links, and a
// customer's reply to the merged ticket's token lands on the target.
func TestMergeAndLinkFromTheCommandLine(t *testing.T) {
	e := agentEnv(t, "")
	dst := e.injectOK(message("Bo <bo@bigcorp.example>", "support@example.com", "Outage", "o1@bigcorp.example", "All down."),
		"-to", "support@example.com", "-from", "bo@bigcorp.example")
	src := e.injectOK(message("Cy <cy@bigcorp.example>", "support@example.com", "Nothing works", "o2@bigcorp.example", "Since nine."),
		"-to", "support@example.com", "-from", "cy@bigcorp.example")
	other := e.injectOK(message("Di <di@bigcorp.example>", "support@example.com", "Slow", "o3@bigcorp.example", "Very slow."),
		"-to", "support@example.com", "-from", "di@bigcorp.example")

	if r := e.run(nil, "link", other, dst); r.code != 0 || !strings.Contains(r.stdout, "linked to "+dst) {
		t.Fatalf("link: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if a, b := e.show(other), e.show(dst); !slices.Contains(a.Links, dst) || !slices.Contains(b.Links, other) {
		t.Errorf("link not in both tickets' JSON: %s %v, %s %v", other, a.Links, dst, b.Links)
	}
	if r := e.run(nil, "merge", src, src); r.code != exDataErr || !strings.Contains(r.stderr, "itself") {
		t.Errorf("merge into itself: exit %d, stderr %q", r.code, r.stderr)
	}

	s := e.serve()
	r := e.run(nil, "merge", "-json", src, dst)
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	if r.code != 0 {
		t.Fatalf("merge with serve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	from, to := e.show(src), e.show(dst)
	if from.Status != rules.StatusClosed || from.MergedInto != dst || !slices.Contains(from.Links, dst) {
		t.Errorf("source after merge: status %s merged_into %q links %v", from.Status, from.MergedInto, from.Links)
	}
	if !slices.Contains(to.Links, src) || !slices.Contains(to.CC, "cy@bigcorp.example") {
		t.Errorf("target after merge: links %v cc %v", to.Links, to.CC)
	}
	if ev := lastEvent(from, "merged"); ev == nil || !strings.Contains(ev.Detail, "(merge by operator via the admin API)") {
		t.Errorf("merged event on the source: %+v", ev)
	}

	id := e.injectOK(message("Cy <cy@bigcorp.example>", "support@example.com", "Re: ["+src+"] Nothing works", "o4@bigcorp.example", "Still nothing."),
		"-to", "support@example.com", "-from", "cy@bigcorp.example")
	if id != dst {
		t.Errorf("reply to the merged ticket's token went to %s, want %s", id, dst)
	}
	to = e.show(dst)
	texts := ""
	for _, m := range to.Messages {
		texts += m.Text + "\n"
	}
	if !strings.Contains(texts, "Since nine.") || !strings.Contains(texts, "Still nothing.") {
		t.Errorf("target lacks the source's message or the reply:\n%s", texts)
	}
}

// TestMergedTicketListsItsConversationOldestFirst: a customer's earlier
// ticket merged into their later one; show -json of the target lists the
// messages and events oldest first, as the README's JSON promises, the
// earlier ticket's first mail before the later one's.
func TestMergedTicketListsItsConversationOldestFirst(t *testing.T) {
	e := agentEnv(t, "")
	src := e.injectOK(message("Cy <cy@bigcorp.example>", "support@example.com", "Printer jams", "m1@bigcorp.example", "Monday: it jams."),
		"-to", "support@example.com", "-from", "cy@bigcorp.example")
	time.Sleep(5 * time.Millisecond)
	dst := e.injectOK(message("Cy <cy@bigcorp.example>", "support@example.com", "Printer still jams", "m2@bigcorp.example", "Tuesday: still jams."),
		"-to", "support@example.com", "-from", "cy@bigcorp.example")
	if r := e.run(nil, "merge", src, dst); r.code != 0 {
		t.Fatalf("merge: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	to := e.show(dst)
	var order []string
	for i, m := range to.Messages {
		order = append(order, m.CreatedAt.Format(time.RFC3339Nano)+" "+m.Kind+" "+strings.TrimSpace(m.Text))
		if i > 0 && m.CreatedAt.Before(to.Messages[i-1].CreatedAt) {
			t.Errorf("messages not oldest first:\n%s", strings.Join(order, "\n"))
			break
		}
	}
	if len(to.Messages) == 0 || !strings.Contains(to.Messages[0].Text, "Monday") {
		t.Errorf("first message of the merged ticket is not the earliest mail:\n%s", strings.Join(order, "\n"))
	}
	for i, ev := range to.Events {
		if i > 0 && ev.At.Before(to.Events[i-1].At) {
			t.Errorf("events not oldest first: %s %s after %s %s", ev.At.Format(time.RFC3339Nano), ev.Type, to.Events[i-1].At.Format(time.RFC3339Nano), to.Events[i-1].Type)
			break
		}
	}
	if r := e.run(nil, "show", dst); r.code != 0 || strings.Index(r.stdout, "Monday") > strings.Index(r.stdout, "Tuesday") {
		t.Errorf("show prints the later mail first (exit %d):\n%s", r.code, r.stdout)
	}
}
