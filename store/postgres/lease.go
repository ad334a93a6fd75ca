package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"ticketgate/store"
)

// TakeLease inserts the lease, or takes over the row when it is owner's
// or has expired: one statement, so two processes racing for it conflict
// on the row and one of them finds it taken.
func (t *tx) TakeLease(name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	var got string
	err := t.row(`INSERT INTO leases (name, owner, until_ns) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = $2, until_ns = $3
		WHERE leases.owner = $2 OR leases.until_ns <= $4
		RETURNING owner`, args(name, owner, nano(now.Add(ttl)), nano(now)), &got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	return true, nil
}

func (t *tx) DropLease(name, owner string) error {
	if err := t.exec(`DELETE FROM leases WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("drop lease %s: %w", name, err)
	}
	return nil
}

func (t *tx) Lease(name string) (string, time.Time, error) {
	var (
		owner string
		until int64
	)
	err := t.row(`SELECT owner, until_ns FROM leases WHERE name = $1`, args(name), &owner, &until)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read lease %s: %w", name, err)
	}
	return owner, time.Unix(0, until).UTC(), nil
}

func (t *tx) PutPollTries(mailbox string, validity uint32, tries map[uint32]int) error {
	var err error
	if len(tries) == 0 {
		err = t.exec(`DELETE FROM poll_tries WHERE mailbox = $1`, mailbox)
	} else {
		var v []byte
		if v, err = encode(tries); err != nil {
			return err
		}
		err = t.exec(`INSERT INTO poll_tries (mailbox, validity, tries) VALUES ($1, $2, $3)
			ON CONFLICT (mailbox) DO UPDATE SET validity = $2, tries = $3`, mailbox, int64(validity), v)
	}
	if err != nil {
		return fmt.Errorf("record tries of %s: %w", mailbox, err)
	}
	return nil
}

func (t *tx) PollTries(mailbox string) (uint32, map[uint32]int, error) {
	var (
		validity int64
		v        []byte
	)
	err := t.row(`SELECT validity, tries FROM poll_tries WHERE mailbox = $1`, args(mailbox), &validity, &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read tries of %s: %w", mailbox, err)
	}
	var tries map[uint32]int
	if err := json.Unmarshal(v, &tries); err != nil {
		return 0, nil, fmt.Errorf("decode tries of %s: %w", mailbox, err)
	}
	return uint32(validity), tries, nil
}

func (t *tx) PutInstance(in store.Instance) error {
	v, err := encode(in)
	if err != nil {
		return err
	}
	if err := t.exec(`INSERT INTO instances (id, rec) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET rec = $2`, in.ID, v); err != nil {
		return fmt.Errorf("record instance %s: %w", in.ID, err)
	}
	return nil
}

func (t *tx) Instances() ([]store.Instance, error) {
	var (
		out []store.Instance
		v   []byte
	)
	err := t.rows(`SELECT rec FROM instances ORDER BY id`, nil, []any{&v}, func() error {
		var in store.Instance
		if err := json.Unmarshal(v, &in); err != nil {
			return err
		}
		out = append(out, in)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read instances: %w", err)
	}
	return out, nil
}
