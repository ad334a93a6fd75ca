package mailin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"ticketgate/rules"
	"ticketgate/store"
)

// PollerStatus is what a Poller reports about its mailbox.
type PollerStatus struct {
	Name        string    `json:"name"`
	Addr        string    `json:"addr"`
	Mailbox     string    `json:"mailbox"`
	Connected   bool      `json:"connected"`
	Idle        bool      `json:"idle"` // the server offers IDLE and it is used
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Taken counts messages committed and acted on, Duplicates those of
	// them that were already stored, Failed those moved to the failed
	// folder; LeftInPlace is how many failing messages wait in the mailbox.
	Taken       int64 `json:"taken"`
	Duplicates  int64 `json:"duplicates"`
	Failed      int64 `json:"failed"`
	LeftInPlace int   `json:"left_in_place"`
}

// Poller takes mail from one IMAP mailbox into a Pipeline, exactly once:
// each message is committed together with the mailbox checkpoint
// (UIDVALIDITY and UID) in one store transaction, and only then moved,
// flagged or deleted. A crash between commit and action leaves the message
// in the mailbox; it is delivered again on the next run and dropped as a
// duplicate by Message-ID, then acted on. The exported fields may be set
// before Run.
type Poller struct {
	// TLSConfig is used for implicit TLS and STARTTLS; nil verifies the
	// server against the system roots.
	TLSConfig *tls.Config
	// MaxBytes bounds one message; a larger one fails permanently. 0 means
	// 25 MiB.
	MaxBytes int64
	// Batch is how many UIDs one FETCH asks for (200); Parallel how many
	// deliveries may be in flight (16), so their commits share an fsync.
	Batch, Parallel int
	// Timeout bounds every exchange with the server (1m); IdleRestart and
	// Watchdog default to the package constants.
	Timeout, IdleRestart, Watchdog time.Duration
	// BackoffBase and BackoffMax bound the reconnect delay (1s, 5m).
	BackoffBase, BackoffMax time.Duration

	cfg       IMAPConfig
	pollEvery time.Duration
	in        Intake
	log       *slog.Logger

	// AfterCommit, when set, runs after a message is committed and before
	// its mailbox action; tests make it fail or panic to play a crash.
	AfterCommit func(uid uint32) error
	// noIdle makes the poller poll even when the server offers IDLE.
	noIdle bool

	mu       sync.Mutex
	st       PollerStatus
	tries    map[triesKey]int
	saved    map[uint32]int // the tries as last written to the database
	rescanOf uint32         // UIDVALIDITY whose rescan was logged
}

// Intake is what a poller hands mail to and reads its place from.
type Intake struct {
	Handler Handler
	// Store holds the mailbox's checkpoint, written by the Handler in the
	// message's own transaction.
	Store store.Store
	// Routes map the message's own recipients to a route; Prefix is the
	// ticket id prefix, for the thread keys that keep one ticket's mail in
	// order.
	Routes rules.Routes
	Prefix string
}

// NewPoller checks cfg (see IMAPConfig.Check) and returns a poller that
// hands mail to in.Handler.
func NewPoller(cfg IMAPConfig, in Intake, log *slog.Logger) (*Poller, error) {
	cfg, err := cfg.Check(in.Routes)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Poller{
		cfg: cfg, pollEvery: dur(cfg.PollEvery, DefaultPollEvery), in: in,
		log:   log.With("imap", cfg.Name),
		st:    PollerStatus{Name: cfg.Name, Addr: cfg.Addr, Mailbox: cfg.Mailbox},
		tries: map[triesKey]int{},
	}, nil
}

func dur(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// Config returns the checked configuration, defaults filled in.
func (p *Poller) Config() IMAPConfig { return p.cfg }

// Status returns a snapshot of the poller's state.
func (p *Poller) Status() PollerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	st.LeftInPlace = 0
	for _, n := range p.tries {
		if n > 0 {
			st.LeftInPlace++
		}
	}
	return st
}

func (p *Poller) setError(err error) {
	p.mu.Lock()
	p.st.LastError, p.st.LastErrorAt = err.Error(), time.Now()
	p.mu.Unlock()
}

// Run takes mail until ctx ends: IDLE when the server offers it, polling
// every poll_every otherwise. It reconnects with exponential backoff and
// jitter, and recovers from panics.
func (p *Poller) Run(ctx context.Context) {
	base, max := orDur(p.BackoffBase, time.Second), orDur(p.BackoffMax, 5*time.Minute)
	delay := base
	for ctx.Err() == nil {
		healthy, err := p.safeSession(ctx, false)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			delay = base
		}
		if err != nil {
			p.setError(err)
			p.observe(err)
			p.log.Warn("imap session ended", "err", err, "retry_in", delay)
		}
		// Full jitter around the delay keeps many pollers from reconnecting
		// in step after a server restart.
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		delay = min(delay*2, max)
	}
}

// RunOnce connects, takes every message waiting in the mailbox, and logs
// out. It returns how many messages were committed.
func (p *Poller) RunOnce(ctx context.Context) (int, error) {
	before := p.Status().Taken
	_, err := p.session(ctx, true)
	return int(p.Status().Taken - before), err
}

func (p *Poller) safeSession(ctx context.Context, once bool) (healthy bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("imap poller panic", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return p.session(ctx, once)
}

// session is one connection: drain, then wait for more, until ctx ends or
// the connection fails. healthy reports that at least one drain succeeded.
func (p *Poller) session(ctx context.Context, once bool) (healthy bool, err error) {
	s, err := p.connect(ctx)
	if err != nil {
		return false, err
	}
	defer s.close()
	for {
		if err := p.drain(ctx, s); err != nil {
			return healthy, err
		}
		healthy = true
		if once || ctx.Err() != nil {
			s.logout()
			return true, nil
		}
		if err := p.wait(ctx, s); err != nil {
			return true, err
		}
	}
}

func (p *Poller) checkpoint(ctx context.Context) (store.Checkpoint, error) {
	var cp store.Checkpoint
	err := p.in.Store.View(ctx, func(tx store.Tx) error {
		var err error
		cp, err = tx.Checkpoint(p.cfg.Name)
		return err
	})
	if err != nil {
		return cp, fmt.Errorf("read checkpoint: %w", err)
	}
	return cp, nil
}

// drain takes every message waiting in the mailbox, in batches.
func (p *Poller) drain(ctx context.Context, s *imapSession) error {
	select { // mail announced from here on is found by this drain's search or the next
	case <-s.newMail:
	default:
	}
	s.retry = false
	cp, err := p.checkpoint(ctx)
	if err != nil {
		return err
	}
	from := imap.UID(cp.UID)
	if cp.UIDValidity != s.validity {
		from = 0
		p.noteRescan(cp, s.validity)
	}
	uids, err := s.candidates(from)
	if err != nil {
		return err
	}
	if err := p.loadTries(ctx); err != nil {
		return err
	}
	uids, exhausted := p.splitExhausted(s.validity, uids)
	if err := p.failOut(s, exhausted); err != nil {
		return err
	}
	if err := p.saveTries(ctx, s.validity); err != nil {
		return err
	}
	var h *held
	if p.cfg.After == "seen" && !s.keywords {
		h = newHeld(uids, from)
	}
	batch := orInt(p.Batch, 200)
	for i := 0; i < len(uids) && ctx.Err() == nil; i += batch {
		if err := p.batch(ctx, s, h, uids[i:min(i+batch, len(uids))]); err != nil {
			return err
		}
	}
	if ctx.Err() == nil {
		p.mu.Lock()
		p.st.LastSuccess = time.Now()
		p.mu.Unlock()
		p.observe(nil)
	}
	return nil
}

func (p *Poller) noteRescan(cp store.Checkpoint, validity uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cp.UIDValidity == 0 || p.rescanOf == validity {
		return
	}
	p.rescanOf = validity
	p.log.Warn("mailbox UIDVALIDITY changed: rescanning it; messages already stored are recognised by Message-ID",
		"old", cp.UIDValidity, "new", validity, "mailbox", p.cfg.Mailbox)
}

// candidates returns the UIDs that may need taking, ascending. With
// after = move or delete every message still in the mailbox is one (a
// message whose action was lost in a crash, or one that failed, is still
// there). With after = seen they are the messages without the taken
// keyword, or, on a server that keeps no keywords, the messages above the
// checkpoint and every unseen one.
func (s *imapSession) candidates(from imap.UID) ([]imap.UID, error) {
	notDeleted := imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}
	var searches []imap.SearchCriteria
	if s.p.cfg.After == "seen" && s.keywords {
		searches = []imap.SearchCriteria{{NotFlag: []imap.Flag{imap.FlagDeleted, takenFlag}}}
	} else if s.p.cfg.After == "seen" && from > 0 {
		above := notDeleted
		above.UID = []imap.UIDSet{{{Start: from + 1, Stop: 0}}}
		unseen := imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted, imap.FlagSeen}}
		searches = []imap.SearchCriteria{above, unseen}
	} else {
		searches = []imap.SearchCriteria{notDeleted}
	}
	var set imap.UIDSet
	for i, crit := range searches {
		var data *imap.SearchData
		if err := s.do("search", func() (err error) {
			data, err = s.c.UIDSearch(&crit, nil).Wait()
			return err
		}); err != nil {
			return nil, err
		}
		for _, uid := range data.AllUIDs() {
			// "n:*" matches the highest UID even when it is below n.
			if i == 0 && len(searches) == 2 && uid <= from {
				continue
			}
			set.AddNum(uid)
		}
	}
	uids, _ := set.Nums()
	return uids, nil
}

// failOut moves messages that failed max_tries times to the failed
// folder, or leaves them where they are when there is none or the server
// refuses them (over quota): they are tried again on the next pass, and
// do not hold up the rest.
func (p *Poller) failOut(s *imapSession, uids []imap.UID) error {
	if len(uids) == 0 || p.cfg.FailedFolder == "" {
		return nil
	}
	set := imap.UIDSetNum(uids...)
	if err := s.move(set, p.cfg.FailedFolder); err != nil {
		var refused *imap.Error
		if !errors.As(err, &refused) {
			return err
		}
		p.setError(err)
		p.log.Warn("messages not moved to the failed folder; they stay in the mailbox", "uids", set.String(), "folder", p.cfg.FailedFolder, "err", err)
		return nil
	}
	p.mu.Lock()
	p.st.Failed += int64(len(uids))
	for _, uid := range uids {
		delete(p.tries, triesKey{s.validity, uid})
	}
	p.mu.Unlock()
	p.log.Warn("messages moved to the failed folder", "uids", set.String(), "folder", p.cfg.FailedFolder)
	return nil
}

// Permanent failures of one message: it is retried up to max_tries times
// and then moved to the failed folder.
var (
	errTooLarge   = errors.New("message is larger than the limit")
	errPanicked   = errors.New("delivery panicked")
	errUnsendable = errors.New("message cannot be fetched")
)

func permanent(err error) bool {
	return errors.Is(err, ErrNotMail) || errors.Is(err, ErrUnknownRecipient) ||
		errors.Is(err, errTooLarge) || errors.Is(err, errPanicked) || errors.Is(err, errUnsendable)
}

// outcome is what became of one fetched message.
type outcome struct {
	uid imap.UID
	res Result
	err error
}

// batch takes the messages uids: fetch and commit each, then act on the
// committed ones in the mailbox, and count failures.
func (p *Poller) batch(ctx context.Context, s *imapSession, h *held, uids []imap.UID) error {
	outs, err := p.deliverBatch(ctx, s, h, uids)
	slices.SortFunc(outs, func(a, b outcome) int { return cmp.Compare(a.uid, b.uid) })
	var done, exhausted []imap.UID
	var dups int64
	for _, o := range outs {
		switch {
		case o.err == nil:
			done = append(done, o.uid)
			if o.res.Duplicate {
				dups++
			}
		case permanent(o.err):
			if p.failedOnce(s.validity, o) {
				exhausted = append(exhausted, o.uid)
				h.release(o.uid)
			} else {
				s.retry = true // its next try, after poll_every
			}
		default:
			s.retry = true
			p.setError(o.err)
			p.log.Warn("message not taken; it stays in the mailbox and is tried again", "uid", o.uid, "err", o.err)
		}
	}
	if err != nil {
		return err
	}
	if p.AfterCommit != nil {
		for _, uid := range done {
			if err := p.AfterCommit(uint32(uid)); err != nil {
				return fmt.Errorf("after commit of uid %d: %w", uid, err)
			}
		}
	}
	if err := p.act(s, done); err != nil {
		return err
	}
	p.mu.Lock()
	p.st.Taken += int64(len(done))
	p.st.Duplicates += dups
	for _, uid := range done {
		delete(p.tries, triesKey{s.validity, uid})
	}
	p.mu.Unlock()
	if err := p.failOut(s, exhausted); err != nil {
		return err
	}
	if err := p.settle(ctx, s.validity, h); err != nil {
		return err
	}
	return p.saveTries(ctx, s.validity)
}

// act applies the configured after-action to messages already committed.
func (p *Poller) act(s *imapSession, uids []imap.UID) error {
	if len(uids) == 0 {
		return nil
	}
	set := imap.UIDSetNum(uids...)
	switch p.cfg.After {
	case "move":
		return s.move(set, p.cfg.MoveTo)
	case "seen":
		flags := []imap.Flag{imap.FlagSeen}
		if s.keywords {
			flags = append(flags, takenFlag)
		}
		return s.do("flag seen", func() error {
			return s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: flags}, nil).Close()
		})
	default: // delete
		return s.do("delete", func() error { return s.remove(set) })
	}
}

// move moves the messages set to folder, and makes the folder again when
// the server says it is not there (renamed or deleted since the poller
// connected and made it).
func (s *imapSession) move(set imap.UIDSet, folder string) error {
	err := s.moveOnce(set, folder)
	var missing *imap.Error
	if errors.As(err, &missing) && missing.Code == imap.ResponseCodeTryCreate {
		if err := s.ensureFolder(folder); err != nil {
			return err
		}
		err = s.moveOnce(set, folder)
	}
	return err
}

// moveOnce moves the messages set to folder. Without MOVE it copies them
// and only once the copy succeeded deletes them: the IMAP library's own
// fallback sends the delete along with the copy, so a refused copy (over
// quota) would lose the messages.
func (s *imapSession) moveOnce(set imap.UIDSet, folder string) error {
	return s.do("move to "+folder, func() error {
		if s.c.Caps().Has(imap.CapMove) {
			_, err := s.c.Move(set, folder).Wait()
			return err
		}
		if _, err := s.c.Copy(set, folder).Wait(); err != nil {
			return err
		}
		return s.remove(set)
	})
}

// remove flags the messages set \Deleted and expunges them.
func (s *imapSession) remove(set imap.UIDSet) error {
	if err := s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return err
	}
	if s.uidPlus {
		return s.c.UIDExpunge(set).Close()
	}
	// Without UIDPLUS, EXPUNGE also removes messages other clients
	// marked \Deleted; that is what they asked for.
	return s.c.Expunge().Close()
}

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

// deliverOne commits message uid with the checkpoint cp. A panic in the
// pipeline is a permanent failure of this message, not of the poller.
func (p *Poller) deliverOne(ctx context.Context, validity uint32, uid, cp imap.UID, raw []byte, info msgInfo) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("delivery panicked", "uid", uid, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanicked, r)
		}
	}()
	// Every routing address the header names, as inject reads them: the
	// pipeline picks the route among them.
	rcpts := HeaderRecipients(raw, p.in.Routes)
	if len(rcpts) == 0 {
		rcpts = []string{p.cfg.Route}
	}
	return p.in.Handler.Deliver(ctx, &Delivery{
		MailFrom: info.sender, Rcpts: rcpts, RcptsFromHeader: true, Raw: raw,
		Source: "imap:" + p.cfg.Name, Remote: p.cfg.Addr,
		Checkpoint: &store.Checkpoint{Mailbox: p.cfg.Name, UIDValidity: validity, UID: uint32(cp)},
	})
}

// msgInfo is what the poller reads from a header before delivery.
type msgInfo struct {
	sender string   // envelope sender: Return-Path, else the From address
	keys   []string // thread keys: Message-ID, In-Reply-To, References, ticket token
}

// headerInfo reads the top-level header as Parse does. Mail taken from a
// mailbox has no envelope: the reverse path is the Return-Path the final
// delivery added ("<>" for bounces), and without one the sender Parse
// reads from From, so that ordinary mail is not taken for a bounce.
func headerInfo(raw []byte, prefix string) msgInfo {
	var info msgInfo
	top := readLenientHeader(raw, 1<<20)
	h := addressFields(top.fields, top.charset(raw))
	if rp, ok := h["Return-Path"]; ok && len(rp) > 0 {
		info.sender = strings.ToLower(strings.Trim(strings.TrimSpace(rp[0]), "<>"))
	} else if from, _, _ := readSender(h["From"], h["Sender"]); from.Address != "" {
		info.sender = from.Address
	} else if f := bracketed(h.Get("From")); len(f) > 0 {
		info.sender = f[0]
	}
	for _, k := range []string{"Message-Id", "In-Reply-To", "References"} {
		for _, v := range h[k] {
			info.keys = append(info.keys, bracketed(v)...)
		}
	}
	if id, ok := rules.TicketToken(h.Get("Subject"), prefix); ok {
		info.keys = append(info.keys, "ticket:"+id)
	}
	return info
}

// bracketed returns the <...> items of v, lower-cased.
func bracketed(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		j := strings.IndexByte(v[max(i, 0):], '>')
		if i < 0 || j < 0 {
			return out
		}
		if id := strings.TrimSpace(v[i+1 : i+j]); id != "" {
			out = append(out, strings.ToLower(id))
		}
		v = v[i+j+1:]
	}
}
