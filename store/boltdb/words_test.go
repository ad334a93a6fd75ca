package boltdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/storetest"
)

// openUnindexed opens a database whose indexer does not run: every
// message stored stays queued for it.
func openUnindexed(t testing.TB, path string) *DB {
	t.Helper()
	d, err := Open(path, Options{noIndexer: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// queueLen is how many messages wait for the indexer.
func queueLen(t testing.TB, d *DB) int {
	t.Helper()
	n := 0
	if err := d.View(bg, func(st store.Tx) error {
		n = st.(*tx).bucket(bucketIdxWordQ).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitIndexed waits until the indexer has taken every queued message.
func waitIndexed(t testing.TB, d *DB) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); queueLen(t, d) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued for the search index", queueLen(t, d))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// indexAll runs the indexer's work by hand until nothing is queued.
func indexAll(t testing.TB, d *DB) {
	t.Helper()
	for {
		n, err := d.indexQueued(bg)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// indexerRead is the indexer's read of the queue, made before its commit
// (indexEntries) as the indexer makes it.
func indexerRead(t testing.TB, d *DB) []queuedEntry {
	t.Helper()
	var qs []queuedEntry
	if err := d.View(bg, func(st store.Tx) error {
		var err error
		qs, err = st.(*tx).queued(maxIndexBatch)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return qs
}

// replaceText makes text the text of ticket id's message i, as an
// erasure does (ReplaceMessages).
func replaceText(t testing.TB, d *DB, id string, i int, text string) {
	t.Helper()
	if err := d.Update(bg, func(tx store.Tx) error {
		tk, err := tx.TicketFull(id)
		if err != nil {
			return err
		}
		tk.Messages[i].Text = text
		return tx.ReplaceMessages(id, tk.Messages)
	}); err != nil {
		t.Fatal(err)
	}
}

// changeTicket changes ticket id's record with change and stores it.
func changeTicket(t testing.TB, d *DB, id string, change func(*store.Ticket)) {
	t.Helper()
	if err := d.Update(bg, func(tx store.Tx) error {
		tk, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		change(tk)
		return tx.PutTicket(tk)
	}); err != nil {
		t.Fatal(err)
	}
}

// searchIDs is the ids of the tickets a search for text finds.
func searchIDs(t testing.TB, d *DB, text string) []string {
	t.Helper()
	var ids []string
	if err := d.View(bg, func(tx store.Tx) error {
		l, _, err := tx.Tickets(store.Filter{Text: text})
		for _, tk := range l {
			ids = append(ids, tk.ID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// TestSuiteWithWordsQueued runs the backend suite with every message's
// words still queued, so each search it makes is answered from the queue.
func TestSuiteWithWordsQueued(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) store.Store { return openUnindexed(t, filepath.Join(t.TempDir(), "t.db")) },
		func(t *testing.T, s store.Store) store.Store {
			path := s.(*DB).db.Path()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openUnindexed(t, path)
		})
}

func addTicket(t testing.TB, d *DB, id, subject string, texts ...string) {
	t.Helper()
	if err := d.Update(bg, func(tx store.Tx) error {
		if err := tx.PutTicket(&store.Ticket{ID: id, Subject: subject, Status: rules.StatusOpen, CreatedAt: time.Now()}); err != nil {
			return err
		}
		for i, text := range texts {
			if err := tx.AddMessage(id, &store.Message{MessageID: id + "." + strconv.Itoa(i) + "@x", Kind: "customer", Text: text}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSearchFindsQueuedAndIndexedWords: a message is found by its words
// while queued, after the indexer took it, and when its words are split
// between the index and the queue.
func TestSearchFindsQueuedAndIndexedWords(t *testing.T) {
	d := openUnindexed(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	addTicket(t, d, "HS-000001", "printer", "the toner cartridge smokes")
	addTicket(t, d, "HS-000002", "invoice", "please send the march invoice")
	check := func(when string) {
		t.Helper()
		for text, want := range map[string][]string{
			"toner":             {"HS-000001"},
			"smokes printer":    {"HS-000001"}, // message and subject
			"invoice":           {"HS-000002"},
			"the":               {"HS-000001", "HS-000002"},
			"toner invoice":     nil,
			"cartridge cabbage": nil,
		} {
			if got := searchIDs(t, d, text); !slices.Equal(got, want) {
				t.Errorf("%s: search %q found %v, want %v", when, text, got, want)
			}
		}
	}
	if n := queueLen(t, d); n != 4 {
		t.Fatalf("%d entries queued, want 4 (two tickets, two messages)", n)
	}
	check("queued")
	indexAll(t, d)
	if n := queueLen(t, d); n != 0 {
		t.Fatalf("%d entries queued after indexing", n)
	}
	check("indexed")
	// A second message: "cabbage" only in the queue, "cartridge" only in
	// the index.
	if err := d.Update(bg, func(tx store.Tx) error {
		return tx.AddMessage("HS-000001", &store.Message{MessageID: "late@x", Kind: "customer", Text: "also a cabbage"})
	}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, d, "cartridge cabbage"); !slices.Equal(got, []string{"HS-000001"}) {
		t.Errorf("split between index and queue: found %v", got)
	}
	indexAll(t, d)
	if got := searchIDs(t, d, "cartridge cabbage"); !slices.Equal(got, []string{"HS-000001"}) {
		t.Errorf("indexed: found %v", got)
	}
}

// TestErasedWordsNeverReachTheIndex: a message erased while its words
// were queued is not found by the erased words, neither before nor after
// the indexer ran, even when the indexer read the message before the
// erasure.
func TestErasedWordsNeverReachTheIndex(t *testing.T) {
	d := openUnindexed(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	addTicket(t, d, "HS-000001", "card", "my card is zebra1234")
	// The indexer's read, as it happens before the erasure commits.
	qs := indexerRead(t, d)
	if len(qs) != 2 || !slices.Contains(qs[0].words, "zebra1234") {
		t.Fatalf("queued read %+v", qs)
	}
	replaceText(t, d, "HS-000001", 0, "my card is [removed]")
	if got := searchIDs(t, d, "zebra1234"); len(got) != 0 {
		t.Errorf("erased word found on %v", got)
	}
	if got := searchIDs(t, d, "removed"); !slices.Equal(got, []string{"HS-000001"}) {
		t.Errorf("new text: found %v", got)
	}
	// The indexer's commit of what it read before the erasure.
	if err := d.Update(bg, indexEntries(qs)); err != nil {
		t.Fatal(err)
	}
	indexAll(t, d)
	if got := searchIDs(t, d, "zebra1234"); len(got) != 0 {
		t.Errorf("erased word found on %v after indexing", got)
	}
}

// TestIndexerDrainsTheQueue: the running indexer takes what a commit
// queued, and, on the next Open, what a closed database left queued.
func TestIndexerDrainsTheQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	d := openUnindexed(t, path)
	for i := range 3 {
		addTicket(t, d, "HS-00000"+strconv.Itoa(i), "left", "queued before close")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openTest(t, path)
	defer d.Close()
	waitIndexed(t, d)
	addTicket(t, d, "HS-000009", "new", "taken by the running indexer")
	waitIndexed(t, d)
	if got := searchIDs(t, d, "queued"); len(got) != 3 {
		t.Errorf("search after indexing found %v", got)
	}
	if got := searchIDs(t, d, "running indexer"); !slices.Equal(got, []string{"HS-000009"}) {
		t.Errorf("search after indexing found %v", got)
	}
}

// TestQueuedWordsSurviveAKill: a process killed right after committing
// messages leaves their words queued, and the next Open indexes them.
func TestQueuedWordsSurviveAKill(t *testing.T) {
	if os.Getenv("TICKETGATE_WORDS_CHILD") != "" {
		d := openUnindexed(t, os.Getenv("TICKETGATE_WORDS_CHILD"))
		addTicket(t, d, "HS-000001", "kill", "the quokka survives")
		os.Stdout.WriteString("committed\n")
		select {} // killed here, the database never closed
	}
	// The parent's temporary directory, not the child's: a killed child
	// cleans nothing up.
	path := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestQueuedWordsSurviveAKill$")
	cmd.Env = append(os.Environ(), "TICKETGATE_WORDS_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	ctx, cancel := context.WithTimeout(bg, 60*time.Second)
	defer cancel()
	go func() { <-ctx.Done(); cmd.Process.Kill() }()
	n, _ := out.Read(buf)
	if string(buf[:n]) != "committed\n" {
		t.Fatalf("child said %q", buf[:n])
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	d := openUnindexed(t, path)
	if n := queueLen(t, d); n != 2 {
		t.Fatalf("%d entries queued after the kill, want 2 (the ticket and its message)", n)
	}
	if got := searchIDs(t, d, "quokka"); !slices.Equal(got, []string{"HS-000001"}) {
		t.Errorf("queued message after the kill: found %v", got)
	}
	d.Close()
	d = openTest(t, path)
	defer d.Close()
	waitIndexed(t, d)
	if got := searchIDs(t, d, "quokka"); !slices.Equal(got, []string{"HS-000001"}) {
		t.Errorf("indexed after the kill: found %v", got)
	}
}

// TestChangedSubjectIsSearchedAtOnce: a new ticket's subject words are
// queued; a new subject is indexed at once, and the old subject's words
// are found neither before nor after the indexer ran, even when the
// indexer read the old subject before the change.
func TestChangedSubjectIsSearchedAtOnce(t *testing.T) {
	d := openUnindexed(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	addTicket(t, d, "HS-000001", "wombat trouble")
	if got := searchIDs(t, d, "wombat"); !slices.Equal(got, []string{"HS-000001"}) {
		t.Fatalf("queued subject: found %v", got)
	}
	qs := indexerRead(t, d)
	if len(qs) != 1 || qs[0].bit != wordInTicket || !slices.Contains(qs[0].words, "wombat") {
		t.Fatalf("queued read %+v", qs)
	}
	changeTicket(t, d, "HS-000001", func(tk *store.Ticket) { tk.Subject = "koala trouble" })
	for _, when := range []string{"changed", "indexed"} {
		if got := searchIDs(t, d, "wombat"); len(got) != 0 {
			t.Errorf("%s: the old subject is found on %v", when, got)
		}
		if got := searchIDs(t, d, "koala trouble"); !slices.Equal(got, []string{"HS-000001"}) {
			t.Errorf("%s: the new subject: found %v", when, got)
		}
		// The indexer's commit of what it read before the change.
		if err := d.Update(bg, indexEntries(qs)); err != nil {
			t.Fatal(err)
		}
		indexAll(t, d)
	}
}

// TestChangedCreationTimeKeepsWords: the words of a ticket whose creation
// time changes (where each word lists it) are found after the change,
// those the indexer read before it as well, and a word erased after it is
// found no more.
func TestChangedCreationTimeKeepsWords(t *testing.T) {
	d := openUnindexed(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	addTicket(t, d, "HS-000001", "wombat trouble", "the printer jams")
	indexAll(t, d)
	if err := d.Update(bg, func(tx store.Tx) error {
		return tx.AddMessage("HS-000001", &store.Message{MessageID: "late@x", Kind: "customer", Text: "secret tapir"})
	}); err != nil {
		t.Fatal(err)
	}
	qs := indexerRead(t, d)
	if len(qs) != 1 {
		t.Fatalf("queued %+v", qs)
	}
	changeTicket(t, d, "HS-000001", func(tk *store.Ticket) { tk.CreatedAt = tk.CreatedAt.Add(-48 * time.Hour) })
	// The indexer's commit of what it read before the change.
	if err := d.Update(bg, indexEntries(qs)); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"changed", "indexed"} {
		for _, w := range []string{"wombat", "printer", "tapir"} {
			if got := searchIDs(t, d, w); !slices.Equal(got, []string{"HS-000001"}) {
				t.Errorf("%s: %q found on %v", when, w, got)
			}
		}
		indexAll(t, d)
	}
	replaceText(t, d, "HS-000001", 1, "[erased]")
	if got := searchIDs(t, d, "tapir"); len(got) != 0 {
		t.Errorf("an erased word is found on %v", got)
	}
	if got := searchIDs(t, d, "printer"); !slices.Equal(got, []string{"HS-000001"}) {
		t.Errorf("after the erasure, printer found on %v", got)
	}
}

// TestErasingWordsOfAnyCreationTime: whatever a ticket's creation time
// (before 1970, none, the last nanosecond of a millisecond), its words
// are found once indexed, and an erased word or one its new subject lacks
// is found no more.
func TestErasingWordsOfAnyCreationTime(t *testing.T) {
	d := openUnindexed(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	times := []time.Time{{}, time.Date(1960, 5, 1, 0, 0, 0, 999_999_999, time.UTC), time.Now(), time.Date(2999, 1, 1, 0, 0, 0, 1_999_999, time.FixedZone("x", 3600))}
	for i, at := range times {
		id := fmt.Sprintf("HS-%06d", i+1)
		if err := d.Update(bg, func(tx store.Tx) error {
			if err := tx.PutTicket(&store.Ticket{ID: id, Subject: "wombat", Status: rules.StatusOpen, CreatedAt: at}); err != nil {
				return err
			}
			return tx.AddMessage(id, &store.Message{MessageID: id + "@x", Kind: "customer", Text: "tapir"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	indexAll(t, d)
	for _, w := range []string{"wombat", "tapir"} {
		if got := searchIDs(t, d, w); len(got) != len(times) {
			t.Errorf("%q found on %v", w, got)
		}
	}
	for i := range times {
		id := fmt.Sprintf("HS-%06d", i+1)
		replaceText(t, d, id, 0, "[erased]")
		changeTicket(t, d, id, func(tk *store.Ticket) { tk.Subject = "koala" })
		for _, w := range []string{"tapir", "wombat"} {
			if got := searchIDs(t, d, w); len(got) != len(times)-i-1 || slices.Contains(got, id) {
				t.Errorf("after changing %s, %s found on %v", id, w, got)
			}
		}
	}
}

// TestSearchFindsTicketsWhateverTheirIDOrder: a search finds every ticket
// with the words, whether their ids run with the order they were opened
// in, against it, or at random.
func TestSearchFindsTicketsWhateverTheirIDOrder(t *testing.T) {
	d := openUnindexed(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []string
	for i, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 900, 800, 700, 600, 500, 400, 300, 200, 100, 555, 111, 999, 333, 777} {
		id := fmt.Sprintf("HS-%06d", n)
		want = append(want, id)
		if err := d.Update(bg, func(tx store.Tx) error {
			if err := tx.PutTicket(&store.Ticket{ID: id, Subject: "wombat", Status: rules.StatusOpen, CreatedAt: base.Add(time.Duration(i) * time.Minute)}); err != nil {
				return err
			}
			return tx.AddMessage(id, &store.Message{MessageID: id + "@x", Kind: "customer", Text: "tapir " + strconv.Itoa(n%2)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	indexAll(t, d)
	// Entries naming tickets that are not there (none should be left;
	// a search passes over them), among the others.
	if err := d.Update(bg, func(st store.Tx) error {
		words := st.(*tx).bucket(bucketIdxWord)
		// HS-000005 was opened at 4 minutes: each ghost comes right after
		// it, the first between it and HS-000006 by id too.
		for _, ghost := range []string{"HS-000005x", "HS-000099", "HS-000650"} {
			at := postingAt(base.Add(4*time.Minute+time.Millisecond).UnixMilli(), []byte(ghost))
			for _, w := range []string{"wombat", "tapir", "1"} {
				if err := words.Put(key([]byte(w), at), []byte{wordInMessage}); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if got := searchIDs(t, d, "wombat tapir"); !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	var odd []string
	for _, id := range want {
		if n, _ := strconv.Atoi(id[3:]); n%2 == 1 {
			odd = append(odd, id)
		}
	}
	if got := searchIDs(t, d, "wombat 1"); !slices.Equal(got, odd) {
		t.Errorf("found %v, want %v", got, odd)
	}
}

// TestDamagedMessageLeavesSearchWorking: a queued message whose record
// no longer decodes (a damaged database, or one restored with -force)
// is reported by check; it must not stop every search, nor the indexer,
// which would otherwise fail on it at every wake and index nothing more.
func TestDamagedMessageLeavesSearchWorking(t *testing.T) {
	d := openUnindexed(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	addTicket(t, d, "HS-000001", "printer", "the toner cartridge smokes")
	addTicket(t, d, "HS-000002", "invoice", "please send the march invoice")
	if err := d.UpdateNow(bg, func(st store.Tx) error {
		k, _ := st.(*tx).bucket(bucketMessages).Cursor().First() // HS-000001's message
		return st.(*tx).bucket(bucketMessages).Put(clone(k), []byte{messageRecV1, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	if problems, err := d.Check(bg); err != nil || len(problems) != 1 {
		t.Errorf("check: %q %v, want the damaged message", problems, err)
	}
	var ids []string
	err := d.View(bg, func(st store.Tx) error {
		l, _, err := st.Tickets(store.Filter{Text: "invoice"})
		for _, tk := range l {
			ids = append(ids, tk.ID)
		}
		return err
	})
	if err != nil || !slices.Equal(ids, []string{"HS-000002"}) {
		t.Errorf("search beside a damaged message: %v %v", ids, err)
	}
	if _, err := d.indexQueued(bg); err != nil {
		t.Errorf("indexer beside a damaged message: %v", err)
	}
	if got := searchIDs(t, d, "march"); !slices.Equal(got, []string{"HS-000002"}) {
		t.Errorf("search after indexing: %v", got)
	}
}

// TestDamagedTicketLeavesListingsWorking: a ticket whose record no
// longer decodes is left out of the page of a listing or search it is
// on, which says so (ErrBadRecord) and still holds every other ticket
// and the next page's cursor: the sweep, which lists tickets by status,
// goes on without it.
func TestDamagedTicketLeavesListingsWorking(t *testing.T) {
	d := openUnindexed(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	addTicket(t, d, "HS-000001", "printer", "the toner cartridge smokes")
	addTicket(t, d, "HS-000002", "invoice", "please send the march invoice")
	addTicket(t, d, "HS-000003", "invoice again", "the april invoice too")
	if err := d.UpdateNow(bg, func(st store.Tx) error {
		k, _ := st.(*tx).ticketRecord("HS-000002")
		return st.(*tx).bucket(bucketTickets).Put(clone(k), []byte{ticketRecV1, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []store.Filter{{}, {Status: rules.StatusOpen, Limit: 1}, {Text: "invoice"}, {Sort: store.SortUpdated, Limit: 1}} {
		var ids []string
		bad := 0
		err := d.View(bg, func(st store.Tx) error {
			for {
				l, next, err := st.Tickets(f)
				if errors.Is(err, store.ErrBadRecord) {
					bad++
				} else if err != nil {
					return err
				}
				for _, tk := range l {
					ids = append(ids, tk.ID)
				}
				if f.After = next; next == "" {
					return nil
				}
			}
		})
		slices.Sort(ids)
		want := []string{"HS-000001", "HS-000003"}
		if f.Text != "" {
			want = want[1:]
		}
		if err != nil || !slices.Equal(ids, want) || bad != 1 {
			t.Errorf("%+v beside a damaged ticket: %v %v (told of it %d times), want %v, told once", f, ids, err, bad, want)
		}
	}
	err := d.View(bg, func(st store.Tx) error {
		_, err := st.Ticket("HS-000002")
		return err
	})
	if !errors.Is(err, store.ErrBadRecord) {
		t.Errorf("reading the damaged ticket: %v, want ErrBadRecord", err)
	}
}
