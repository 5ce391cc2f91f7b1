package relay

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/store"
)

// session is one client's conversation, from EHLO to QUIT (carried over
// STARTTLS, which makes go-smtp start a new one).
type session struct {
	s      *Server
	kind   Kind
	conn   *smtp.Conn
	remote netip.Addr
	tls    bool

	stats *sessionStats

	// The transaction under way.
	from  string
	rcpts []string
}

// sessionStats is what the session's log line says. The session writes
// it, and the connection's Close (maybe from Server.Close) reads it.
type sessionStats struct {
	mu           sync.Mutex
	started      time.Time
	kind         Kind
	helo         string
	tls          bool
	user         string
	authFailures int
	messages     int
	recipients   int
	rejected     int // commands refused
	lastError    string
}

func newSession(s *Server, kind Kind, c *smtp.Conn) *session {
	ss := &session{s: s, kind: kind, conn: c}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		ss.remote = ap.Addr().Unmap()
	}
	_, ss.tls = c.TLSConnectionState()
	// The statistics live with the connection: they outlast STARTTLS's
	// new session, and the connection logs them when it closes.
	if cc := counted(c.Conn()); cc != nil {
		ss.stats = &cc.stats
	} else {
		ss.stats = &sessionStats{}
	}
	ss.stats.mu.Lock()
	if ss.tls && !ss.stats.tls {
		// After STARTTLS the client must AUTH again (RFC 3207 §4.2).
		ss.stats.user = ""
	}
	ss.stats.tls, ss.stats.helo, ss.stats.kind = ss.tls, c.Hostname(), kind
	ss.stats.mu.Unlock()
	return ss
}

// user is the authenticated user, or "".
func (ss *session) user() string {
	ss.stats.mu.Lock()
	defer ss.stats.mu.Unlock()
	return ss.stats.user
}

// client is who the limits count against: the user, else the address.
func (ss *session) client() string {
	if u := ss.user(); u != "" {
		return "user:" + u
	}
	return ss.remote.String()
}

// mayRelay: authenticated, or from an allowed address on a port that
// does not require AUTH.
func (ss *session) mayRelay() bool {
	if ss.user() != "" {
		return true
	}
	return ss.kind == Relay && ss.s.allowed(ss.remote)
}

// authAllowed: over TLS, or in the clear on loopback of the plain port
// (a local application that has no TLS to offer).
func (ss *session) authAllowed() bool {
	return ss.tls || ss.kind == Relay && ss.remote.IsLoopback()
}

func (ss *session) refuse(code int, enh smtp.EnhancedCode, msg string) error {
	ss.stats.mu.Lock()
	defer ss.stats.mu.Unlock()
	ss.stats.rejected++
	ss.stats.lastError = fmt.Sprintf("%d %d.%d.%d %s", code, enh[0], enh[1], enh[2], msg)
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// hangUp answers 421 and closes the connection, as 421 promises: go-smtp
// keeps a connection open after a command's error, whatever its code.
func (ss *session) hangUp(enh smtp.EnhancedCode, msg string) error {
	err := ss.refuse(421, enh, msg)
	c := ss.conn.Conn()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "421 %d.%d.%d %s\r\n", enh[0], enh[1], enh[2], msg)
	ss.conn.Close()
	return err
}

// AuthMechanisms offers PLAIN, LOGIN and CRAM-MD5, and nothing where AUTH
// is not allowed (so EHLO does not advertise it).
func (ss *session) AuthMechanisms() []string {
	if !ss.authAllowed() || ss.user() != "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login, "CRAM-MD5"}
}

// Auth checks the credentials against the store's users.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if !ss.authAllowed() {
		return nil, ss.refuse(538, smtp.EnhancedCode{5, 7, 11}, "Encryption required: STARTTLS first")
	}
	ss.stats.mu.Lock()
	failures := ss.stats.authFailures
	ss.stats.mu.Unlock()
	if failures >= 3 {
		// A password guesser reconnects, slowly.
		return nil, ss.hangUp(smtp.EnhancedCode{4, 7, 0}, "Too many failed logins, closing connection")
	}
	done := func(user string, err error) error {
		ss.stats.mu.Lock()
		defer ss.stats.mu.Unlock()
		if err != nil {
			ss.stats.authFailures++
			ss.s.cfg.Log.Warn("auth failed", "client", ss.remote.String(), "user", user, "mechanism", mech, "error", err.Error())
			ss.stats.rejected++
			ss.stats.lastError = "535 5.7.8 Authentication credentials invalid"
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		ss.stats.user = user
		return nil
	}
	// Each check gets its own deadline: a client that abandons the
	// exchange leaves nothing running.
	verify := func(user, pass string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return done(user, ss.s.users.verify(ctx, user, pass))
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return done(user, fmt.Errorf("may not act as %q", identity))
			}
			return verify(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: verify}, nil
	case "CRAM-MD5":
		return newCRAMServer(ss.s.cfg.Hostname, func(user string) (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return ss.s.users.cramSecret(ctx, user)
		}, done), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// Mail starts a transaction.
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.kind != Relay && ss.user() == "" {
		return ss.refuse(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
	}
	if !ss.s.rates.allowMessage(ss.client(), ss.s.cfg.Now()) {
		return ss.refuse(450, smtp.EnhancedCode{4, 7, 1}, fmt.Sprintf("Too many messages: at most %d a minute, try again later", ss.s.cfg.MessagesPerMinute))
	}
	ss.from, ss.rcpts = from, ss.rcpts[:0]
	return nil
}

// Rcpt adds a recipient, if the client may relay and has recipients left
// in its hour.
func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if !ss.mayRelay() {
		return ss.refuse(554, smtp.EnhancedCode{5, 7, 1}, "Relay access denied")
	}
	at := strings.LastIndexByte(to, '@')
	if at <= 0 || at == len(to)-1 {
		return ss.refuse(501, smtp.EnhancedCode{5, 1, 3}, "Recipient address must be user@domain")
	}
	if !ss.s.rates.allowRecipient(ss.client(), ss.s.cfg.Now()) {
		return ss.refuse(452, smtp.EnhancedCode{4, 5, 3}, fmt.Sprintf("Too many recipients: at most %d an hour, try again later", ss.s.cfg.RecipientsPerHour))
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

// Data reads the message, checks its line ends, and answers 250 only once
// it is committed to the store.
func (ss *session) Data(r io.Reader) error {
	now := ss.s.cfg.Now()
	received := ss.received(now)
	body, err := readMessage(ss.deadlined(r), received, ss.s.cfg.MaxSize)
	if err != nil {
		if se, ok := err.(*smtp.SMTPError); ok {
			return ss.refuse(se.Code, se.EnhancedCode, se.Message)
		}
		// The client fell silent (DataTimeout) or went away within the
		// message. go-smtp would answer and then read the rest of the
		// message as commands: end the connection instead.
		return ss.hangUp(smtp.EnhancedCode{4, 4, 2}, "Timeout or error within DATA, closing connection")
	}
	q := store.Queued{Received: now, From: ss.from, Client: ss.remote.String(), User: ss.user(), Body: body, Recipients: append([]string(nil), ss.rcpts...)}
	ctx, cancel := context.WithTimeout(context.Background(), ss.s.cfg.CommandTimeout)
	defer cancel()
	id, err := ss.s.queue.enqueue(ctx, q)
	if err != nil {
		ss.s.cfg.Log.Error("queue", "client", q.Client, "error", err.Error())
		return ss.refuse(451, smtp.EnhancedCode{4, 3, 0}, "Queue unavailable, try again later")
	}
	ss.stats.mu.Lock()
	ss.stats.messages++
	ss.stats.recipients += len(q.Recipients)
	ss.stats.mu.Unlock()
	ss.s.cfg.Log.Info("queued", "queue_id", id, "client", q.Client, "user", q.User, "from", q.From,
		"to", strings.Join(q.Recipients, ","), "recipients", len(q.Recipients), "size", len(body))
	if ss.s.Accepted != nil {
		ss.s.Accepted()
	}
	// go-smtp answers a plain 250 for nil; this one names the queue id.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: fmt.Sprintf("OK: queued as %d", id)}
}

// deadlined extends the read deadline at each read: DataTimeout bounds a
// silence within DATA, not the whole transfer of a large message.
func (ss *session) deadlined(r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		ss.conn.Conn().SetReadDeadline(time.Now().Add(ss.s.cfg.DataTimeout))
		return r.Read(p)
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// received is the trace field this relay adds (RFC 5321 §4.4).
func (ss *session) received(now time.Time) string {
	with := "ESMTP"
	if ss.tls {
		with += "S"
	}
	if ss.user() != "" {
		with += "A"
	}
	return fmt.Sprintf("Received: from %s ([%s])\r\n\tby %s (relayctl) with %s;\r\n\t%s\r\n",
		sanitizeHELO(ss.conn.Hostname()), ss.remote, ss.s.cfg.Hostname, with, now.Format(time.RFC1123Z))
}

// sanitizeHELO keeps a client's EHLO argument from breaking the header.
func sanitizeHELO(h string) string {
	h = strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == '(' || r == ')' {
			return -1
		}
		return r
	}, h)
	if h == "" {
		return "unknown"
	}
	return h
}

// Reset aborts the transaction.
func (ss *session) Reset() { ss.from, ss.rcpts = "", ss.rcpts[:0] }

// Logout ends the session; the connection logs it when it closes.
func (ss *session) Logout() error { return nil }

var _ smtp.AuthSession = (*session)(nil)
