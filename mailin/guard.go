package mailin

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// phase is where a connection stands; each phase has its own time limit
// on top of the idle limit per read.
type phase int

const (
	// phaseIdle: no message started yet (after the greeting, a message or
	// RSET). MAIL FROM is due within mailFrom.
	phaseIdle phase = iota
	// phaseMail: MAIL FROM accepted, no time limit but the idle one.
	phaseMail
	// phaseData: the message is being transferred, within maxData.
	phaseData
)

// timeoutError is what a read returns once one of the connection's time
// limits has passed. It is a net.Error whose Timeout is true, as go-smtp
// expects of a read that timed out.
type timeoutError struct {
	reason string // for the sender, e.g. "nothing received for 5m0s"
}

func (e *timeoutError) Error() string   { return e.reason }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// guardConn is one accepted SMTP/LMTP connection. It replaces go-smtp's
// read deadline (set once per command, so it capped a whole DATA
// transfer) with a deadline per read, adds the time limits of each
// phase, counts commands that bring no message closer, and keeps track
// of the end of the message data so an answer can wait until the sender
// has finished sending. go-smtp's own ReadTimeout must be 0.
type guardConn struct {
	net.Conn
	hostname string
	idle     time.Duration // longest silence, per read
	mailFrom time.Duration // greeting (or last message) to MAIL FROM
	maxData  time.Duration // one message transfer
	maxJunk  int
	release  func()
	closed   sync.Once

	mu       sync.Mutex
	phase    phase
	until    time.Time     // end of the current phase's time limit; zero: none
	expired  *timeoutError // sticky: once a limit passed, every read fails
	bye      string        // answer to write before the next read ends the connection
	byeSaid  bool
	junk     int    // commands without progress since the last message
	greeted  bool   // HELO/EHLO/LHLO seen
	mailSeen bool   // MAIL seen since the last message, RSET or EHLO
	line     []byte // the start of the command line being read
	skip     int64  // BDAT chunk bytes still to come: data, not commands
	chunked  bool   // the message comes in BDAT chunks, commands between them
	hangUp   bool   // close the connection once the message is answered
	eod      eodScanner
	// unseen is told of go-smtp's own refusals (see answers); nil:
	// nobody listens. pending holds the commands read and not answered
	// yet, oldest first; reply the start of the answer line being
	// written.
	unseen  func(stage string, code int)
	pending []pendingCmd
	reply   []byte
}

// pendingCmd is a command read and not answered yet: the stage of the
// refusal metrics it is of ("" for none), and whether the session
// handles it (its watch tells of the answer).
type pendingCmd struct {
	stage string
	seen  bool
}

// maxKept is how much of a command line the guard keeps to tell the
// command: the verb, and a BDAT chunk size.
const maxKept = 32

func (g *guardConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	if g.expired != nil && g.phase != phaseData && g.bye == "" {
		g.bye = fmt.Sprintf("421 4.4.2 %s %s, closing connection", g.hostname, g.expired.reason)
	}
	if g.bye != "" {
		g.mu.Unlock()
		g.sayBye()
		return 0, io.EOF
	}
	if g.expired != nil {
		err := g.expired
		g.mu.Unlock()
		return 0, err
	}
	deadline := time.Now().Add(g.idle)
	if !g.until.IsZero() && g.until.Before(deadline) {
		deadline = g.until
	}
	g.mu.Unlock()

	if err := g.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := g.Conn.Read(p)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		if err := g.timedOut(); err != nil {
			return n, err // in a message: it is answered 451
		}
		g.sayBye()
		return 0, io.EOF
	}
	g.mu.Lock()
	var cut int
	var over bool
	if n > 0 {
		cut, over = g.scan(p[:n])
	}
	short := err == io.EOF && g.skip > 0
	g.mu.Unlock()
	if over {
		// Hand go-smtp the commands before the one over the budget;
		// the next read says goodbye.
		if cut == 0 {
			g.sayBye()
			return 0, io.EOF
		}
		return cut, nil
	}
	if short {
		// go-smtp reads a BDAT chunk with io.Copy, which takes an end
		// of input for the end of the chunk: a client gone in the middle
		// of one would have the message taken cut short.
		return n, errChunkCut
	}
	return n, err
}

// errChunkCut fails a BDAT chunk whose client closed the connection
// before sending all of it: nothing of the message is taken.
var errChunkCut = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "connection closed in the middle of a BDAT chunk"}

// timedOut records which limit passed. In a message it returns the
// error to answer; between commands it sets the closing answer and
// returns nil.
func (g *guardConn) timedOut() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := &timeoutError{reason: fmt.Sprintf("nothing received for %v", g.idle)}
	if !g.until.IsZero() && !time.Now().Before(g.until) {
		switch g.phase {
		case phaseIdle:
			e.reason = fmt.Sprintf("no message started within %v", g.mailFrom)
		case phaseData:
			e.reason = fmt.Sprintf("message not received within %v", g.maxData)
		}
	}
	g.expired = e
	if g.phase == phaseData && g.skip > 0 {
		// go-smtp answers a BDAT chunk it could not read with the error
		// itself when it is an *smtp.SMTPError, and with a permanent 554
		// when it is anything else: say what the session says of DATA.
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: e.reason + ", please try again"}
	}
	if g.phase == phaseData {
		return e
	}
	g.bye = fmt.Sprintf("421 4.4.2 %s %s, closing connection", g.hostname, e.reason)
	return nil
}

// sayBye writes the closing answer once.
func (g *guardConn) sayBye() {
	g.mu.Lock()
	msg, said := g.bye, g.byeSaid
	g.byeSaid = true
	g.mu.Unlock()
	if said || msg == "" {
		return
	}
	g.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(g.Conn, msg+"\r\n"); err != nil {
		return
	}
	// Closing with unread input resets the connection, and the client may
	// lose the answer: signal the end, then take what is still coming for
	// a moment.
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		g.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		io.CopyN(io.Discard, g.Conn, lingerBytes)
	}
}

// lingerTime and lingerBytes bound what the connection takes after its
// closing answer.
const (
	lingerTime  = time.Second
	lingerBytes = 1 << 20
)

// scan follows the bytes the client sent: in a message sent with DATA,
// for the end of data; between messages, and between the chunks of a
// message sent with BDAT, for commands that bring no message closer.
// Past the budget it returns over and the offset of the offending line
// (0 when the line began in an earlier read).
func (g *guardConn) scan(b []byte) (cut int, over bool) {
	if g.phase == phaseData && !g.chunked {
		g.skip -= min(g.skip, int64(len(b)))
		g.eod.scan(b)
		return 0, false
	}
	start := 0
	for i := 0; i < len(b); i++ {
		if g.skip > 0 {
			n := min(g.skip, int64(len(b)-i))
			g.skip -= n
			i += int(n) - 1
			start = i + 1
			continue
		}
		if c := b[i]; c != '\n' {
			if len(g.line) < maxKept {
				g.line = append(g.line, c)
			}
			continue
		}
		v := verb(g.line)
		junk := g.command(v, g.line)
		if g.unseen != nil && g.phase != phaseData {
			g.pending = append(g.pending, pendingCmd{stage: stageOf(v)})
		}
		g.line = g.line[:0]
		if junk {
			g.junk++
			if g.junk > g.maxJunk {
				g.bye = fmt.Sprintf("421 4.7.0 %s too many commands without a message, closing connection", g.hostname)
				return start, true
			}
		}
		start = i + 1
	}
	return 0, false
}

// verb is the command of a command line, in upper case ("" for none).
func verb(line []byte) string {
	f := strings.Fields(strings.ToUpper(string(line)))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// command notes a command, verb of line, and reports whether it brings
// no message closer.
func (g *guardConn) command(verb string, line []byte) bool {
	switch verb {
	case "BDAT":
		g.skip, g.chunked = chunkSize(line), true
	case "DATA":
		if g.phase != phaseData { // else refused: a BDAT message is under way
			g.chunked = false
		}
	case "NOOP", "VRFY", "EXPN", "HELP":
		return true
	case "RSET":
		g.mailSeen = false
		return true
	case "HELO", "EHLO", "LHLO":
		again := g.greeted
		g.greeted, g.mailSeen = true, false
		return again
	case "MAIL":
		again := g.mailSeen
		g.mailSeen = true
		return again
	}
	return false
}

// stageOf is the stage of the refusal metrics of a command (its verb).
func stageOf(verb string) string {
	switch verb {
	case "MAIL":
		return "mail"
	case "RCPT":
		return "rcpt"
	case "DATA", "BDAT":
		return "data"
	}
	return ""
}

// Write notes each answer go-smtp writes, and tells unseen of those that
// refuse a command no session heard of: go-smtp's own refusals (a MAIL
// FROM whose SIZE is past the limit, a command out of order or not well
// formed), which the watch cannot count.
func (g *guardConn) Write(p []byte) (int, error) {
	if g.unseen != nil {
		g.mu.Lock()
		refused := g.answers(p)
		g.mu.Unlock()
		for _, r := range refused {
			g.unseen(r.stage, r.code)
		}
	}
	return g.Conn.Write(p)
}

// answers reads the answer lines in p: each last line of an answer
// ("250 ...", not "250-...") answers the oldest command pending, and the
// refusals of commands no session handled are returned. Within a
// message the session answers (the watch counts it), and a 354 leaves
// DATA pending.
func (g *guardConn) answers(p []byte) []refusal {
	var refused []refusal
	for _, c := range p {
		if c != '\n' {
			if len(g.reply) < 4 {
				g.reply = append(g.reply, c)
			}
			continue
		}
		line := g.reply
		g.reply = g.reply[:0]
		if len(line) < 4 || line[3] != ' ' || g.phase == phaseData || len(g.pending) == 0 {
			continue
		}
		code, err := strconv.Atoi(string(line[:3]))
		if err != nil || code/100 == 3 {
			continue
		}
		cmd := g.pending[0]
		g.pending = g.pending[1:]
		if !cmd.seen && code >= 400 && cmd.stage != "" {
			refused = append(refused, refusal{stage: cmd.stage, code: code})
		}
	}
	return refused
}

// refusal is an answer of code refusing a command of stage.
type refusal struct {
	stage string
	code  int
}

// handled marks the command being answered as one a session handles: its
// watch tells of the answer.
func (g *guardConn) handled() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) > 0 {
		g.pending[0].seen = true
	}
}

// chunkSize is the size of the chunk that follows a BDAT command line,
// 0 when none does. go-smtp reads a chunk after a BDAT whose arguments it
// took (even when it then refuses the transaction), and after no other:
// a line it refuses (a size past 32 bits, a second argument but LAST, a
// mangled command) is followed by commands, and they must be counted. Its
// checks (parseCmd, handleBdat) are repeated here. A line longer than the
// guard keeps is taken for no chunk: its end, unseen, may be what go-smtp
// refuses.
func chunkSize(line []byte) int64 {
	l := strings.TrimRight(string(line), "\r")
	if len(line) >= maxKept || len(l) < 6 || !strings.EqualFold(l[:5], "BDAT ") {
		return 0
	}
	args := strings.Fields(l[5:])
	if len(args) == 0 || len(args) > 2 || (len(args) == 2 && !strings.EqualFold(args[1], "LAST")) {
		return 0
	}
	size, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return 0
	}
	return int64(size)
}

// mailStarted is called when MAIL FROM was accepted.
func (g *guardConn) mailStarted() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.phase, g.until = phaseMail, time.Time{}
}

// dataStarted is called when the message transfer begins: a message
// counts as progress, so the budget of idle commands starts again.
func (g *guardConn) dataStarted() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.phase, g.until = phaseData, time.Now().Add(g.maxData)
	g.junk, g.mailSeen = 0, false
	g.eod = eodScanner{}
	if !g.chunked {
		// Data the client sent on the heels of DATA was no command. The
		// command after a BDAT chunk may have begun already.
		g.line = g.line[:0]
	}
}

// idleAgain is called when no message is under way any more (after a
// message, RSET or a new EHLO): MAIL FROM is due again within mailFrom.
func (g *guardConn) idleAgain() {
	if g == nil {
		return
	}
	g.mu.Lock()
	if g.phase == phaseData {
		// The message's commands were answered by its session; what
		// was read on their heels is taken for answered too.
		g.pending = nil
	}
	g.phase, g.until, g.chunked = phaseIdle, time.Now().Add(g.mailFrom), false
	hangUp := g.hangUp && g.bye == ""
	if hangUp {
		g.bye = fmt.Sprintf("421 4.4.2 %s closing connection after a refused message, reconnect to send more", g.hostname)
	}
	g.mu.Unlock()
	if hangUp {
		g.sayBye()
	}
}

// hangUpAfterAnswer closes the connection, with a 421, once the message
// under way has been answered (go-smtp resets the session after writing
// the answer). A message with an over-long line leaves go-smtp's line
// reader failing every read that follows: the next command would be
// answered "500 Too long line", a permanent refusal of the next message,
// where a 421 has the client send it again on a new connection.
func (g *guardConn) hangUpAfterAnswer() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hangUp = true
}

// drainData reads and drops the rest of a message the client is still
// sending, up to its end-of-data line, so that the answer refusing it
// reaches the client: closing with unread input resets the connection
// and the client may lose the answer. It gives up after limit bytes (0:
// no limit) or when a time limit passes.
func (g *guardConn) drainData(limit int64) {
	if g == nil {
		return
	}
	buf := make([]byte, 32<<10)
	var total int64
	for {
		g.mu.Lock()
		done := g.phase != phaseData || g.eod.done
		g.mu.Unlock()
		if done || (limit > 0 && total > limit) {
			return
		}
		n, err := g.Read(buf)
		total += int64(n)
		if err != nil {
			return
		}
	}
}

// Close closes the connection and gives its place back to the listener.
func (g *guardConn) Close() error {
	g.closed.Do(g.release)
	return g.Conn.Close()
}

// eodScanner finds the end-of-data line (CRLF.CRLF) in message data read
// in pieces. The data begins at the start of a line.
type eodScanner struct {
	state int // 0 line start, 1 ".", 2 ".\r", 3 in a line
	done  bool
}

func (s *eodScanner) scan(b []byte) {
	for _, c := range b {
		if s.done {
			return
		}
		switch {
		case c == '\n' && s.state == 2:
			s.done = true
		case c == '\n':
			s.state = 0
		case c == '.' && s.state == 0:
			s.state = 1
		case c == '\r' && s.state == 1:
			s.state = 2
		default:
			s.state = 3
		}
	}
}
