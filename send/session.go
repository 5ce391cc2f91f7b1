package send

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Timeouts bound every step of a session. The defaults are RFC 5321
// §4.5.3.2's: five minutes for the greeting and each command, ten for the
// reply to the final dot.
type Timeouts struct {
	Dial    time.Duration
	Command time.Duration
	Final   time.Duration
}

// DefaultTimeouts are RFC 5321's, with a 30-second connect.
var DefaultTimeouts = Timeouts{Dial: 30 * time.Second, Command: 5 * time.Minute, Final: 10 * time.Minute}

// TLSMode is how a session protects itself.
type TLSMode int

const (
	// TLSOpportunistic uses STARTTLS when the server offers it.
	TLSOpportunistic TLSMode = iota
	// TLSRequired fails unless STARTTLS succeeds.
	TLSRequired
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit
	// TLSNone never encrypts (an upstream with ?tls=none).
	TLSNone
)

// Session is one SMTP connection, greeted and ready for transactions.
type Session struct {
	c        *smtp.Client
	conn     net.Conn
	Host     string // the server's host name
	Addr     string // the address connected to
	TLS      bool
	Opened   time.Time
	Messages int // transactions completed on this connection
	timeouts Timeouts
}

// handshake greets the server on conn, negotiating TLS per mode, and
// returns a session whose EHLO named helo, before and after STARTTLS.
//
// go-smtp's STARTTLS helper introduces itself as "localhost" before the
// upgrade, which some receivers hold against the sender; so the plaintext
// part (greeting, EHLO, STARTTLS) is spoken here, and go-smtp takes over
// on the upgraded connection, fed a stand-in greeting.
func handshake(ctx context.Context, conn net.Conn, host, helo string, mode TLSMode, cfg *tls.Config, t Timeouts) (*Session, error) {
	s := &Session{conn: conn, Host: host, Addr: conn.RemoteAddr().String(), Opened: time.Now(), timeouts: t}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	tc := tlsConfig(cfg, host)
	if mode == TLSImplicit {
		tconn := tls.Client(conn, tc)
		hctx, cancel := context.WithTimeout(ctx, t.Command)
		err := tconn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: TLS: %w", host, err)
		}
		s.conn, s.TLS = tconn, true
		return s, s.greet(ctx, tconn, helo, nil)
	}
	conn.SetDeadline(time.Now().Add(t.Command))
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, fmt.Errorf("%s: greeting: %w", host, replyError(err))
	}
	if err := tp.PrintfLine("EHLO %s", helo); err != nil {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	_, msg, err := tp.ReadResponse(250)
	if err != nil {
		return nil, fmt.Errorf("%s: EHLO: %w", host, replyError(err))
	}
	offered := false
	for _, line := range strings.Split(msg, "\n")[1:] {
		if strings.EqualFold(strings.Fields(line + " ")[0], "STARTTLS") {
			offered = true
		}
	}
	if mode == TLSNone || !offered {
		if mode == TLSRequired {
			return nil, &FatalError{Msg: fmt.Sprintf("%s does not offer STARTTLS, and this upstream requires it (add ?tls=none to the URL only on a trusted network)", host)}
		}
		conn.SetDeadline(time.Time{})
		return s, s.greet(ctx, conn, helo, tp.R)
	}
	if err := tp.PrintfLine("STARTTLS"); err != nil {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		err = fmt.Errorf("%s: STARTTLS: %w", host, replyError(err))
		if mode == TLSRequired {
			return nil, &FatalError{Msg: "STARTTLS refused by the upstream", Err: err}
		}
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	if tp.R.Buffered() > 0 {
		return nil, fmt.Errorf("%s: data after STARTTLS reply (possible command injection)", host)
	}
	tconn := tls.Client(conn, tc)
	hctx, cancel := context.WithTimeout(ctx, t.Command)
	err = tconn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		err = fmt.Errorf("%s: TLS: %w", host, err)
		if mode == TLSRequired {
			return nil, &FatalError{Msg: "TLS with the upstream failed (a private CA goes in --ca / tls_ca)", Err: err}
		}
		return nil, err
	}
	s.conn, s.TLS = tconn, true
	// No greeting follows STARTTLS: go-smtp gets the stand-in.
	return s, s.greet(ctx, tconn, helo, bufio.NewReader(tconn))
}

func tlsConfig(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	c := cfg.Clone()
	if c.ServerName == "" {
		c.ServerName = host
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// greet hands conn to go-smtp, which expects a greeting: a stand-in one
// when the real one was read here already, then EHLO.
func (s *Session) greet(ctx context.Context, conn net.Conn, helo string, buffered *bufio.Reader) error {
	var c net.Conn = conn
	if buffered != nil {
		c = &prefixConn{Conn: conn, r: io.MultiReader(strings.NewReader("220 relayctl resumed\r\n"), buffered)}
	}
	s.c = smtp.NewClient(c)
	s.c.CommandTimeout, s.c.SubmissionTimeout = s.timeouts.Command, s.timeouts.Final
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := s.c.Hello(helo); err != nil {
		s.conn.Close()
		return fmt.Errorf("%s: EHLO: %w", s.Host, err)
	}
	return nil
}

// prefixConn reads from r before the connection itself.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// replyError turns net/textproto's reply errors into go-smtp's, which
// Classify reads.
func replyError(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	se := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	if enh := leadingEnhanced(te.Msg); enh != "" {
		fmt.Sscanf(enh, "%d.%d.%d", &se.EnhancedCode[0], &se.EnhancedCode[1], &se.EnhancedCode[2])
		se.Message = strings.TrimSpace(strings.TrimPrefix(te.Msg, enh))
	}
	return se
}

// Extension reports whether the server announced ext, and its parameter.
func (s *Session) Extension(ext string) (bool, string) { return s.c.Extension(ext) }

// Send runs one transaction: MAIL FROM, RCPT TO for each recipient, DATA.
// It returns an outcome per recipient. An error means the session itself
// is broken (the connection dropped or timed out) and must be closed; the
// outcomes then say what happened to each recipient before that.
func (s *Session) Send(ctx context.Context, from string, to []string, msg []byte) ([]Outcome, error) {
	return s.SendWhenReady(ctx, from, to, msg, nil)
}

// ErrNotReady is SendWhenReady's error when ready failed: the transaction
// was reset before DATA and nothing was sent.
var ErrNotReady = errors.New("not ready for DATA")

// SendWhenReady is Send with a gate before DATA: ready, if not nil, is
// called once the server has accepted a recipient, and DATA goes only if
// it returns nil. A run records the recipients as sending meanwhile, so
// the commit overlaps MAIL and RCPT instead of preceding them.
func (s *Session) SendWhenReady(ctx context.Context, from string, to []string, msg []byte, ready func() error) ([]Outcome, error) {
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	out := make([]Outcome, len(to))
	all := func(err error) ([]Outcome, error) {
		o := Classify(err)
		for i := range out {
			out[i] = o
		}
		return out, brokenSession(err)
	}
	if err := s.c.Mail(from, nil); err != nil {
		if brokenSession(err) == nil {
			s.c.Reset()
		}
		return all(err)
	}
	var accepted []int
	for i, rcpt := range to {
		err := s.c.Rcpt(rcpt, nil)
		out[i] = Classify(err)
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		if brokenSession(err) != nil {
			for j := i + 1; j < len(to); j++ {
				out[j] = out[i]
			}
			return out, err
		}
	}
	if len(accepted) == 0 {
		return out, brokenSession(s.c.Reset())
	}
	if ready != nil {
		if err := ready(); err != nil {
			if rerr := brokenSession(s.c.Reset()); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return nil, fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
	w, err := s.c.Data()
	if err != nil {
		return s.fail(out, accepted, err)
	}
	if _, err := io.Copy(w, bytes.NewReader(msg)); err != nil {
		return s.fail(out, accepted, err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return s.fail(out, accepted, err)
	}
	s.Messages++
	for _, i := range accepted {
		out[i] = Outcome{Kind: Sent, Code: 250, Text: resp.StatusText}
	}
	return out, nil
}

func (s *Session) fail(out []Outcome, accepted []int, err error) ([]Outcome, error) {
	o := Classify(err)
	for _, i := range accepted {
		out[i] = o
	}
	return out, brokenSession(err)
}

// brokenSession returns err if it leaves the connection unusable: anything
// that is not a server's reply.
func brokenSession(err error) error {
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code != 421 {
		return nil
	}
	return err
}

// Close ends the session politely (QUIT), or at once if that fails.
func (s *Session) Close() error {
	if s.c == nil {
		return s.conn.Close()
	}
	s.conn.SetDeadline(time.Now().Add(10 * time.Second))
	err := s.c.Quit()
	s.c.Close()
	return err
}

// Abort drops the connection without QUIT.
func (s *Session) Abort() { s.conn.Close() }
