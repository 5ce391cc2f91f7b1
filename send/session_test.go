package send_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"

	"github.com/relayctl/relayctl/internal/dnstest"
	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/send"
)

const helo = "relay.example.org"

// testTimeouts are long enough never to be what ends a test, short enough
// that a hang fails it.
var testTimeouts = send.Timeouts{Dial: 2 * time.Second, Command: 2 * time.Second, Final: 2 * time.Second}

// upstreamDialer returns a dialer for the upstream URL raw, trusting the
// server's test CA, with password set.
func upstreamDialer(t *testing.T, srv *smtptest.Server, raw, password string) *send.Dialer {
	t.Helper()
	up, err := send.ParseUpstream(raw)
	if err != nil {
		t.Fatal(err)
	}
	up.Password = password
	d := &send.Dialer{HELO: helo, Timeouts: testTimeouts, Upstream: up}
	if srv.Pool != nil {
		d.TLS = &tls.Config{RootCAs: srv.Pool}
	}
	return d
}

func testMessage(to string) []byte {
	return []byte("From: news@example.org\r\nTo: " + to + "\r\nSubject: test\r\n\r\nHello\r\n")
}

// sendOne delivers one message on a fresh session and closes it.
func sendOne(t *testing.T, d *send.Dialer, to string) *send.Session {
	t.Helper()
	ctx := context.Background()
	s, err := d.Open(ctx, "example.com")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	outs, err := s.Send(ctx, "news@example.org", []string{to}, testMessage(to))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if outs[0].Kind != send.Sent {
		t.Fatalf("outcome %v (%s), want sent", outs[0].Kind, outs[0].Reply())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	return s
}

func checkHELOs(t *testing.T, srv *smtptest.Server, want int) {
	t.Helper()
	helos := srv.Stats().HELOs
	if len(helos) != want {
		t.Errorf("server saw %d EHLOs %q, want %d", len(helos), helos, want)
	}
	for _, h := range helos {
		if h != helo {
			t.Errorf("EHLO %q, want %q", h, helo)
		}
	}
}

// TestUpstreamAuth authenticates with each mechanism over STARTTLS
// (smtp://) and implicit TLS (smtps://).
func TestUpstreamAuth(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"smtp", "smtps"} {
		for _, mech := range []string{"PLAIN", "LOGIN", "CRAM-MD5"} {
			t.Run(scheme+"/"+mech, func(t *testing.T) {
				t.Parallel()
				srv := smtptest.Start(t, smtptest.Options{TLS: scheme == "smtp", Implicit: scheme == "smtps",
					Users: map[string]string{"postmaster": "s3cret"}, Mechanisms: []string{mech}})
				d := upstreamDialer(t, srv, fmt.Sprintf("%s://postmaster@127.0.0.1:%d", scheme, srv.Port), "s3cret")
				s := sendOne(t, d, "someone@example.com")
				if !s.TLS {
					t.Error("session not over TLS")
				}
				msgs := srv.Messages()
				if len(msgs) != 1 || msgs[0].User != "postmaster" {
					t.Fatalf("server got %+v, want one message from user postmaster", msgs)
				}
				if msgs[0].From != "news@example.org" || len(msgs[0].To) != 1 || msgs[0].To[0] != "someone@example.com" {
					t.Errorf("envelope %s → %v", msgs[0].From, msgs[0].To)
				}
				// With STARTTLS, one EHLO before it and one after: both
				// the dialer's name, never go-smtp's "localhost".
				ehlos := 1
				if scheme == "smtp" {
					ehlos = 2
				}
				checkHELOs(t, srv, ehlos)
			})
		}
	}
}

func TestUpstreamWrongPassword(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"smtp", "smtps"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.Options{TLS: scheme == "smtp", Implicit: scheme == "smtps",
				Users: map[string]string{"postmaster": "s3cret"}})
			d := upstreamDialer(t, srv, fmt.Sprintf("%s://postmaster@127.0.0.1:%d", scheme, srv.Port), "wrong")
			s, err := d.Open(context.Background(), "example.com")
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded with a wrong password")
			}
			var fe *send.FatalError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want a *send.FatalError", err, err)
			}
			if o := send.Classify(err); o.Kind != send.Fatal {
				t.Errorf("Classify: %v, want fatal", o.Kind)
			}
			if !strings.Contains(err.Error(), "password") {
				t.Errorf("error %q does not say to check the password", err)
			}
		})
	}
}

func TestUpstreamWithoutSTARTTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: map[string]string{"postmaster": "s3cret"}})
	d := upstreamDialer(t, srv, fmt.Sprintf("smtp://postmaster@127.0.0.1:%d", srv.Port), "s3cret")
	s, err := d.Open(context.Background(), "example.com")
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded over plaintext with STARTTLS required")
	}
	var fe *send.FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *send.FatalError", err, err)
	}
	if !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("error %q does not name STARTTLS", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("a message went through")
	}
}

func TestUpstreamUntrustedCertificate(t *testing.T) {
	for _, scheme := range []string{"smtp", "smtps"} {
		t.Run(scheme, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{TLS: scheme == "smtp", Implicit: scheme == "smtps"})
			d := upstreamDialer(t, srv, fmt.Sprintf("%s://127.0.0.1:%d", scheme, srv.Port), "")
			d.TLS = nil // the system's roots: the test CA is not among them
			s, err := d.Open(context.Background(), "example.com")
			if err == nil {
				s.Close()
				t.Fatal("Open trusted a self-signed certificate")
			}
			if !strings.Contains(err.Error(), "TLS") {
				t.Errorf("error %q does not name TLS", err)
			}
			if len(srv.Messages()) != 0 {
				t.Error("a message went through")
			}
		})
	}
}

func plainUpstream(t *testing.T, srv *smtptest.Server) *send.Dialer {
	t.Helper()
	return upstreamDialer(t, srv, fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", srv.Port), "")
}

func TestSendRefusedRecipient(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	srv.SetHooks(smtptest.Hooks{Rcpt: func(to string) error {
		if strings.HasPrefix(to, "gone@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
		}
		if strings.HasPrefix(to, "later@") {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
		}
		return nil
	}})
	ctx := context.Background()
	s, err := plainUpstream(t, srv).Open(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	to := []string{"a@example.com", "gone@example.com", "later@example.net", "b@example.net"}
	outs, err := s.Send(ctx, "news@example.org", to, testMessage("list@example.org"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := []struct {
		kind     send.Kind
		suppress bool
	}{{send.Sent, false}, {send.Bounced, true}, {send.Deferred, false}, {send.Sent, false}}
	for i, w := range want {
		if outs[i].Kind != w.kind || outs[i].Suppress != w.suppress {
			t.Errorf("%s: %v (suppress %v, %q), want %v (suppress %v)", to[i], outs[i].Kind, outs[i].Suppress, outs[i].Reply(), w.kind, w.suppress)
		}
	}
	if outs[1].Reply() != "550 5.1.1 User unknown" {
		t.Errorf("refused recipient's reply %q", outs[1].Reply())
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "a@example.com,b@example.net" {
		t.Fatalf("server got %+v, want one message to a@ and b@", msgs)
	}
	if s.Messages != 1 {
		t.Errorf("session counts %d messages, want 1", s.Messages)
	}

	// Every recipient refused: no DATA, and the session is still usable.
	outs, err = s.Send(ctx, "news@example.org", []string{"gone@example.com"}, testMessage("gone@example.com"))
	if err != nil || outs[0].Kind != send.Bounced {
		t.Fatalf("all refused: %v, %v", outs, err)
	}
	outs, err = s.Send(ctx, "news@example.org", []string{"c@example.com"}, testMessage("c@example.com"))
	if err != nil || outs[0].Kind != send.Sent {
		t.Fatalf("after a refused transaction: %v, %v", outs, err)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("server got %d messages, want 2", n)
	}
	if pc := srv.Stats().PerConnection; len(pc) != 1 {
		t.Errorf("messages per connection %v, want one connection", pc)
	}
}

func TestSendDroppedMidData(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	srv.SetHooks(smtptest.Hooks{Data: func(smtptest.Message) error { return smtptest.ErrDrop }})
	ctx := context.Background()
	s, err := plainUpstream(t, srv).Open(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abort()
	outs, err := s.Send(ctx, "news@example.org", []string{"a@example.com", "b@example.com"}, testMessage("a@example.com"))
	if err == nil {
		t.Fatal("Send returned no error on a dropped connection")
	}
	for i, o := range outs {
		if o.Kind != send.Deferred || o.Suppress {
			t.Errorf("recipient %d: %v (%q), want deferred", i, o.Kind, o.Reply())
		}
	}
	if len(srv.Messages()) != 0 {
		t.Error("the server kept the message")
	}
}

// TestSendCancel: cancelling the context ends a transaction the server is
// sitting on at once, not after the final-reply timeout.
func TestSendCancel(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	srv.SetHooks(smtptest.Hooks{Data: func(smtptest.Message) error {
		close(entered)
		<-release
		return nil
	}})
	t.Cleanup(func() { close(release) }) // before the server stops
	d := plainUpstream(t, srv)
	d.Timeouts.Final = time.Minute
	s, err := d.Open(context.Background(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Abort()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		outs []send.Outcome
		err  error
	}
	done := make(chan result, 1)
	go func() {
		outs, err := s.Send(ctx, "news@example.org", []string{"a@example.com"}, testMessage("a@example.com"))
		done <- result{outs, err}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the message never reached the server")
	}
	cancel()
	select {
	case r := <-done:
		if r.err == nil {
			t.Fatal("Send succeeded after cancellation")
		}
		if r.outs[0].Kind != send.Deferred {
			t.Errorf("outcome %v (%q), want deferred", r.outs[0].Kind, r.outs[0].Reply())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send still running 5s after cancellation")
	}
}

// TestOpenCancel: a server that accepts and never greets does not hold
// Open past its context.
func TestOpenCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	up, err := send.ParseUpstream("smtp://" + ln.Addr().String() + "?tls=none")
	if err != nil {
		t.Fatal(err)
	}
	d := &send.Dialer{HELO: helo, Timeouts: send.Timeouts{Dial: 5 * time.Second, Command: time.Minute, Final: time.Minute}, Upstream: up}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		s, err := d.Open(ctx, "example.com")
		if s != nil {
			s.Abort()
		}
		done <- err
	}()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("never connected")
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Open succeeded without a greeting")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open still waiting for the greeting 5s after cancellation")
	}
}

// directDialer returns a dialer resolving through zone's server and
// connecting to port on every MX.
func directDialer(t *testing.T, zone *dnstest.Server, srv *smtptest.Server) *send.Dialer {
	t.Helper()
	res, err := listclean.NewResolver(zone.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := &send.Dialer{HELO: helo, Timeouts: testTimeouts, Resolver: plan.MXResolver{R: res}, Port: srv.Port}
	if srv.Pool != nil {
		d.TLS = &tls.Config{RootCAs: srv.Pool}
	}
	return d
}

// TestDirectSecondMX: the preferred MX refuses the connection, the
// second takes the message; over plaintext, and over opportunistic
// STARTTLS with a certificate naming the MX host.
func TestDirectSecondMX(t *testing.T) {
	t.Parallel()
	for _, starttls := range []bool{false, true} {
		t.Run(map[bool]string{false: "plaintext", true: "starttls"}[starttls], func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.Options{TLS: starttls, Names: []string{"mx2.two.test"}})
			zone := dnstest.Start(t)
			zone.Add(t,
				"two.test. 300 IN MX 10 mx1.two.test.",
				"two.test. 300 IN MX 20 mx2.two.test.",
				"mx1.two.test. 300 IN A 127.0.0.2", // nothing listens there: refused
				"mx2.two.test. 300 IN A 127.0.0.1",
			)
			d := directDialer(t, zone, srv)
			ctx := context.Background()
			s, err := d.Open(ctx, "two.test")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if s.Host != "mx2.two.test" {
				t.Errorf("session to %q, want mx2.two.test", s.Host)
			}
			if s.TLS != starttls {
				t.Errorf("session TLS %v, want %v", s.TLS, starttls)
			}
			if zone.Queries("mx1.two.test", dns.TypeA) == 0 {
				t.Error("mx1 (preference 10) was not tried first")
			}
			outs, err := s.Send(ctx, "news@example.org", []string{"someone@two.test"}, testMessage("someone@two.test"))
			if err != nil || outs[0].Kind != send.Sent {
				t.Fatalf("Send: %v, %v", outs, err)
			}
			if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].To[0] != "someone@two.test" {
				t.Errorf("server got %+v", msgs)
			}
			ehlos := 1
			if starttls {
				ehlos = 2
			}
			checkHELOs(t, srv, ehlos)
		})
	}
}

func TestDirectNullMX(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	zone := dnstest.Start(t)
	zone.Add(t,
		"null.test. 300 IN MX 0 .",
		"null.test. 300 IN A 127.0.0.1", // an implicit MX, were the null MX ignored
	)
	d := directDialer(t, zone, srv)
	s, err := d.Open(context.Background(), "null.test")
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded for a null MX domain")
	}
	if !errors.Is(err, send.ErrNullMX) {
		t.Errorf("error %v, want ErrNullMX", err)
	}
	if o := send.Classify(err); o.Kind != send.Bounced || !o.Suppress {
		t.Errorf("Classify: %v (suppress %v), want bounced and suppressed", o.Kind, o.Suppress)
	}
	if n := srv.Stats().Connections; n != 0 {
		t.Errorf("%d connections to the server, want none", n)
	}
	if n := zone.Queries("null.test", dns.TypeA); n != 0 {
		t.Errorf("%d A queries for a null MX domain, want none", n)
	}
}
