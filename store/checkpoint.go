package store

import (
	"encoding/json"
	"fmt"
)

// Checkpoint is how far an IMAP mailbox has been taken: the mailbox's
// UIDVALIDITY and the highest UID whose message is committed. It is written
// in the same transaction as the ticket change for that message.
type Checkpoint struct {
	Mailbox     string `json:"mailbox"`
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
}

// PutCheckpoint records c, never moving the UID backwards within the same
// UIDVALIDITY.
func (tx *Tx) PutCheckpoint(c Checkpoint) error {
	b := tx.tx.Bucket(bucketIMAP)
	if old, err := tx.Checkpoint(c.Mailbox); err == nil && old.UIDValidity == c.UIDValidity && old.UID > c.UID {
		return nil
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.Put([]byte(c.Mailbox), v)
}

// Checkpoint returns the mailbox's checkpoint; a zero Checkpoint if none.
func (tx *Tx) Checkpoint(mailbox string) (Checkpoint, error) {
	v := tx.tx.Bucket(bucketIMAP).Get([]byte(mailbox))
	if v == nil {
		return Checkpoint{Mailbox: mailbox}, nil
	}
	var c Checkpoint
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("decode checkpoint %s: %w", mailbox, err)
	}
	return c, nil
}
