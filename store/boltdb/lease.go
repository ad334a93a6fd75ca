package boltdb

import (
	"encoding/json"
	"fmt"
	"time"

	"ticketgate/store"
)

// leaseRec is a lease as kept in the lease bucket under its name. Like an
// outbox claim it holds only for the Open that made it (Gen): the file
// lock means no other process can be working, so a restarted process
// does not wait for its predecessor's leases.
type leaseRec struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
	Gen   string    `json:"gen"`
}

func (t *tx) lease(name string) (*leaseRec, error) {
	v := t.bucket(bucketLease).Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	var r leaseRec
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode lease %s: %w", name, err)
	}
	if r.Gen != t.gen {
		return nil, nil
	}
	return &r, nil
}

func (t *tx) TakeLease(name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	r, err := t.lease(name)
	if err != nil {
		return false, err
	}
	if r != nil && r.Owner != owner && r.Until.After(now) {
		return false, nil
	}
	v, err := encode(leaseRec{Owner: owner, Until: now.Add(ttl), Gen: t.gen})
	if err != nil {
		return false, err
	}
	return true, t.bucket(bucketLease).Put([]byte(name), v)
}

func (t *tx) DropLease(name, owner string) error {
	r, err := t.lease(name)
	if err != nil || r == nil || r.Owner != owner {
		return err
	}
	return t.bucket(bucketLease).Delete([]byte(name))
}

func (t *tx) Lease(name string) (string, time.Time, error) {
	r, err := t.lease(name)
	if err != nil || r == nil {
		return "", time.Time{}, err
	}
	return r.Owner, r.Until, nil
}

// pollTriesRec is a mailbox's failed tries in the imap.tries bucket.
type pollTriesRec struct {
	Validity uint32         `json:"validity"`
	Tries    map[uint32]int `json:"tries"`
}

func (t *tx) PutPollTries(mailbox string, validity uint32, tries map[uint32]int) error {
	b := t.bucket(bucketPollTries)
	if len(tries) == 0 {
		return b.Delete([]byte(mailbox))
	}
	v, err := encode(pollTriesRec{validity, tries})
	if err != nil {
		return err
	}
	return b.Put([]byte(mailbox), v)
}

func (t *tx) PollTries(mailbox string) (uint32, map[uint32]int, error) {
	v := t.bucket(bucketPollTries).Get([]byte(mailbox))
	if v == nil {
		return 0, nil, nil
	}
	var r pollTriesRec
	if err := json.Unmarshal(v, &r); err != nil {
		return 0, nil, fmt.Errorf("decode tries of %s: %w", mailbox, err)
	}
	return r.Validity, r.Tries, nil
}

func (t *tx) PutInstance(in store.Instance) error {
	v, err := encode(in)
	if err != nil {
		return err
	}
	return t.bucket(bucketInstances).Put([]byte(in.ID), v)
}

func (t *tx) Instances() ([]store.Instance, error) {
	var out []store.Instance
	err := t.bucket(bucketInstances).ForEach(func(k, v []byte) error {
		var in store.Instance
		if err := json.Unmarshal(v, &in); err != nil {
			return fmt.Errorf("decode instance %s: %w", k, err)
		}
		out = append(out, in)
		return nil
	})
	return out, err
}
