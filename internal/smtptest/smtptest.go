// Package smtptest runs a go-smtp server on 127.0.0.1 as the receiving side
// of tests: it keeps what it receives, counts connections and messages per
// connection, and lets a test refuse, delay or drop at any step. It can
// offer STARTTLS or speak implicit TLS with a certificate it makes, and
// require AUTH.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message received.
type Message struct {
	From string
	To   []string
	Data []byte
	Conn int // which connection (1-based) carried it
	User string
}

// Options configure a server.
type Options struct {
	// TLS offers STARTTLS with a certificate for 127.0.0.1 and the
	// names in Names; Implicit speaks TLS from the first byte.
	TLS      bool
	Implicit bool
	Names    []string
	// Users require AUTH (PLAIN, LOGIN) with these passwords.
	Users map[string]string
	// Mechanisms overrides the AUTH mechanisms announced.
	Mechanisms []string
}

// Hooks let a test shape the server's replies; a nil hook accepts.
type Hooks struct {
	Mail func(from string) error
	Rcpt func(to string) error
	// Data sees each message; returning an error refuses it. Returning
	// ErrDrop closes the connection without a reply.
	Data func(m Message) error
}

// ErrDrop, from a hook, drops the connection instead of replying.
var ErrDrop = &smtp.SMTPError{Code: 0}

// Server is a running test server.
type Server struct {
	Addr string
	Port int
	// CA is the PEM of the certificate, for clients to trust.
	CA   []byte
	Pool *x509.CertPool

	mu       sync.Mutex
	hooks    Hooks
	messages []Message
	conns    int
	open     int
	maxOpen  int
	perConn  map[int]int
	helos    []string
	srv      *smtp.Server
	opts     Options
}

// Start starts a server that stops when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{perConn: map[int]int{}, opts: opts}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "mx.test"
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // dropped connections are what tests do
	s.srv.AllowInsecureAuth = !opts.TLS && !opts.Implicit
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	if opts.TLS || opts.Implicit {
		cfg, pemBytes, pool := SelfSigned(t, opts.Names...)
		s.CA, s.Pool = pemBytes, pool
		s.srv.TLSConfig = cfg
		if opts.Implicit {
			ln = tls.NewListener(ln, cfg)
		}
	}
	s.Addr = ln.Addr().String()
	s.Port = ln.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		// Close may run before Serve has registered the listener, which
		// Close then misses: close it here too.
		ln.Close()
		<-done
	})
	return s
}

// SetHooks replaces the hooks.
func (s *Server) SetHooks(h Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = h
}

// Messages returns what was received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Stats are the server's counters.
type Stats struct {
	Connections   int         // in all
	MaxConcurrent int         // open at once, at the most
	Open          int         // open now
	PerConnection map[int]int // messages each connection carried
	HELOs         []string
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	pc := map[int]int{}
	for k, v := range s.perConn {
		pc[k] = v
	}
	return Stats{Connections: s.conns, MaxConcurrent: s.maxOpen, Open: s.open, PerConnection: pc, HELOs: append([]string(nil), s.helos...)}
}

type session struct {
	s    *Server
	c    *smtp.Conn
	id   int
	from string
	to   []string
	user string
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns++
	s.open++
	s.maxOpen = max(s.maxOpen, s.open)
	s.helos = append(s.helos, c.Hostname())
	return &session{s: s, c: c, id: s.conns}, nil
}

func (ss *session) hooks() Hooks {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	return ss.s.hooks
}

func (ss *session) AuthMechanisms() []string {
	if len(ss.s.opts.Users) == 0 {
		return nil
	}
	if ss.s.opts.Mechanisms != nil {
		return ss.s.opts.Mechanisms
	}
	return []string{sasl.Plain, sasl.Login}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if p, ok := ss.s.opts.Users[user]; !ok || p != pass {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	case "CRAM-MD5":
		return &cramServer{users: ss.s.opts.Users, ok: func(u string) { ss.user = u }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) authorised() error {
	if len(ss.s.opts.Users) > 0 && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := ss.authorised(); err != nil {
		return err
	}
	if h := ss.hooks().Mail; h != nil {
		if err := h(from); err != nil {
			return ss.reply(err)
		}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if h := ss.hooks().Rcpt; h != nil {
		if err := h(to); err != nil {
			return ss.reply(err)
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: ss.from, To: ss.to, Data: data, Conn: ss.id, User: ss.user}
	if h := ss.hooks().Data; h != nil {
		if err := h(m); err != nil {
			return ss.reply(err)
		}
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, m)
	ss.s.perConn[ss.id]++
	ss.s.mu.Unlock()
	return nil
}

// reply drops the connection for ErrDrop, else returns err as the reply.
func (ss *session) reply(err error) error {
	if err == ErrDrop {
		ss.c.Conn().Close()
	}
	return err
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	ss.s.open--
	return nil
}

type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(resp) > 0 { // initial response: the username
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

// cramServer is RFC 2195 CRAM-MD5's server side, for testing the client.
type cramServer struct {
	users     map[string]string
	ok        func(string)
	challenge []byte
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		c.challenge = []byte("<1896.697170952@mx.test>")
		return c.challenge, false, nil
	}
	user, digest, _ := bytes.Cut(resp, []byte(" "))
	pass, known := c.users[string(user)]
	if !known || string(digest) != cramDigest(pass, c.challenge) {
		return nil, true, smtp.ErrAuthFailed
	}
	c.ok(string(user))
	return nil, true, nil
}

// SelfSigned returns a server TLS configuration with a fresh self-signed
// certificate for localhost, 127.0.0.1 and names, the certificate's PEM,
// and a pool that trusts it.
func SelfSigned(t testing.TB, names ...string) (*tls.Config, []byte, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: append([]string{"localhost"}, names...), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	pemBytes := pemEncode(der)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pemBytes, pool
}
