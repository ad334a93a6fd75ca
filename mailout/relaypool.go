package mailout

import (
	"log/slog"
	"sync"
	"time"
)

// DefaultRelaySessions is how many SMTP sessions a Relay keeps open to the
// smarthost at most unless told otherwise ([outbound] relay_sessions).
const DefaultRelaySessions = 4

// defaultIdleTimeout closes a pooled session no mail used for this long.
const defaultIdleTimeout = 10 * time.Second

func (r *Relay) sessions() int {
	if r.Sessions > 0 {
		return r.Sessions
	}
	return DefaultRelaySessions
}

func (r *Relay) idleTimeout() time.Duration {
	if r.IdleTimeout > 0 {
		return r.IdleTimeout
	}
	return defaultIdleTimeout
}

// sessionPool holds a Relay's idle sessions and caps the sessions in use.
// Its zero value is ready.
type sessionPool struct {
	mu    sync.Mutex
	slots chan struct{} // one token per session in use
	idle  []*relaySession
	reap  *time.Timer
	// closed: Close ran; sessions are not kept from then on.
	closed bool
	// inUse holds the connections of the Sends under way, which Abort
	// cuts; aborted: Abort ran, and no mail goes out from then on.
	inUse   map[*relayConn]struct{}
	aborted bool
}

// use marks c as in use by a Send, for Abort to cut. It reports false,
// marking nothing, once Abort ran.
func (p *sessionPool) use(c *relayConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.aborted {
		return false
	}
	if p.inUse == nil {
		p.inUse = map[*relayConn]struct{}{}
	}
	p.inUse[c] = struct{}{}
	return true
}

// unuse is the end of c's use by a Send.
func (p *sessionPool) unuse(c *relayConn) {
	p.mu.Lock()
	delete(p.inUse, c)
	p.mu.Unlock()
}

func (p *sessionPool) isAborted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.aborted
}

// Abort cuts the mail transactions under way, whatever they wait for
// (the relay's answer to the end of a mail may take ten minutes): their
// connections are closed and each Send fails with ErrAborted, as does
// every Send from then on. The relay said nothing of those mails, so they
// stay queued and are sent again. serve calls it when the shutdown grace
// is over.
func (r *Relay) Abort() {
	p := &r.pool
	p.mu.Lock()
	p.aborted = true
	cut := p.inUse
	p.inUse = nil
	p.mu.Unlock()
	for c := range cut {
		c.Conn.Close()
	}
}

// acquire waits for a free session slot out of n.
func (p *sessionPool) acquire(n int) {
	p.mu.Lock()
	if p.slots == nil {
		p.slots = make(chan struct{}, n)
	}
	slots := p.slots
	p.mu.Unlock()
	slots <- struct{}{}
}

func (p *sessionPool) release() {
	p.mu.Lock()
	slots := p.slots
	p.mu.Unlock()
	<-slots
}

// session returns the pooled session used last (its connection is the
// least likely to have been closed by the relay), or a new one; reused
// says which.
func (r *Relay) session() (s *relaySession, reused bool, err error) {
	p := &r.pool
	p.mu.Lock()
	if p.aborted {
		p.mu.Unlock()
		return nil, false, ErrAborted
	}
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle = p.idle[:n-1]
		if p.inUse == nil {
			p.inUse = map[*relayConn]struct{}{}
		}
		p.inUse[s.conn] = struct{}{}
		p.mu.Unlock()
		return s, true, nil
	}
	p.mu.Unlock()
	s, err = r.dial()
	return s, false, err
}

// put keeps s for the next mail, and arranges for it to be closed once
// idle for longer than idle.
func (p *sessionPool) put(s *relaySession, idle time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inUse, s.conn)
	if p.closed || p.aborted {
		go quit(s.c)
		return
	}
	s.idle = time.Now()
	p.idle = append(p.idle, s)
	if p.reap == nil {
		p.reap = time.AfterFunc(idle, func() { p.reapIdle(idle) })
	}
}

// reapIdle ends the sessions idle for longer than idle, and comes back
// while any is left.
func (p *sessionPool) reapIdle(idle time.Duration) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("relay session reaper panic", "panic", r)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	cut := time.Now().Add(-idle)
	keep := p.idle[:0]
	for _, s := range p.idle {
		if s.idle.After(cut) {
			keep = append(keep, s)
		} else {
			go quit(s.c)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.reap = nil
	if len(p.idle) > 0 && !p.closed {
		// The oldest left is idle for the shortest time below idle.
		p.reap = time.AfterFunc(p.idle[0].idle.Add(idle).Sub(time.Now())+time.Millisecond, func() { p.reapIdle(idle) })
	}
}

// Close ends the idle sessions with QUIT, waiting a moment for the
// relay's answers; a session in use ends when its mail is done. Send
// still works after Close, one session per mail.
func (r *Relay) Close() error {
	p := &r.pool
	p.mu.Lock()
	p.closed = true
	if p.reap != nil {
		p.reap.Stop()
		p.reap = nil
	}
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range idle {
		wg.Add(1)
		go func() { defer wg.Done(); quit(s.c) }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	return nil
}
