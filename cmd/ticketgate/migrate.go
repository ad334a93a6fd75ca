package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ticketgate/mailout"
	"ticketgate/store"
	"ticketgate/store/boltdb"
)

// runMigrate is "ticketgate migrate -config F -from OLD.db": it copies a
// bbolt database into the PostgreSQL database the config names.
//
// Each ticket is copied whole (record, messages, events, the blobs they
// use) in one transaction and skipped when the target has it, outbox
// entries keep their ids and are skipped when present, so a run cut short
// is resumed by running it again, and a second run changes nothing.
// Bounce holds and rate counters are copied where the target has none;
// checkpoints and IMAP failed tries for the [[imap]] mailboxes of the
// config.
func runMigrate(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	fs, cfgPath := flags("migrate")
	from := fs.String("from", "", "the bbolt database file to copy from (serve must not have it open)")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
		return &exitError{code: 64, err: errors.New("usage: migrate -config F -from OLD.db")}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return &exitError{code: exConfig, err: err}
	}
	if !cfg.Store.Postgres() {
		return &exitError{code: exConfig, err: fmt.Errorf("migrate copies into PostgreSQL: %s has store.driver %q", cfg.source(), cfg.Store.Driver)}
	}
	if _, err := os.Stat(*from); err != nil {
		return &exitError{code: exNoInput, err: fmt.Errorf("migrate: %w", err)}
	}
	log := newLogger(os.Stderr)
	path := *from
	src, err := boltdb.Open(path, boltdb.Options{ReadOnly: true, LockTimeout: time.Second}, log)
	var old *boltdb.OldSchemaError
	if errors.As(err, &old) {
		// An earlier release's database: copied from a copy migrated as
		// serve would migrate it, beside it; OLD.db stays as it is.
		if path, err = migratedCopy(*from, filepath.Dir(*from)); err != nil {
			return &exitError{code: exTempFail, err: fmt.Errorf("%s has schema %d: migrate a copy: %w", *from, old.Have, err)}
		}
		defer os.Remove(path)
		fmt.Fprintf(stdout, "%s has schema %d: copying from a copy migrated to schema %d\n", *from, old.Have, old.Want)
		src, err = boltdb.Open(path, boltdb.Options{ReadOnly: true, LockTimeout: time.Second}, log)
	}
	if err != nil {
		return &exitError{code: exTempFail, err: fmt.Errorf("open %s: %w", *from, err)}
	}
	defer src.Close()
	dst, err := openStore(cfg, boltdb.Options{}, log)
	if err != nil {
		return &exitError{code: exTempFail, err: err}
	}
	defer dst.Close()
	m := &migration{src: src, dst: dst, from: *from}
	if err := m.refuseOthers(ctx); err != nil {
		return &exitError{code: exDataErr, err: err}
	}
	if err := m.tickets(ctx); err != nil {
		return err
	}
	if err := m.outbox(ctx); err != nil {
		return err
	}
	if err := m.rates(ctx); err != nil {
		return err
	}
	for _, c := range cfg.IMAP {
		if err := m.mailbox(ctx, c.Name); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s -> %s: %d tickets copied, %d already there; %d outbox mails copied, %d already there\n",
		*from, storeName(cfg), m.copied, m.skipped, m.outCopied, m.outSkipped)
	return nil
}

type migration struct {
	src, dst store.Store
	// from is the source's file as -from names it (not a migrated
	// copy): its hand-off log is beside it.
	from string

	copied, skipped, outCopied, outSkipped int
}

func (m *migration) tickets(ctx context.Context) error {
	list, err := m.srcTickets(ctx)
	if err != nil {
		return err
	}
	for _, tk := range list {
		if err := m.ticket(ctx, tk.ID); err != nil {
			return fmt.Errorf("copy ticket %s: %w", tk.ID, err)
		}
	}
	return nil
}

// srcTickets lists the source's tickets, oldest first, without their
// messages and events.
func (m *migration) srcTickets(ctx context.Context) ([]*store.Ticket, error) {
	var list []*store.Ticket
	err := m.src.View(ctx, func(tx store.Tx) error {
		var err error
		list, _, err = tx.Tickets(store.Filter{Sort: store.SortCreated})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list tickets: %w", err)
	}
	return list, nil
}

// srcOutbox lists the source's outbox entries, without their mail.
func (m *migration) srcOutbox(ctx context.Context) ([]*store.OutMail, error) {
	var list []*store.OutMail
	err := m.src.View(ctx, func(tx store.Tx) error {
		var err error
		list, err = tx.OutboxList(0, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	return list, nil
}

// refuseOthers refuses a target that holds, under the id of a source
// ticket or outbox mail, another one: the copy would skip it as already
// there, and the source's would be lost. What an earlier run copied is
// the same record (same creation time; for mail, same ticket and kind).
func (m *migration) refuseOthers(ctx context.Context) error {
	tickets, err := m.srcTickets(ctx)
	if err != nil {
		return err
	}
	out, err := m.srcOutbox(ctx)
	if err != nil {
		return err
	}
	var others []string
	err = m.dst.View(ctx, func(tx store.Tx) error {
		others = nil
		for _, tk := range tickets {
			got, err := tx.Ticket(tk.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !sameTicket(got, tk) {
				others = append(others, "ticket "+tk.ID)
			}
		}
		for _, e := range out {
			got, err := tx.OutboxEntry(e.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !sameMail(got, e) {
				others = append(others, fmt.Sprintf("outbox mail %d", e.ID))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("compare with the target: %w", err)
	}
	if len(others) > 0 {
		return fmt.Errorf("the target database holds other records under the ids of %s (%d in all): migrate into an empty database, or one only migrate filled",
			strings.Join(others[:min(len(others), 5)], ", "), len(others))
	}
	return nil
}

// sameTicket reports whether got, read from the target, is tk as an
// earlier run copied it: the same creation time.
func sameTicket(got, tk *store.Ticket) bool { return got.CreatedAt.Equal(tk.CreatedAt) }

// sameMail is sameTicket for outbox mail: same ticket, kind and time.
func sameMail(got, e *store.OutMail) bool {
	return got.TicketID == e.TicketID && got.Kind == e.Kind && got.Created.Equal(e.Created)
}

// errOtherRecord is a target record under a source id that is another
// one, made there after refuseOthers looked (a gateway already serving
// from the target): skipped as already there, the source's would be lost.
var errOtherRecord = errors.New("the target database holds another record under this id, made there while migrate ran: stop the gateways using it, then migrate into an empty database")

// ticket copies ticket id with its messages, events and blobs in one
// transaction, unless the target has it.
func (m *migration) ticket(ctx context.Context, id string) error {
	var (
		tk    *store.Ticket
		blobs map[string][]byte
	)
	err := m.src.View(ctx, func(tx store.Tx) error {
		var err error
		if tk, err = tx.TicketFull(id); err != nil {
			return err
		}
		blobs, err = ticketBlobs(tx, tk)
		return err
	})
	if err != nil {
		return err
	}
	skipped := false
	err = m.dst.UpdateNow(ctx, func(tx store.Tx) error {
		skipped = false
		if got, err := tx.Ticket(id); err == nil {
			if !sameTicket(got, tk) {
				return &exitError{code: exDataErr, err: errOtherRecord}
			}
			skipped = true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return putTicket(tx, tk, blobs)
	})
	if err != nil {
		return err
	}
	if skipped {
		m.skipped++
	} else {
		m.copied++
	}
	return nil
}

// ticketBlobs reads the raw copies and files of ticket tk's messages, by
// their ids.
func ticketBlobs(tx store.Tx, tk *store.Ticket) (map[string][]byte, error) {
	blobs := map[string][]byte{}
	for _, msg := range tk.Messages {
		hs := []string{msg.Raw}
		for _, a := range msg.Attachments {
			hs = append(hs, a.SHA256)
		}
		for _, h := range hs {
			if h == "" || blobs[h] != nil {
				continue
			}
			b, err := tx.Blob(h)
			if err != nil {
				return nil, fmt.Errorf("blob %s: %w", h, err)
			}
			blobs[h] = b
		}
	}
	return blobs, nil
}

// putTicket stores ticket tk, read whole from another store, with its
// messages, their blobs, and its events.
func putTicket(tx store.Tx, tk *store.Ticket, blobs map[string][]byte) error {
	for i := range tk.Messages {
		msg := tk.Messages[i]
		// Each use of a blob counts one reference, as when it was
		// first stored. A raw copy's id is the target's own (see
		// store.Tx.PutRawBlob).
		if msg.Raw != "" {
			var err error
			if msg.Raw, err = tx.PutRawBlob(blobs[msg.Raw]); err != nil {
				return err
			}
		}
		for _, a := range msg.Attachments {
			if a.SHA256 != "" {
				if _, err := tx.PutBlob(blobs[a.SHA256]); err != nil {
					return err
				}
			}
		}
		if err := tx.AddMessage(tk.ID, &msg); err != nil {
			return err
		}
	}
	for _, e := range tk.Events {
		if err := tx.AddEvent(tk.ID, e); err != nil {
			return err
		}
	}
	rec := *tk
	rec.Messages, rec.Events = nil, nil
	return tx.PutTicket(&rec)
}

// outbox copies the outbox entries the target lacks, ids kept, each in
// its own transaction with its mail; one the target has sent is not
// lacking. The target hands out no id up to the source's highest from
// before the first is copied, so that mail queued there after a run cut
// short never takes a copied entry's id (which would replace that
// entry), nor the id of mail the source sent (a bounce of that mail
// names it, and would be kept on the new mail's ticket).
func (m *migration) outbox(ctx context.Context) error {
	var max uint64
	list, err := m.srcOutbox(ctx)
	if err != nil {
		return err
	}
	for _, e := range list {
		max = maxU64(max, e.ID)
	}
	// A gateway killed after the relay took a mail left a note of it
	// beside the database; its next start would have taken the mail as
	// delivered. The copy does so instead.
	var handed []mailout.HandOff
	if m.from != "" {
		if handed, err = mailout.HandedOff(m.from + ".handoff"); err != nil {
			return &exitError{code: exTempFail, err: fmt.Errorf("read the hand-off log of %s: %w", m.from, err)}
		}
	}
	if l, ok := m.src.(interface {
		LastOutboxID(context.Context) (uint64, error)
	}); ok {
		last, err := l.LastOutboxID(ctx)
		if err != nil {
			return fmt.Errorf("read the last outbox id: %w", err)
		}
		max = maxU64(max, last)
	}
	if r, ok := m.dst.(interface {
		ReserveOutboxIDs(context.Context, uint64) error
	}); ok {
		if err := r.ReserveOutboxIDs(ctx, max); err != nil {
			return fmt.Errorf("reserve outbox ids: %w", err)
		}
	}
	for _, e := range list {
		err := m.src.View(ctx, func(tx store.Tx) error {
			var err error
			e.Raw, err = tx.OutboxRaw(e.ID)
			return err
		})
		if err != nil {
			return fmt.Errorf("read outbox mail %d: %w", e.ID, err)
		}
		skipped := false
		err = m.dst.UpdateNow(ctx, func(tx store.Tx) error {
			skipped = false
			if got, err := tx.OutboxEntry(e.ID); err == nil {
				if !sameMail(got, e) {
					return &exitError{code: exDataErr, err: errOtherRecord}
				}
				skipped = true
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			// Copied by an earlier run and sent since by a gateway on
			// the target: queued again, it would go out twice.
			if ticket, _, err := tx.SentTo(e.ID); err == nil {
				if ticket != e.TicketID {
					return &exitError{code: exDataErr, err: errOtherRecord}
				}
				skipped = true
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			c := *e
			c.ClaimedBy, c.ClaimedUntil = "", time.Time{}
			mailout.TakeHandedOff(&c, handed)
			return tx.Enqueue(&c)
		})
		if err != nil {
			return fmt.Errorf("copy outbox mail %d: %w", e.ID, err)
		}
		if skipped {
			m.outSkipped++
		} else {
			m.outCopied++
		}
	}
	return nil
}

func maxU64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// rates copies the rate counters the target lacks: the addresses held
// because they bounced (bounce_hold), and the counts of automatic and
// inbound mail the limits of [limits] go by.
func (m *migration) rates(ctx context.Context) error {
	for after := ""; ; {
		var (
			list []store.Rate
			next string
		)
		err := m.src.View(ctx, func(tx store.Tx) error {
			var err error
			list, next, err = tx.Rates(after, 500)
			return err
		})
		if err != nil {
			return fmt.Errorf("read rate counters: %w", err)
		}
		err = m.dst.UpdateNow(ctx, func(tx store.Tx) error {
			for _, r := range list {
				have, err := tx.RateTimes(r.Key)
				if err != nil {
					return err
				}
				if len(have) == 0 {
					if err := tx.PutRateTimes(r.Key, r.Times); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("copy rate counters: %w", err)
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// mailbox copies an IMAP mailbox's checkpoint and failed tries; the
// checkpoint never moves back, so copying it again is harmless.
func (m *migration) mailbox(ctx context.Context, name string) error {
	var (
		cp       store.Checkpoint
		validity uint32
		tries    map[uint32]int
	)
	err := m.src.View(ctx, func(tx store.Tx) error {
		var err error
		if cp, err = tx.Checkpoint(name); err != nil {
			return err
		}
		validity, tries, err = tx.PollTries(name)
		return err
	})
	if err != nil {
		return fmt.Errorf("read checkpoint of %s: %w", name, err)
	}
	return m.dst.UpdateNow(ctx, func(tx store.Tx) error {
		if cp.UIDValidity != 0 {
			if err := tx.PutCheckpoint(cp); err != nil {
				return err
			}
		}
		if len(tries) > 0 {
			return tx.PutPollTries(name, validity, tries)
		}
		return nil
	})
}
