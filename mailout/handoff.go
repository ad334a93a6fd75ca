package mailout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"ticketgate/store"
)

// handoffLog notes the mail the relay was handed while its outcome is not
// committed yet. A note is one write(2) to a file opened for appending,
// made right after the final dot is written and before the relay's answer
// is read: no fsync and no transaction stand between the relay taking a
// mail and the note, and the page cache keeps the note when the process
// is killed (a machine that loses power may lose it; the mail is then
// sent again, never lost). The worker applies the notes of a run that
// died when it starts, and empties the log whenever every outcome noted
// is committed; while deliveries keep it from ever being so, the log is
// rewritten with the notes still needed once it outgrows handoffCompactAt.
type handoffLog struct {
	mu    sync.Mutex
	lock  *os.File // held while the log is open (lockHandoff)
	f     *os.File
	path  string
	dirty bool // notes written since the last reset
	size  int64
	// live holds the notes whose outcome is not committed yet.
	live map[uint64]handoffNote
}

// handoffCompactAt is the size beyond which the log is rewritten with only
// the notes still needed.
const handoffCompactAt = 1 << 20

// handoffNote says the relay was handed the end of entry ID's mail for
// To, at the attempt after Attempts failed ones. An outcome committed
// since then dequeued the entry, marked To done, or counted one more
// attempt, which is how a note is told to be stale.
type handoffNote struct {
	ID       uint64   `json:"id"`
	Attempts int      `json:"attempts"`
	To       []string `json:"to"`
}

// openHandoffLog opens (creating) the log at path and returns the notes it
// holds. A last line cut short is not a note: it was never a whole write.
func openHandoffLog(path string) (*handoffLog, []handoffNote, error) {
	// With PostgreSQL nothing else may have made the directory yet.
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, fmt.Errorf("hand-off log directory: %w", err)
	}
	lock, err := lockHandoff(path)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		lock.Close()
		return nil, nil, fmt.Errorf("read hand-off log: %w", err)
	}
	var notes []handoffNote
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var n handoffNote
		if json.Unmarshal(sc.Bytes(), &n) == nil && n.ID != 0 {
			notes = append(notes, n)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("open hand-off log: %w", err)
	}
	return &handoffLog{lock: lock, f: f, path: path, dirty: len(data) > 0, size: int64(len(data)), live: map[uint64]handoffNote{}}, notes, nil
}

// note appends n in one write.
func (l *handoffLog) note(n handoffNote) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dirty = true
	l.live[n.ID] = n
	k, err := l.f.Write(append(b, '\n'))
	l.size += int64(k)
	return err
}

// settle forgets the note of entry id, whose outcome is committed, and
// empties the log when no note is needed any more (or compacts it).
func (l *handoffLog) settle(id uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.live, id)
	if len(l.live) == 0 {
		return l.truncate()
	}
	if l.size < handoffCompactAt {
		return nil
	}
	return l.compact()
}

// compact replaces the log with one holding only the live notes: written
// aside, then renamed over it, so that a kill at any moment leaves one
// log with every live note.
func (l *handoffLog) compact() error {
	var buf bytes.Buffer
	for _, n := range l.live {
		b, err := json.Marshal(n)
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("compact hand-off log: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("compact hand-off log: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		f.Close()
		return fmt.Errorf("compact hand-off log: %w", err)
	}
	l.f.Close()
	l.f, l.size = f, int64(buf.Len())
	return nil
}

// reset empties the log: every note in it has its outcome committed.
func (l *handoffLog) reset() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.live)
	return l.truncate()
}

func (l *handoffLog) truncate() error {
	if !l.dirty {
		return nil
	}
	l.dirty = false
	l.size = 0
	return l.f.Truncate(0)
}

func (l *handoffLog) close() error {
	err := l.f.Close()
	l.lock.Close()
	return err
}

// HandOff is a note of a hand-off log: the relay was handed outbox entry
// ID's mail for To at the attempt after Attempts failed ones.
type HandOff = handoffNote

// HandedOff returns the notes the hand-off log at path holds: the mail a
// run killed before committing its outcome handed to the relay, which its
// worker's next start takes as delivered (none when there is no log).
// It takes the log's lock while reading, so a log a running gateway keeps
// is an error. A copy of the outbox elsewhere (migrate) applies them with
// TakeHandedOff instead of that start.
func HandedOff(path string) ([]HandOff, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	l, notes, err := openHandoffLog(path)
	if err != nil {
		return nil, err
	}
	return notes, l.close()
}

// TakeHandedOff marks done in m the recipients notes say the relay was
// handed m's mail for, as the worker's start would, unless m counted
// another attempt since (its outcome was committed). It reports whether
// it marked any.
func TakeHandedOff(m *store.OutMail, notes []HandOff) bool {
	taken := false
	for _, n := range notes {
		if n.ID == m.ID && n.Attempts == m.Attempts {
			m.Done = done(m.Done, n.To, nil, nil)
			taken = true
		}
	}
	return taken
}
