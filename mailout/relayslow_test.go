package mailout

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// slowRcptRelay is a relay that takes rcptDelay to answer each RCPT TO
// (a relay looking each recipient up, as Postfix's recipient checks do),
// and answers every other command at once; pipelining says whether it
// offers PIPELINING. It returns its address and the recipients of the
// mails it took, one string each.
func slowRcptRelay(t *testing.T, rcptDelay time.Duration, pipelining bool) (string, <-chan string) {
	t.Helper()
	took := make(chan string, 10)
	addr, _ := scriptedRelay(t, "220 relay.test ESMTP", func() func(net.Conn, *bufio.Reader, string) bool {
		var rcpts []string
		return func(c net.Conn, r *bufio.Reader, line string) bool {
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "EHLO"):
				if pipelining {
					fmt.Fprintf(c, "250-relay.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
				} else {
					fmt.Fprintf(c, "250-relay.test\r\n250 8BITMIME\r\n")
				}
			case strings.HasPrefix(cmd, "RCPT TO:"):
				time.Sleep(rcptDelay)
				rcpts = append(rcpts, strings.TrimSpace(line[len("RCPT TO:"):]))
				fmt.Fprintf(c, "250 2.1.5 ok\r\n")
			case cmd == "DATA":
				fmt.Fprintf(c, "354 go ahead\r\n")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return false
					}
					if l == ".\r\n" {
						break
					}
				}
				took <- strings.Join(rcpts, " ")
				rcpts = nil
				fmt.Fprintf(c, "250 2.0.0 queued\r\n")
			default:
				fmt.Fprintf(c, "250 ok\r\n")
			}
			return true
		}
	})
	return addr, took
}

// A relay that answers each command within the timeout gets the mail,
// however many recipients it has: pipelined, as one at a time, the time
// allowed is each answer's, not the whole transaction's.
func TestRelaySlowRecipientsEachWithinTheTimeout(t *testing.T) {
	to := []string{"a@x.example", "b@x.example", "c@x.example", "d@x.example", "e@x.example", "f@x.example"}
	for _, pipelining := range []bool{true, false} {
		addr, took := slowRcptRelay(t, 400*time.Millisecond, pipelining)
		r := &Relay{Addr: addr, TLS: "none", Hostname: "t.example", Timeout: time.Second}
		refused, err := r.Send("desk@t.example", to, []byte("Subject: many\r\n\r\nHello.\r\n"), nil)
		r.Close()
		if err != nil || len(refused) != 0 {
			t.Errorf("pipelining %v: refused %v, err %v; want the mail taken for all %d recipients", pipelining, refused, err, len(to))
			continue
		}
		select {
		case got := <-took:
			if got != "<"+strings.Join(to, "> <")+">" {
				t.Errorf("pipelining %v: the relay took the mail for %s", pipelining, got)
			}
		default:
			t.Errorf("pipelining %v: Send reported a mail the relay did not take", pipelining)
		}
	}
}
