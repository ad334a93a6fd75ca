package mailout

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// handoffLog notes the mail the relay was handed while its outcome is not
// committed yet. A note is one write(2) to a file opened for appending,
// made right after the final dot is written and before the relay's answer
// is read: no fsync and no transaction stand between the relay taking a
// mail and the note, and the page cache keeps the note when the process
// is killed (a machine that loses power may lose it; the mail is then
// sent again, never lost). The worker applies the notes of a run that
// died when it starts, and empties the log whenever every outcome is
// committed.
type handoffLog struct {
	mu    sync.Mutex
	f     *os.File
	dirty bool // notes written since the last reset
}

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
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
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
		return nil, nil, fmt.Errorf("open hand-off log: %w", err)
	}
	return &handoffLog{f: f, dirty: len(data) > 0}, notes, nil
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
	_, err = l.f.Write(append(b, '\n'))
	return err
}

// reset empties the log: every note in it has its outcome committed.
func (l *handoffLog) reset() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.dirty {
		return nil
	}
	l.dirty = false
	return l.f.Truncate(0)
}

func (l *handoffLog) close() error { return l.f.Close() }
