package mailout

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Under steady delivery some hand-off is always awaiting its commit, so
// the log is never empty; past handoffCompactAt it is rewritten with the
// notes still needed: a killed run then finds every one of those (and
// perhaps some whose outcome is committed, which it passes over), and the
// log stays small.
func TestHandoffLogKeepsOnlyLiveNotesWhenNeverIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db.handoff")
	l, _, err := openHandoffLog(path)
	if err != nil {
		t.Fatal(err)
	}
	to := []string{strings.Repeat("r", 200) + "@x.example"}
	// Entry 1 stays handed over; entries 2.. come and go behind it.
	if err := l.note(handoffNote{ID: 1, To: to}); err != nil {
		t.Fatal(err)
	}
	for id := uint64(2); id < 20000; id++ {
		if err := l.note(handoffNote{ID: id, To: to}); err != nil {
			t.Fatal(err)
		}
		if err := l.settle(id - 1 + boolU(id == 2)); err != nil { // 1 is never settled
			t.Fatal(err)
		}
	}
	if err := l.note(handoffNote{ID: 20000, To: to}); err != nil {
		t.Fatal(err)
	}
	l.close() // killed here: 1, 19999 and 20000 are awaiting their commits
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 2*handoffCompactAt {
		t.Errorf("hand-off log grew to %d bytes", fi.Size())
	}
	_, notes, err := openHandoffLog(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, n := range notes {
		ids = append(ids, n.ID)
	}
	for _, live := range []uint64{1, 19999, 20000} {
		if !slices.Contains(ids, live) {
			t.Errorf("note of entry %d, awaiting its commit, lost", live)
		}
	}
	if len(ids) > 10000 {
		t.Errorf("%d notes found after the kill; the log was never compacted", len(ids))
	}
}

func boolU(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// One process at a time keeps notes in a hand-off log: a second gateway
// given the same store.path is told so, and leaves the first one's notes
// alone; once the first closes it, the notes are all there.
func TestHandoffLogIsHeldByOneProcess(t *testing.T) {
	// In a directory not made yet, as a gateway on PostgreSQL may find it.
	path := filepath.Join(t.TempDir(), "data", "t.db.handoff")
	l, _, err := openHandoffLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.note(handoffNote{ID: 7, To: []string{"a@x.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := openHandoffLog(path); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open of a log in use: %v; want it refused as in use", err)
	}
	l.close()
	l2, notes, err := openHandoffLog(path)
	if err != nil {
		t.Fatalf("open after the first closed it: %v", err)
	}
	defer l2.close()
	if len(notes) != 1 || notes[0].ID != 7 {
		t.Errorf("notes after the refused open: %+v; want entry 7's", notes)
	}
}
