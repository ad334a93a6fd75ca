package mailin

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"

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
