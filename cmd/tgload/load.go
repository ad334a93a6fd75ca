package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// load is one run's settings.
type load struct {
	addr     string
	lmtp     bool
	conns    int
	max      int           // messages in all; 0: until the duration is up
	duration time.Duration // always bounds the run
	rcpts    []string
}

// result is what one run measured.
type result struct {
	sent, ok  int
	kinds     [kindCount]int // accepted, by kind
	attached  int            // accepted with the attachment
	errors    map[string]int // by reply code, or "conn" for a broken connection
	latencies []time.Duration
	elapsed   time.Duration
}

func (r *result) add(o *result) {
	r.sent += o.sent
	r.ok += o.ok
	r.attached += o.attached
	for k := range r.kinds {
		r.kinds[k] += o.kinds[k]
	}
	for code, n := range o.errors {
		r.errors[code] += n
	}
	r.latencies = append(r.latencies, o.latencies...)
}

// rate is accepted messages per second.
func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// percentile of the latencies to the 250; they must be sorted.
func (r *result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(p * float64(len(r.latencies)-1))
	return r.latencies[i]
}

// run sends the mix over l.conns connections, each reused for message
// after message, until l.max messages are sent or l.duration is up.
func (l *load) run(ctx context.Context, m *mix) *result {
	ctx, cancel := context.WithTimeout(ctx, l.duration)
	defer cancel()
	var claimed atomic.Int64
	results := make([]*result, l.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range l.conns {
		wg.Go(func() {
			results[i] = l.worker(ctx, m, uint64(i), func() bool {
				return l.max == 0 || claimed.Add(1) <= int64(l.max)
			})
		})
	}
	wg.Wait()
	total := &result{errors: map[string]int{}, elapsed: time.Since(start)}
	for _, r := range results {
		total.add(r)
	}
	slices.Sort(total.latencies)
	return total
}

// worker is one connection's loop. claim reports whether another message
// may be sent.
func (l *load) worker(ctx context.Context, m *mix, id uint64, claim func() bool) *result {
	res := &result{errors: map[string]int{}}
	r := rand.New(rand.NewPCG(id, uint64(time.Now().UnixNano())))
	var c *smtp.Client
	defer func() {
		if c != nil {
			c.Quit()
			c.Close()
		}
	}()
	for ctx.Err() == nil && claim() {
		if c == nil {
			var err error
			if c, err = l.dial(ctx); err != nil {
				res.sent++
				res.errors[code(err)]++
				// A refused connection: wait a little instead of spinning.
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
		}
		msg := m.next(r)
		res.sent++
		t0 := time.Now()
		err := l.send(c, msg)
		if err == nil {
			res.ok++
			res.kinds[msg.kind]++
			if msg.attach {
				res.attached++
			}
			res.latencies = append(res.latencies, time.Since(t0))
			if msg.kind == kindNew {
				m.accepted(msg.thread)
			}
			continue
		}
		res.errors[code(err)]++
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			c.Close()
			c = nil
		} else if c.Reset() != nil {
			c.Close()
			c = nil
		}
	}
	return res
}

// dial opens one connection and greets, bounded by ctx.
func (l *load) dial(ctx context.Context) (*smtp.Client, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	if l.lmtp {
		c = smtp.NewClientLMTP(conn)
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = 30 * time.Second
	c.SubmissionTimeout = 30 * time.Second
	if err := c.Hello("tgload.localhost"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// send is one transaction, MAIL FROM to the answer after the final dot.
func (l *load) send(c *smtp.Client, msg message) error {
	if err := c.Mail(msg.from, nil); err != nil {
		return err
	}
	for _, rc := range l.rcpts {
		if err := c.Rcpt(rc, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg.raw); err != nil {
		w.Close()
		return err
	}
	if l.lmtp {
		_, err = w.CloseWithLMTPResponse()
		return err
	}
	return w.Close()
}

// code names an error by its SMTP reply code, or "conn" when the
// connection failed.
func code(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return strconv.Itoa(se.Code)
	}
	return "conn"
}

// describe is the printed summary of a run.
func (r *result) describe(name string) string {
	s := fmt.Sprintf("%s: %d attempted, %d ok, %d failed in %.1fs\n", name, r.sent, r.ok, r.sent-r.ok, r.elapsed.Seconds())
	s += fmt.Sprintf("  mix: %d new, %d token replies, %d in-reply-to replies; %d with the attachment\n",
		r.kinds[kindNew], r.kinds[kindToken], r.kinds[kindRef], r.attached)
	s += fmt.Sprintf("  rate: %.1f msg/s; latency to the 250: p50 %s p99 %s max %s\n",
		r.rate(), ms(r.percentile(0.50)), ms(r.percentile(0.99)), ms(r.percentile(1)))
	if len(r.errors) > 0 {
		codes := make([]string, 0, len(r.errors))
		for c := range r.errors {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		s += "  errors:"
		for _, c := range codes {
			s += fmt.Sprintf(" %s=%d", c, r.errors[c])
		}
		s += "\n"
	}
	return s
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}
