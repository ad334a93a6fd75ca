package mailin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// deliverBatch fetches uids in one UID FETCH (those that did not come
// again by sequence number, see refetch) and hands each message to the
// pipeline as it arrives, with up to Parallel deliveries in flight so that
// their commits share an fsync. Bodies are read one message at a time; at
// most Parallel are held.
func (p *Poller) deliverBatch(ctx context.Context, s *imapSession, h *held, uids []imap.UID) ([]outcome, error) {
	f := &flight{keys: map[string]int{}, sem: make(chan struct{}, orInt(p.Parallel, 16))}
	got, err := p.fetchInto(ctx, s, h, f, imap.UIDSetNum(uids...), nil)
	if refusedFetch(err) {
		err = nil // what did not come is fetched again
	}
	if err == nil {
		missing := slices.DeleteFunc(slices.Clone(uids), func(u imap.UID) bool { return got[u] })
		err = p.refetch(ctx, s, h, f, missing, len(got) > 0)
	}
	f.wg.Wait()
	return f.outs, err
}

// refusedFetch reports a FETCH the server answered NO, as Gmail answers
// one that asks for a message it cannot send ("Some messages could not be
// FETCHed"): the others came, and the connection is good.
func refusedFetch(err error) bool {
	var refused *imap.Error
	return errors.As(err, &refused) && refused.Type == imap.StatusResponseTypeNo
}

// refetch fetches by sequence number the messages of a UID FETCH that
// did not come. IMAP sets no order on a FETCH response's items, and a
// server may write the UID after the body: the IMAP library matches a
// UID FETCH's responses by their UID, which it has not read when the
// body comes, and drops the message. It matches a FETCH by sequence
// number as the response begins. A message missing still (expunged
// meanwhile) is looked for again after poll_every.
//
// When the server answers NO, each message left is fetched alone, and
// one refused alone fails as a message that cannot be read (to the
// failed folder after max_tries), provided the server sent others
// (served says it did before): a server that sends nothing is having
// trouble of its own, and its messages are not failed for it.
func (p *Poller) refetch(ctx context.Context, s *imapSession, h *held, f *flight, missing []imap.UID, served bool) error {
	if len(missing) == 0 {
		return nil
	}
	var nums []*imapclient.FetchMessageBuffer
	if err := s.do("fetch sequence numbers", func() (err error) {
		nums, err = s.c.Fetch(imap.UIDSetNum(missing...), &imap.FetchOptions{UID: true}).Collect()
		return err
	}); err != nil && !refusedFetch(err) {
		return err
	}
	want := map[imap.UID]bool{}
	seqOf := map[imap.UID]uint32{}
	var seqs imap.SeqSet
	for _, m := range nums {
		if m.SeqNum != 0 && slices.Contains(missing, m.UID) && !want[m.UID] {
			want[m.UID], seqOf[m.UID] = true, m.SeqNum
			seqs.AddNum(m.SeqNum)
		}
	}
	if len(want) == 0 {
		s.retry = true
		return nil
	}
	got, err := p.fetchInto(ctx, s, h, f, seqs, want)
	switch {
	case refusedFetch(err):
		err = p.fetchEach(ctx, s, h, f, missing, seqOf, got, served || len(got) > 0)
	case isIMAPError(err):
		// A sequence number an expunge reported after the numbers
		// were read has gone (Dovecot: BAD Invalid messageset).
		err = nil
	}
	if len(got) < len(missing) {
		s.retry = true
	}
	return err
}

// fetchEach fetches alone each message of uids that is not in got yet,
// adding it there. One the server refuses alone fails as a message that
// cannot be read, when the server sent others (served).
func (p *Poller) fetchEach(ctx context.Context, s *imapSession, h *held, f *flight, uids []imap.UID, seqOf map[imap.UID]uint32, got map[imap.UID]bool, served bool) error {
	refused := map[imap.UID]error{}
	for _, uid := range uids {
		if seqOf[uid] == 0 || got[uid] {
			continue
		}
		one, err := p.fetchInto(ctx, s, h, f, imap.SeqSetNum(seqOf[uid]), map[imap.UID]bool{uid: true})
		switch {
		case refusedFetch(err):
			refused[uid] = err
		case err != nil && !isIMAPError(err):
			return err
		}
		served = served || len(one) > 0
		maps.Copy(got, one)
	}
	if len(refused) > 0 && !served {
		list := imap.UIDSetNum(slices.Sorted(maps.Keys(refused))...)
		p.setError(fmt.Errorf("fetch: the server refuses to send every message (uids %s)", list))
		p.log.Warn("the server refuses to send any message; they stay in the mailbox and are tried again", "uids", list.String())
		return nil
	}
	for uid, err := range refused {
		got[uid] = true
		f.done(outcome{uid: uid, err: fmt.Errorf("%w: %w", errUnsendable, err)}, nil)
	}
	return nil
}

func isIMAPError(err error) bool {
	var ierr *imap.Error
	return errors.As(err, &ierr)
}

// fetchInto runs one FETCH of set and starts the delivery of each message
// as it arrives (of only those in want, when want is not nil). It returns
// the UIDs whose message came, read or failed.
func (p *Poller) fetchInto(ctx context.Context, s *imapSession, h *held, f *flight, set imap.NumSet, want map[imap.UID]bool) (map[imap.UID]bool, error) {
	maxBytes := p.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 25 << 20
	}
	got := map[imap.UID]bool{}
	fetch := s.c.Fetch(set, &imap.FetchOptions{UID: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	guard := time.AfterFunc(s.timeout, func() { s.timedOut.Store(true); s.c.Close() })
	var readErr error
	for m := fetch.Next(); m != nil; m = fetch.Next() {
		guard.Reset(s.timeout)
		// A body that keeps coming is no silence, however long it is.
		uid, raw, err := readFetched(m, maxBytes, func() { guard.Reset(s.timeout) })
		switch {
		case uid == 0 || (want != nil && !want[uid]) || got[uid]:
			continue
		case raw == nil && err == nil: // a flag change another client made
			continue // the client drops the body that follows: refetched
		case err != nil && !permanent(err):
			readErr = err
		case err != nil:
			got[uid] = true
			f.done(outcome{uid: uid, err: err}, nil)
			continue
		default:
			got[uid] = true
			info := headerInfo(raw, p.in.Prefix)
			// start waits while Parallel deliveries (or one of the same
			// thread) are in flight: slow commits are not a silent server.
			guard.Stop()
			f.start(info.keys, func() outcome {
				res, err := p.deliverOne(ctx, s.validity, uid, h.checkpoint(uid), raw, info)
				if err == nil {
					h.release(uid)
				}
				return outcome{uid: uid, res: res, err: err}
			})
			guard.Reset(s.timeout)
			continue
		}
		break
	}
	ferr := fetch.Close()
	guard.Stop()
	switch {
	case s.timedOut.Load():
		return got, fmt.Errorf("fetch: no answer from the server within %v", s.timeout)
	case readErr != nil:
		return got, fmt.Errorf("fetch: %w", readErr)
	case ferr != nil:
		return got, fmt.Errorf("fetch: %w", ferr)
	}
	return got, nil
}

// flight is the set of deliveries running in parallel. Messages of one
// thread (sharing a Message-ID, In-Reply-To, References or ticket token)
// are delivered in mailbox order: a message whose keys are in flight
// waits until everything in flight is done.
type flight struct {
	mu   sync.Mutex
	wg   sync.WaitGroup
	sem  chan struct{}
	keys map[string]int
	outs []outcome
}

func (f *flight) start(keys []string, deliver func() outcome) {
	f.mu.Lock()
	conflict := slices.ContainsFunc(keys, func(k string) bool { return f.keys[k] > 0 })
	f.mu.Unlock()
	if conflict {
		f.wg.Wait()
	}
	f.mu.Lock()
	for _, k := range keys {
		f.keys[k]++
	}
	f.mu.Unlock()
	f.sem <- struct{}{}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() { <-f.sem }()
		f.done(deliver(), keys)
	}()
}

func (f *flight) done(o outcome, keys []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outs = append(f.outs, o)
	for _, k := range keys {
		f.keys[k]--
	}
}

// readFetched reads one FETCH response: the UID and the whole message,
// calling progress as the message's bytes arrive. raw is nil when the
// response holds no body section, as when the server reports mid-FETCH a
// flag change another client made.
func readFetched(m *imapclient.FetchMessageData, maxBytes int64, progress func()) (imap.UID, []byte, error) {
	var uid imap.UID
	var raw []byte
	var tooBig error
	for item := m.Next(); item != nil; item = m.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = it.UID
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil {
				raw = []byte{} // BODY[] NIL: the message is there, unreadable
				continue
			}
			if it.Literal.Size() > maxBytes {
				// Left unread (the next item drops it): the UID may
				// come after it.
				tooBig = fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, it.Literal.Size(), maxBytes)
				continue
			}
			buf := bytes.NewBuffer(make([]byte, 0, it.Literal.Size()))
			if _, err := buf.ReadFrom(progressReader{it.Literal, progress}); err != nil {
				return uid, nil, fmt.Errorf("read message %d: %w", uid, err)
			}
			raw = buf.Bytes()
		}
	}
	if tooBig != nil {
		return uid, nil, tooBig
	}
	return uid, raw, nil
}

// progressReader calls progress after each read that brought bytes.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}
