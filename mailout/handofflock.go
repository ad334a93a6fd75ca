package mailout

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockHandoff takes the lock file beside the hand-off log at path, so that
// one process at a time keeps notes in it: two gateways given the same
// store.path (possible with PostgreSQL, where the database is elsewhere)
// would otherwise apply or empty each other's notes.
func lockHandoff(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open hand-off log lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("hand-off log %s is in use by another process (give each gateway its own store.path)", path)
		}
		return nil, fmt.Errorf("lock hand-off log: %w", err)
	}
	return f, nil
}
