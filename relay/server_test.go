package relay_test

// Tests of the server side: real clients on loopback against an
// in-process relay.Server. Package-level helpers start with sv so they stay
// clear of the other test files of the package.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/relay"
	"github.com/relayctl/relayctl/store"
)

// Loopback addresses the tests connect from (Linux routes all of
// 127.0.0.0/8 to lo).
var (
	svLoopback1 = net.IPv4(127, 0, 0, 1)
	svLoopback2 = net.IPv4(127, 0, 0, 2)
	svLoopback3 = net.IPv4(127, 0, 0, 3)
	svLoopback4 = net.IPv4(127, 0, 0, 4)
	svLoopback5 = net.IPv4(127, 0, 0, 5)
)

const (
	svAlicePassword = "alice-correct-horse"
	svBobPassword   = "bob-battery-staple"

	svMessage = "From: app@example.com\r\nTo: bob@example.net\r\nSubject: hello\r\n\r\nHello, Bob.\r\n"
)

// Users are hashed once per test binary: bcrypt at its default cost is
// slow, under -race more so.
var (
	svAliceHash = sync.OnceValues(func() (string, error) { return relay.HashPassword(svAlicePassword) })
	svBobHash   = sync.OnceValues(func() (string, error) { return relay.HashPassword(svBobPassword) })
)

// svRelay is a relay.Server on loopback with its own store.
type svRelay struct {
	srv  *relay.Server
	st   *store.Store
	pool *x509.CertPool // trusts the server's certificate

	serving sync.WaitGroup // Serve calls under way
}

// svConfig is a configuration with a certificate and limits no test
// reaches unless it lowers them.
func svConfig(t *testing.T) (relay.Config, *x509.CertPool, []byte) {
	t.Helper()
	tlsConfig, caPEM, pool := smtptest.SelfSigned(t)
	return relay.Config{
		Hostname:       "relay.test",
		TLS:            tlsConfig,
		MaxSize:        1 << 20,
		MaxRecipients:  10,
		CommandTimeout: 10 * time.Second,
		DataTimeout:    10 * time.Second,
	}, pool, caPEM
}

// svStart starts a server with cfg over a fresh durable store; it stops
// when the test ends.
func svStart(t *testing.T, cfg relay.Config, pool *x509.CertPool) *svRelay {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "relayctl.db"), store.Durable)
	if err != nil {
		t.Fatal(err)
	}
	r := &svRelay{srv: relay.NewServer(cfg, st), st: st, pool: pool}
	t.Cleanup(func() {
		r.srv.Close()
		r.serving.Wait()
		st.Close()
	})
	return r
}

// listen serves kind on a new loopback port and returns its address.
func (r *svRelay) listen(t *testing.T, kind relay.Kind) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.serving.Add(1)
	go func() {
		defer r.serving.Done()
		if err := r.srv.Serve(l, kind); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("Serve(%s): %v", kind, err)
		}
	}()
	return l.Addr().String()
}

// addUsers stores alice, who may use CRAM-MD5, and bob, who may not.
func (r *svRelay) addUsers(t *testing.T) {
	t.Helper()
	for _, u := range []struct {
		name string
		hash func() (string, error)
		cram string
	}{{"alice", svAliceHash, svAlicePassword}, {"bob", svBobHash, ""}} {
		h, err := u.hash()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.st.PutUser(context.Background(), store.User{Name: u.name, Hash: h, CRAM: u.cram}, false); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *svRelay) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1"}
}

// queue returns what the store holds queued.
func (r *svRelay) queue(t *testing.T) []store.QueueEntry {
	t.Helper()
	var q []store.QueueEntry
	if err := r.st.EachQueued(context.Background(), func(e store.QueueEntry) error {
		q = append(q, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return q
}

// queued returns one queued message, its recipients and its body.
func (r *svRelay) queued(t *testing.T, id int64) (store.QueueEntry, []string, []byte) {
	t.Helper()
	e, rs, body, err := r.st.QueuedMessage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var rcpts []string
	for _, rc := range rs {
		rcpts = append(rcpts, rc.Rcpt)
	}
	return e, rcpts, body
}

// svDial connects to addr from the loopback address from.
func svDial(t *testing.T, addr string, from net.IP) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// svClient is an SMTP client on a plain connection from from, which has
// said EHLO client.test.
func svClient(t *testing.T, addr string, from net.IP) *smtp.Client {
	t.Helper()
	c := smtp.NewClient(svDial(t, addr, from))
	c.CommandTimeout = 10 * time.Second
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

// startTLSClient is an SMTP client from from that has done STARTTLS and
// said EHLO client.test over TLS.
func (r *svRelay) startTLSClient(t *testing.T, addr string, from net.IP) *smtp.Client {
	t.Helper()
	c, err := smtp.NewClientStartTLS(svDial(t, addr, from), r.tlsConfig())
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	c.CommandTimeout = 10 * time.Second
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("EHLO after STARTTLS: %v", err)
	}
	return c
}

// tlsClient is an SMTP client over implicit TLS (SMTPS).
func (r *svRelay) tlsClient(t *testing.T, addr string, from net.IP) *smtp.Client {
	t.Helper()
	c := smtp.NewClient(tls.Client(svDial(t, addr, from), r.tlsConfig()))
	c.CommandTimeout = 10 * time.Second
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("EHLO over TLS: %v", err)
	}
	return c
}

var svQueuedAs = regexp.MustCompile(`queued as (\d+)$`)

// svSend runs one transaction and returns the queue id the 250 names.
func svSend(c *smtp.Client, from string, to []string, msg string) (int64, error) {
	if err := c.Mail(from, nil); err != nil {
		return 0, err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			return 0, err
		}
	}
	w, err := c.Data()
	if err != nil {
		return 0, err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return 0, err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return 0, err
	}
	m := svQueuedAs.FindStringSubmatch(resp.StatusText)
	if m == nil {
		return 0, errors.New("250 without a queue id: " + resp.StatusText)
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// svMustSend is svSend, failing the test on a refusal.
func svMustSend(t *testing.T, c *smtp.Client, from string, to []string, msg string) int64 {
	t.Helper()
	id, err := svSend(c, from, to, msg)
	if err != nil {
		t.Fatalf("sending from %s to %v: %v", from, to, err)
	}
	return id
}

// svWantReply fails unless err is the SMTP reply code and enh.
func svWantReply(t *testing.T, what string, err error, code int, enh smtp.EnhancedCode) *smtp.SMTPError {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("%s: got %v, want an SMTP reply %d %d.%d.%d", what, err, code, enh[0], enh[1], enh[2])
	}
	if se.Code != code || se.EnhancedCode != enh {
		t.Fatalf("%s: got %d %v %q, want %d %v", what, se.Code, se.EnhancedCode, se.Message, code, enh)
	}
	return se
}

// svStillServing checks that a new client gets a greeting and answers.
func svStillServing(t *testing.T, addr string) {
	t.Helper()
	c := svClient(t, addr, svLoopback1)
	if err := c.Noop(); err != nil {
		t.Fatalf("NOOP on a new connection: %v", err)
	}
	c.Quit()
}

// svRaw is an SMTP conversation byte by byte.
type svRaw struct {
	t    *testing.T
	conn net.Conn
	text *textproto.Conn
}

// svDialRaw connects from from and reads the greeting, which must be 220.
func svDialRaw(t *testing.T, addr string, from net.IP) *svRaw {
	t.Helper()
	conn := svDial(t, addr, from)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := &svRaw{t: t, conn: conn, text: textproto.NewConn(conn)}
	if code, msg := r.read(); code != 220 {
		t.Fatalf("greeting: %d %s", code, msg)
	}
	return r
}

// startTLS says STARTTLS and goes on over TLS.
func (r *svRaw) startTLS(cfg *tls.Config) *svRaw {
	r.t.Helper()
	r.expect("STARTTLS", 220)
	tc := tls.Client(r.conn, cfg)
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("TLS handshake: %v", err)
	}
	return &svRaw{t: r.t, conn: tc, text: textproto.NewConn(tc)}
}

// read reads one reply.
func (r *svRaw) read() (int, string) {
	r.t.Helper()
	code, msg, err := r.text.ReadResponse(0)
	if err != nil {
		r.t.Fatalf("reading a reply: %v", err)
	}
	return code, msg
}

// cmd sends a command line and reads its reply.
func (r *svRaw) cmd(line string) (int, string) {
	r.t.Helper()
	r.write(line + "\r\n")
	return r.read()
}

// expect sends a command line and fails unless the reply is code.
func (r *svRaw) expect(line string, code int) string {
	r.t.Helper()
	got, msg := r.cmd(line)
	if got != code {
		r.t.Fatalf("%q: got %d %s, want %d", line, got, msg, code)
	}
	return msg
}

// write sends bytes as they are.
func (r *svRaw) write(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.conn, s); err != nil {
		r.t.Fatalf("writing: %v", err)
	}
}

// svReadUntilClosed reads until the server closes the connection, failing
// the test if it does not within d, and returns what it read.
func svReadUntilClosed(t *testing.T, conn net.Conn, d time.Duration) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v (read %q)", d, b)
	}
	return string(b)
}

func svPlainIR(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// svCRAMClient is CRAM-MD5 (RFC 2195), which go-sasl has no client for.
type svCRAMClient struct{ user, secret string }

func (c svCRAMClient) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c svCRAMClient) Next(challenge []byte) ([]byte, error) {
	m := hmac.New(md5.New, []byte(c.secret))
	m.Write(challenge)
	return []byte(c.user + " " + hex.EncodeToString(m.Sum(nil))), nil
}

func TestRelayRefusesClientsNotAllowed(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	c := svClient(t, addr, svLoopback3)
	for _, rcpt := range []string{
		"bob@example.com",
		"carol@example.net",
		"dave@sub.example.test",
		"postmaster@relay.test", // the relay's own name is no exception
		"root@localhost",
	} {
		if err := c.Mail("app@example.com", nil); err != nil {
			t.Fatalf("MAIL: %v", err)
		}
		err := c.Rcpt(rcpt, nil)
		se := svWantReply(t, "RCPT TO:<"+rcpt+">", err, 554, smtp.EnhancedCode{5, 7, 1})
		if se.Message != "Relay access denied" {
			t.Errorf("RCPT TO:<%s>: message %q, want %q", rcpt, se.Message, "Relay access denied")
		}
		if err := c.Reset(); err != nil {
			t.Fatalf("RSET: %v", err)
		}
	}
	// With no recipient accepted there is nothing to svSend DATA for.
	if err := c.Mail("app@example.com", nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	c.Rcpt("bob@example.com", nil)
	if _, err := c.Data(); err == nil {
		t.Fatal("DATA accepted without an accepted recipient")
	}
	c.Quit()
	if q := r.queue(t); len(q) != 0 {
		t.Fatalf("queued %d messages from a client not allowed to relay: %+v", len(q), q)
	}
}

func TestAuthRequiredOnSubmissionEvenFromAllowedAddress(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	r := svStart(t, cfg, pool)
	submission, smtps := r.listen(t, relay.Submission), r.listen(t, relay.SMTPS)

	for _, tc := range []struct {
		name   string
		client func() *smtp.Client
	}{
		{"submission before STARTTLS", func() *smtp.Client { return svClient(t, submission, svLoopback2) }},
		{"submission after STARTTLS", func() *smtp.Client { return r.startTLSClient(t, submission, svLoopback2) }},
		{"smtps", func() *smtp.Client { return r.tlsClient(t, smtps, svLoopback2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client()
			err := c.Mail("app@example.com", nil)
			svWantReply(t, "MAIL without AUTH", err, 530, smtp.EnhancedCode{5, 7, 0})
			c.Quit()
		})
	}
	if q := r.queue(t); len(q) != 0 {
		t.Fatalf("queued %d messages without AUTH: %+v", len(q), q)
	}
}

func TestRelayAcceptsAllowedClients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		ips     []string
		ranges  []string
		from    net.IP
		allowed bool
	}{
		{name: "listed address", ips: []string{"127.0.0.2"}, from: svLoopback2, allowed: true},
		{name: "other address", ips: []string{"127.0.0.2"}, from: svLoopback3, allowed: false},
		{name: "address in range", ranges: []string{"127.0.0.0/24"}, from: svLoopback5, allowed: true},
		{name: "address outside range", ranges: []string{"127.0.1.0/24"}, from: svLoopback5, allowed: false},
		{name: "one of several", ips: []string{"192.0.2.7", "127.0.0.4"}, ranges: []string{"198.51.100.0/24"}, from: svLoopback4, allowed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &testClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
			cfg, pool, _ := svConfig(t)
			cfg.Now = clock.Now
			for _, ip := range tc.ips {
				cfg.AllowIPs = append(cfg.AllowIPs, netip.MustParseAddr(ip))
			}
			for _, p := range tc.ranges {
				cfg.AllowRanges = append(cfg.AllowRanges, netip.MustParsePrefix(p))
			}
			r := svStart(t, cfg, pool)
			c := svClient(t, r.listen(t, relay.Relay), tc.from)

			to := []string{"bob@example.net", "carol@example.com"}
			id, err := svSend(c, "app@example.com", to, svMessage)
			if !tc.allowed {
				svWantReply(t, "RCPT from "+tc.from.String(), err, 554, smtp.EnhancedCode{5, 7, 1})
				if q := r.queue(t); len(q) != 0 {
					t.Fatalf("queued %+v", q)
				}
				return
			}
			if err != nil {
				t.Fatalf("send from %s: %v", tc.from, err)
			}
			c.Quit()
			q := r.queue(t)
			if len(q) != 1 || q[0].ID != id {
				t.Fatalf("queue holds %+v, want only message %d", q, id)
			}
			e, rcpts, body := r.queued(t, id)
			if e.From != "app@example.com" || e.Client != tc.from.String() || e.User != "" {
				t.Errorf("queued from %q client %q user %q, want app@example.com, %s, no user", e.From, e.Client, e.User, tc.from)
			}
			if strings.Join(rcpts, ",") != strings.Join(to, ",") {
				t.Errorf("recipients %v, want %v", rcpts, to)
			}
			received := "Received: from client.test ([" + tc.from.String() + "])\r\n\tby relay.test (relayctl) with ESMTP;\r\n\t" +
				clock.Now().Format(time.RFC1123Z) + "\r\n"
			if want := received + svMessage; string(body) != want {
				t.Errorf("queued body:\n%q\nwant\n%q", body, want)
			}
		})
	}
}

func TestAuthenticatedUsersRelay(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	r := svStart(t, cfg, pool)
	r.addUsers(t)
	submission, smtps := r.listen(t, relay.Submission), r.listen(t, relay.SMTPS)

	for _, tc := range []struct {
		name string
		kind relay.Kind
		auth sasl.Client
		user string
	}{
		{"PLAIN after STARTTLS", relay.Submission, sasl.NewPlainClient("", "alice", svAlicePassword), "alice"},
		{"PLAIN as itself", relay.Submission, sasl.NewPlainClient("bob", "bob", svBobPassword), "bob"},
		{"LOGIN after STARTTLS", relay.Submission, sasl.NewLoginClient("bob", svBobPassword), "bob"},
		{"CRAM-MD5 after STARTTLS", relay.Submission, svCRAMClient{"alice", svAlicePassword}, "alice"},
		{"PLAIN over SMTPS", relay.SMTPS, sasl.NewPlainClient("", "bob", svBobPassword), "bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *smtp.Client
			if tc.kind == relay.SMTPS {
				c = r.tlsClient(t, smtps, svLoopback1)
			} else {
				c = r.startTLSClient(t, submission, svLoopback1)
			}
			if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN CRAM-MD5" {
				t.Errorf("EHLO over TLS advertises AUTH %v %q, want PLAIN LOGIN CRAM-MD5", ok, mechs)
			}
			if err := c.Auth(tc.auth); err != nil {
				t.Fatalf("AUTH: %v", err)
			}
			id := svMustSend(t, c, tc.user+"@example.com", []string{"dave@example.net"}, svMessage)
			c.Quit()
			e, rcpts, body := r.queued(t, id)
			if e.User != tc.user || e.From != tc.user+"@example.com" || len(rcpts) != 1 || rcpts[0] != "dave@example.net" {
				t.Errorf("queued user %q from %q to %v, want %s, %s@example.com, [dave@example.net]", e.User, e.From, rcpts, tc.user, tc.user)
			}
			if !bytes.HasPrefix(body, []byte("Received: from client.test ([127.0.0.1])\r\n\tby relay.test (relayctl) with ESMTPSA;\r\n")) {
				t.Errorf("queued body does not begin with the Received field of an authenticated TLS session:\n%q", body)
			}
		})
	}
}

func TestAuthFailuresAreRefused(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	r := svStart(t, cfg, pool)
	r.addUsers(t)
	addr := r.listen(t, relay.Submission)

	for _, tc := range []struct {
		name string
		auth sasl.Client
	}{
		{"wrong password", sasl.NewPlainClient("", "alice", "not-alices-password")},
		{"unknown user", sasl.NewPlainClient("", "mallory", svAlicePassword)},
		{"acting as another user", sasl.NewPlainClient("alice", "bob", svBobPassword)},
		{"LOGIN with wrong password", sasl.NewLoginClient("bob", svAlicePassword)},
		{"CRAM-MD5 for a user without it", svCRAMClient{"bob", svBobPassword}},
		{"CRAM-MD5 with wrong secret", svCRAMClient{"alice", svBobPassword}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := r.startTLSClient(t, addr, svLoopback1)
			err := c.Auth(tc.auth)
			svWantReply(t, "AUTH", err, 535, smtp.EnhancedCode{5, 7, 8})
			// Not authenticated: submission still wants AUTH.
			err = c.Mail("alice@example.com", nil)
			svWantReply(t, "MAIL after a failed AUTH", err, 530, smtp.EnhancedCode{5, 7, 0})
		})
	}
	if q := r.queue(t); len(q) != 0 {
		t.Fatalf("queued %+v", q)
	}
}

func TestAuthRefusedAfterThreeFailures(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	r := svStart(t, cfg, pool)
	r.addUsers(t)
	addr := r.listen(t, relay.Submission)

	s := svDialRaw(t, addr, svLoopback1)
	s.expect("EHLO client.test", 250)
	s = s.startTLS(r.tlsConfig())
	s.expect("EHLO client.test", 250)
	for i := range 3 {
		if msg := s.expect("AUTH PLAIN "+svPlainIR("alice", "guess-"+strconv.Itoa(i)), 535); !strings.HasPrefix(msg, "5.7.8 ") {
			t.Fatalf("failure %d: 535 %s, want 5.7.8", i+1, msg)
		}
	}
	// The right password no longer helps on this connection.
	code, msg := s.cmd("AUTH PLAIN " + svPlainIR("alice", svAlicePassword))
	if code != 421 || !strings.HasPrefix(msg, "4.7.0 ") {
		t.Fatalf("fourth AUTH, with the right password: %d %s, want 421 4.7.0", code, msg)
	}
	// 421 means the server closes the connection: it does.
	if rest := svReadUntilClosed(t, s.conn, 5*time.Second); rest != "" {
		t.Errorf("after the 421 the server said %q, want nothing", rest)
	}

	// Another connection starts afresh.
	c := r.startTLSClient(t, addr, svLoopback1)
	if err := c.Auth(sasl.NewPlainClient("", "alice", svAlicePassword)); err != nil {
		t.Fatalf("AUTH on a new connection: %v", err)
	}
	svMustSend(t, c, "alice@example.com", []string{"bob@example.net"}, svMessage)
}

func TestAuthNeedsTLSExceptOnLoopbackRelayPort(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	r := svStart(t, cfg, pool)
	r.addUsers(t)
	submission, plain := r.listen(t, relay.Submission), r.listen(t, relay.Relay)

	t.Run("submission before STARTTLS", func(t *testing.T) {
		s := svDialRaw(t, submission, svLoopback1)
		ehlo := s.expect("EHLO client.test", 250)
		if !strings.Contains(ehlo, "\nSTARTTLS") {
			t.Errorf("EHLO does not advertise STARTTLS:\n%s", ehlo)
		}
		if strings.Contains(ehlo, "\nAUTH") {
			t.Errorf("EHLO advertises AUTH before STARTTLS:\n%s", ehlo)
		}
		code, msg := s.cmd("AUTH PLAIN " + svPlainIR("alice", svAlicePassword))
		if code/100 != 5 {
			t.Fatalf("AUTH before STARTTLS: %d %s, want a 5xx refusal", code, msg)
		}
		if code, msg := s.cmd("MAIL FROM:<alice@example.com>"); code != 530 {
			t.Fatalf("MAIL after AUTH before STARTTLS: %d %s, want 530 (not authenticated)", code, msg)
		}
	})

	t.Run("relay port on loopback without TLS", func(t *testing.T) {
		c := svClient(t, plain, svLoopback1)
		if _, ok := c.TLSConnectionState(); ok {
			t.Fatal("TLS on a plain connection")
		}
		if !c.SupportsAuth("PLAIN") {
			t.Fatal("EHLO on the loopback relay port does not advertise AUTH PLAIN")
		}
		if err := c.Auth(sasl.NewPlainClient("", "bob", svBobPassword)); err != nil {
			t.Fatalf("AUTH: %v", err)
		}
		// 127.0.0.1 is not in AllowIPs: only AUTH lets it relay.
		id := svMustSend(t, c, "bob@example.com", []string{"carol@example.net"}, svMessage)
		c.Quit()
		e, _, body := r.queued(t, id)
		if e.User != "bob" {
			t.Errorf("queued user %q, want bob", e.User)
		}
		if !bytes.Contains(body[:bytes.Index(body, []byte(";"))], []byte("with ESMTPA")) {
			t.Errorf("Received field does not say ESMTPA: %q", body)
		}
	})
}

// RFC 3207 §4.2: after STARTTLS the server forgets what it knew of the
// client, AUTH included.
func TestSTARTTLSForgetsEarlierAuth(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	r := svStart(t, cfg, pool)
	r.addUsers(t)
	addr := r.listen(t, relay.Relay)

	s := svDialRaw(t, addr, svLoopback1)
	s.expect("EHLO client.test", 250)
	s.expect("AUTH PLAIN "+svPlainIR("bob", svBobPassword), 235)
	s = s.startTLS(r.tlsConfig())
	if ehlo := s.expect("EHLO client.test", 250); !strings.Contains(ehlo, "\nAUTH PLAIN") {
		t.Errorf("EHLO after STARTTLS does not offer AUTH again:\n%s", ehlo)
	}
	s.expect("MAIL FROM:<bob@example.com>", 250)
	// 127.0.0.1 may not relay unless authenticated.
	if code, msg := s.cmd("RCPT TO:<carol@example.net>"); code != 554 {
		t.Fatalf("RCPT after STARTTLS without AUTH again: %d %s, want 554", code, msg)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	cfg.MaxSize = 1024
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	c := svClient(t, addr, svLoopback1)
	if size, ok := c.MaxMessageSize(); !ok || size != 1024 {
		t.Errorf("EHLO SIZE %d %v, want 1024", size, ok)
	}
	err := c.Mail("app@example.com", &smtp.MailOptions{Size: 2048})
	svWantReply(t, "MAIL FROM SIZE=2048", err, 552, smtp.EnhancedCode{5, 3, 4})

	big := svMessage + strings.Repeat("0123456789abcdef012345678901234567890123456789abcdef0123456789\r\n", 64)
	_, err = svSend(c, "app@example.com", []string{"bob@example.net"}, big)
	svWantReply(t, "DATA of 4 KiB", err, 552, smtp.EnhancedCode{5, 3, 4})

	// The session goes on, and so does the server.
	id := svMustSend(t, c, "app@example.com", []string{"bob@example.net"}, svMessage)
	c.Quit()
	if q := r.queue(t); len(q) != 1 || q[0].ID != id {
		t.Fatalf("queue %+v, want only the small message %d", q, id)
	}
	svStillServing(t, addr)
}

func TestRecipientsPerMessageLimit(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	cfg.MaxRecipients = 2
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	c := svClient(t, addr, svLoopback1)
	if err := c.Mail("app@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"a@example.net", "b@example.net"} {
		if err := c.Rcpt(rcpt, nil); err != nil {
			t.Fatalf("RCPT %s: %v", rcpt, err)
		}
	}
	err := c.Rcpt("c@example.net", nil)
	svWantReply(t, "third RCPT", err, 452, smtp.EnhancedCode{4, 5, 3})
	// The two accepted recipients still get the message.
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, svMessage)
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	c.Quit()
	q := r.queue(t)
	if len(q) != 1 {
		t.Fatalf("queue %+v, want one message", q)
	}
	if _, rcpts, _ := r.queued(t, q[0].ID); strings.Join(rcpts, ",") != "a@example.net,b@example.net" {
		t.Errorf("queued for %v, want the first two", rcpts)
	}
	svStillServing(t, addr)
}

func TestMessagesPerMinuteLimit(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	cfg, pool, _ := svConfig(t)
	cfg.MessagesPerMinute = 2
	cfg.Now = clock.Now
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	c := svClient(t, addr, svLoopback1)
	for range 2 {
		svMustSend(t, c, "app@example.com", []string{"bob@example.net"}, svMessage)
		clock.Advance(time.Second)
	}
	err := c.Mail("app@example.com", nil)
	svWantReply(t, "third MAIL within a minute", err, 450, smtp.EnhancedCode{4, 7, 1})
	// The limit is the client's, not the connection's.
	c2 := svClient(t, addr, svLoopback1)
	err = c2.Mail("app@example.com", nil)
	svWantReply(t, "MAIL on a second connection", err, 450, smtp.EnhancedCode{4, 7, 1})

	clock.Advance(57 * time.Second)
	err = c.Mail("app@example.com", nil)
	svWantReply(t, "MAIL 59s after the first", err, 450, smtp.EnhancedCode{4, 7, 1})
	clock.Advance(time.Second) // the first has left the window, the second not
	svMustSend(t, c, "app@example.com", []string{"bob@example.net"}, svMessage)
	err = c.Mail("app@example.com", nil)
	svWantReply(t, "MAIL after the window reopened for one", err, 450, smtp.EnhancedCode{4, 7, 1})
	c.Quit()
	if q := r.queue(t); len(q) != 3 {
		t.Fatalf("queued %d messages, want 3", len(q))
	}
	svStillServing(t, addr)
}

func TestRecipientsPerHourLimit(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	cfg, pool, _ := svConfig(t)
	cfg.RecipientsPerHour = 3
	cfg.Now = clock.Now
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	c := svClient(t, addr, svLoopback1)
	svMustSend(t, c, "app@example.com", []string{"a@example.net", "b@example.net"}, svMessage)
	clock.Advance(10 * time.Minute)
	if err := c.Mail("app@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("c@example.net", nil); err != nil {
		t.Fatalf("third recipient of the hour: %v", err)
	}
	// Two recipients in this message, MaxRecipients 10: the hour's limit.
	se := svWantReply(t, "fourth recipient of the hour", c.Rcpt("d@example.net", nil), 452, smtp.EnhancedCode{4, 5, 3})
	if !strings.Contains(se.Message, "an hour") {
		t.Errorf("452 %q does not name the hourly limit", se.Message)
	}
	c.Reset()

	clock.Advance(50 * time.Minute) // an hour after the first two
	svMustSend(t, c, "app@example.com", []string{"d@example.net", "e@example.net"}, svMessage)
	c.Quit()
	svStillServing(t, addr)
}

func TestConnectionsPerIPLimit(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	cfg.ConnsPerIP = 2
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	first := svDialRaw(t, addr, svLoopback1)
	svDialRaw(t, addr, svLoopback1)
	third := svDial(t, addr, svLoopback1)
	if got := svReadUntilClosed(t, third, 5*time.Second); !strings.HasPrefix(got, "421 4.7.0 ") {
		t.Fatalf("third connection got %q, want a 421 4.7.0 greeting and the end", got)
	}
	// Another address has its own count.
	other := svDialRaw(t, addr, svLoopback2)
	other.expect("QUIT", 221)

	first.expect("QUIT", 221)
	eventually(t, 5*time.Second, "no connection accepted after one of two closed", func() bool {
		conn := svDial(t, addr, svLoopback1)
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := textproto.NewReader(bufio.NewReader(conn)).ReadLine()
		return strings.HasPrefix(line, "220 ")
	}, nil)
}

func TestCommandTimeoutDisconnectsIdleClient(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	cfg.CommandTimeout = 200 * time.Millisecond
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	s := svDialRaw(t, addr, svLoopback1)
	s.expect("EHLO client.test", 250)
	start := time.Now()
	got := svReadUntilClosed(t, s.conn, 5*time.Second)
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Errorf("closed after %v, before the timeout", elapsed)
	}
	if !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Errorf("idle client got %q, want 421 4.4.2", got)
	}
	svStillServing(t, addr)
}

func TestDataTimeoutDisconnectsStalledClient(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	cfg.DataTimeout = 200 * time.Millisecond
	cfg.CommandTimeout = 30 * time.Second // so only DataTimeout can end it soon
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	s := svDialRaw(t, addr, svLoopback1)
	s.expect("EHLO client.test", 250)
	s.expect("MAIL FROM:<app@example.com>", 250)
	s.expect("RCPT TO:<bob@example.net>", 250)
	s.expect("DATA", 354)
	s.write("Subject: stalled\r\n\r\nThe first line, and then")
	got := svReadUntilClosed(t, s.conn, 5*time.Second)
	if !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Errorf("a client stalled within DATA got %q, want 421 4.4.2 and the end", got)
	}
	if q := r.queue(t); len(q) != 0 {
		t.Fatalf("queued %+v", q)
	}
	svStillServing(t, addr)
}

func TestDataWithBareLineEndsIsRefused(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)

	const smuggled = "MAIL FROM:<evil@example.net>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\n" +
		"From: evil@example.net\r\nSubject: smuggled\r\n\r\nGotcha.\r\n"
	wantQueued := 0
	for _, tc := range []struct {
		name, fakeEnd string
		// go-smtp's DATA reader drops the CR of a line ".\r" not
		// followed by LF, so the relay never sees that bare CR: it may
		// accept the message, but must not take what follows for commands.
		mayAccept bool
	}{
		{name: "LF dot CRLF", fakeEnd: "\n.\r\n"},
		{name: "CR dot CRLF", fakeEnd: "\r.\r\n"},
		{name: "LF dot LF", fakeEnd: "\n.\n"},
		{name: "CRLF dot LF", fakeEnd: "\r\n.\n"},
		{name: "LF dot CR", fakeEnd: "\n.\r"},
		{name: "CR dot CR", fakeEnd: "\r.\r"},
		{name: "CRLF dot CR", fakeEnd: "\r\n.\r", mayAccept: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := svDialRaw(t, addr, svLoopback1)
			s.expect("EHLO client.test", 250)
			s.expect("MAIL FROM:<app@example.com>", 250)
			s.expect("RCPT TO:<bob@example.net>", 250)
			s.expect("DATA", 354)
			s.write("From: app@example.com\r\nSubject: hi\r\n\r\nHello" + tc.fakeEnd + smuggled + "\r\n.\r\n")
			code, msg := s.read()
			refused := code == 554 && strings.HasPrefix(msg, "5.6.0 ")
			if !refused && !(tc.mayAccept && code == 250) {
				t.Fatalf("message with %q: %d %s, want 554 5.6.0", tc.fakeEnd, code, msg)
			}
			if !refused {
				wantQueued++
			}
			// The next reply is NOOP's: the smuggled lines were not taken
			// for commands.
			if msg := s.expect("NOOP", 250); !strings.Contains(msg, "nothing") {
				t.Fatalf("NOOP got %q: the session is out of step", msg)
			}
			// The session survives for honest mail.
			s.expect("MAIL FROM:<app@example.com>", 250)
			s.expect("RCPT TO:<bob@example.net>", 250)
			s.expect("DATA", 354)
			s.write(svMessage + ".\r\n")
			msg = s.readCode(250)
			m := svQueuedAs.FindStringSubmatch(msg)
			if m == nil {
				t.Fatalf("250 %s names no queue id", msg)
			}
			s.expect("QUIT", 221)
			id, _ := strconv.ParseInt(m[1], 10, 64)
			e, rcpts, _ := r.queued(t, id)
			if e.From != "app@example.com" || strings.Join(rcpts, ",") != "bob@example.net" {
				t.Errorf("queued from %s to %v", e.From, rcpts)
			}
			wantQueued++
		})
	}
	q := r.queue(t)
	if len(q) != wantQueued {
		t.Errorf("queued %d messages, want %d", len(q), wantQueued)
	}
	for _, e := range q {
		_, rcpts, _ := r.queued(t, e.ID)
		if e.From != "app@example.com" || strings.Join(rcpts, ",") != "bob@example.net" {
			t.Errorf("queued a smuggled envelope: from %s to %v", e.From, rcpts)
		}
	}
}

// readCode reads one reply and fails unless it is code.
func (r *svRaw) readCode(code int) string {
	r.t.Helper()
	got, msg := r.read()
	if got != code {
		r.t.Fatalf("got %d %s, want %d", got, msg, code)
	}
	return msg
}

// svLog is a log destination the server's goroutines share.
type svLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *svLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *svLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log lines with message msg.
func (b *svLog) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestSessionLogLines(t *testing.T) {
	t.Parallel()
	logs := &svLog{}
	cfg, pool, _ := svConfig(t)
	cfg.Log = slog.New(slog.NewJSONHandler(logs, nil))
	r := svStart(t, cfg, pool)
	r.addUsers(t)
	addr := r.listen(t, relay.Submission)

	c := r.startTLSClient(t, addr, svLoopback4)
	if err := c.Auth(sasl.NewPlainClient("", "alice", svAlicePassword)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	to := []string{"bob@example.net", "carol@example.com"}
	id := svMustSend(t, c, "alice@example.com", to, svMessage)
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	// Shutdown returns once every session has ended, and so logged.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	sessions := logs.lines(t, "session")
	if len(sessions) != 1 {
		t.Fatalf("%d session lines, want 1 for one connection:\n%s", len(sessions), logs.String())
	}
	s := sessions[0]
	for k, want := range map[string]any{"client": "127.0.0.4", "user": "alice", "tls": true, "messages": 1.0,
		"recipients": 2.0, "port": "submission", "helo": "client.test", "rejected": 0.0} {
		if s[k] != want {
			t.Errorf("session line %s = %v, want %v (%v)", k, s[k], want, s)
		}
	}

	queued := logs.lines(t, "queued")
	if len(queued) != 1 {
		t.Fatalf("%d queued lines, want 1:\n%s", len(queued), logs.String())
	}
	_, _, body := r.queued(t, id)
	q := queued[0]
	for k, want := range map[string]any{"queue_id": float64(id), "from": "alice@example.com",
		"to": "bob@example.net,carol@example.com", "size": float64(len(body)), "user": "alice", "client": "127.0.0.4"} {
		if q[k] != want {
			t.Errorf("queued line %s = %v, want %v (%v)", k, q[k], want, q)
		}
	}
}

func TestCloseEndsServeAndSessions(t *testing.T) {
	t.Parallel()
	cfg, pool, _ := svConfig(t)
	r := svStart(t, cfg, pool)
	addr := r.listen(t, relay.Relay)
	s := svDialRaw(t, addr, svLoopback1)
	s.expect("EHLO client.test", 250)
	r.srv.Close()
	svReadUntilClosed(t, s.conn, 5*time.Second)
	waitServing := make(chan struct{})
	go func() { r.serving.Wait(); close(waitServing) }()
	select {
	case <-waitServing:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}

	// Close right after Serve starts, however the two interleave.
	for range 50 {
		srv := relay.NewServer(cfg, r.st)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l, relay.Relay) }()
		srv.Close()
		select {
		case err := <-served:
			if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after Close")
		}
	}
}
