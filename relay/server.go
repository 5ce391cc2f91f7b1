// Package relay is relayctl's own SMTP relay (relayctl serve): the
// server side of SMTP, closed by construction (a client relays only after
// AUTH or from an allowed address), with limits per client, and a durable
// queue in the store that it delivers through send's engine, returning
// RFC 3464 notices to senders whose mail could not be delivered.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/store"
)

// Config is how the server treats its clients.
type Config struct {
	// Hostname names the server in its greeting, Received fields and
	// notices.
	Hostname string
	// AllowIPs and AllowRanges may relay without AUTH.
	AllowIPs    []netip.Addr
	AllowRanges []netip.Prefix
	// TLS, if set, enables STARTTLS (and is required by SMTPS and
	// submission listeners).
	TLS *tls.Config

	MaxSize           int64 // bytes of one message (SIZE)
	MaxRecipients     int   // per message
	MessagesPerMinute int   // per client (user, else IP); 0: no limit
	RecipientsPerHour int   // per client; 0: no limit
	ConnsPerIP        int   // at once; 0: no limit
	CommandTimeout    time.Duration
	DataTimeout       time.Duration // of silence within DATA

	// Log gets one line per session and per accepted message.
	Log *slog.Logger
	// Now is the clock (tests); time.Now if nil.
	Now func() time.Time
}

// DefaultConfig holds the defaults of relayctl serve's flags.
var DefaultConfig = Config{
	MaxSize:           25 << 20,
	MaxRecipients:     100,
	MessagesPerMinute: 120,
	RecipientsPerHour: 2000,
	ConnsPerIP:        20,
	CommandTimeout:    5 * time.Minute,
	DataTimeout:       3 * time.Minute,
}

// Kind is what a listener is for.
type Kind int

const (
	// Relay is the plain port (--listen): allowed addresses relay, users
	// may AUTH after STARTTLS (or on loopback without it).
	Relay Kind = iota
	// Submission (--submission) requires AUTH, after STARTTLS.
	Submission
	// SMTPS (--smtps) speaks TLS from the first byte (RFC 8314).
	SMTPS
)

func (k Kind) String() string { return [...]string{"smtp", "submission", "smtps"}[k] }

// Server accepts mail into the queue.
type Server struct {
	cfg   Config
	st    *store.Store
	queue *committer
	users *users
	rates *rates
	conns *connCounter
	// Accepted, if set, is called after each message is queued (the
	// deliverer's wake-up).
	Accepted func()

	mu        sync.Mutex
	servers   []*smtp.Server
	listeners []net.Listener
	closed    bool
}

// NewServer returns a server queueing into st, which should be opened
// store.Durable: a message's 250 promises it survives a power cut.
func NewServer(cfg Config, st *store.Store) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	// A zero timeout would time every read out at once.
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultConfig.CommandTimeout
	}
	if cfg.DataTimeout <= 0 {
		cfg.DataTimeout = DefaultConfig.DataTimeout
	}
	return &Server{
		cfg:   cfg,
		st:    st,
		queue: newCommitter(st),
		users: newUsers(st),
		rates: newRates(cfg.MessagesPerMinute, cfg.RecipientsPerHour),
		conns: &connCounter{max: cfg.ConnsPerIP, n: map[netip.Addr]int{}},
	}
}

// Serve accepts connections on l until Close or Shutdown, then returns
// nil; kind says what l is for.
func (s *Server) Serve(l net.Listener, kind Kind) error {
	if kind != Relay && s.cfg.TLS == nil {
		return fmt.Errorf("%s listener %s: needs a certificate (--tls-cert, --tls-key)", kind, l.Addr())
	}
	srv := smtp.NewServer(backend{s: s, kind: kind})
	srv.Domain = s.cfg.Hostname
	srv.MaxMessageBytes = s.cfg.MaxSize
	srv.MaxRecipients = s.cfg.MaxRecipients
	srv.ReadTimeout = s.cfg.CommandTimeout
	srv.WriteTimeout = s.cfg.CommandTimeout
	// No SMTPUTF8: delivery does not pass it on, so a UTF-8 address
	// accepted here could only bounce later.
	srv.ErrorLog = slogLogger{s.cfg.Log}
	// Whether AUTH may go in the clear is decided per connection (only on
	// loopback), by offering no mechanisms.
	srv.AllowInsecureAuth = true
	if s.cfg.TLS != nil {
		srv.TLSConfig = s.cfg.TLS.Clone()
		if srv.TLSConfig.MinVersion < tls.VersionTLS12 {
			srv.TLSConfig.MinVersion = tls.VersionTLS12
		}
	}
	l = s.conns.listener(l, s.cfg.Log, kind)
	if kind == SMTPS {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil // as if it had been closed while serving
	}
	s.servers = append(s.servers, srv)
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	err := srv.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting mail: listeners close, sessions end. A message
// whose 250 was sent is in the store already.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	servers, listeners := s.servers, s.listeners
	s.mu.Unlock()
	for _, srv := range servers {
		srv.Close()
	}
	closeListeners(listeners)
	s.queue.close()
	return nil
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// the sessions under way to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers, listeners := s.servers, s.listeners
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	closeListeners(listeners)
	s.queue.close()
	return errors.Join(errs...)
}

// closeListeners closes what Serve was given, after go-smtp's Close or
// Shutdown: a Serve between registering here and go-smtp taking l would
// otherwise wait in Accept for ever.
func closeListeners(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// allowed reports whether addr may relay without AUTH.
func (s *Server) allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, a := range s.cfg.AllowIPs {
		if a.Unmap() == addr {
			return true
		}
	}
	for _, p := range s.cfg.AllowRanges {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

type backend struct {
	s    *Server
	kind Kind
}

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return newSession(b.s, b.kind, c), nil
}

// slogLogger passes go-smtp's own complaints to the log.
type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.l.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.l.Warn(fmt.Sprint(v...)) }
