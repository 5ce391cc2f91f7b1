package send_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/send"
)

const checkPassword = "s3cret-Pa55"

// checkDialer is a dialer for the upstream URL raw; trust adds the test
// server's CA to the roots.
func checkDialer(t *testing.T, srv *smtptest.Server, raw, password string, trust bool) *send.Dialer {
	t.Helper()
	up, err := send.ParseUpstream(raw)
	if err != nil {
		t.Fatal(err)
	}
	up.Password = password
	d := &send.Dialer{HELO: "relay.example.org", Upstream: up,
		Timeouts: send.Timeouts{Dial: 5 * time.Second, Command: 5 * time.Second, Final: 5 * time.Second}}
	if trust && srv.Pool != nil {
		d.TLS = &tls.Config{RootCAs: srv.Pool}
	}
	return d
}

func checkCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stepsOf renders the report's steps as lines, for messages and for
// looking for text.
func stepsOf(steps []send.Step) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", s.Name, s.Result, s.Detail)
	}
	return b.String()
}

func step(steps []send.Step, name string) (send.Step, bool) {
	for _, s := range steps {
		if s.Name == name {
			return s, true
		}
	}
	return send.Step{}, false
}

// TestCheckUpstreamAuth: each mechanism over STARTTLS and implicit TLS
// succeeds, and the report shows the banner, extensions and TLS details.
func TestCheckUpstreamAuth(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"smtp", "smtps"} {
		for _, mech := range []string{"PLAIN", "LOGIN", "CRAM-MD5"} {
			t.Run(scheme+"/"+mech, func(t *testing.T) {
				t.Parallel()
				srv := smtptest.Start(t, smtptest.Options{TLS: scheme == "smtp", Implicit: scheme == "smtps",
					Users: map[string]string{"postmaster": checkPassword}, Mechanisms: []string{mech}})
				d := checkDialer(t, srv, fmt.Sprintf("%s://postmaster@127.0.0.1:%d", scheme, srv.Port), checkPassword, true)
				rep, err := d.CheckUpstream(checkCtx(t), send.CheckOptions{})
				if err != nil {
					t.Fatalf("CheckUpstream: %v\n%s", err, stepsOf(rep.Steps))
				}
				if !rep.OK || rep.Error != "" {
					t.Errorf("ok %v, error %q", rep.OK, rep.Error)
				}
				if !strings.HasPrefix(rep.Banner, "220 mx.test") {
					t.Errorf("banner %q", rep.Banner)
				}
				if !slices.Contains(rep.Extensions, "AUTH "+mech) {
					t.Errorf("extensions %q lack AUTH %s", rep.Extensions, mech)
				}
				tr := rep.TLS
				if tr == nil || !tr.Verified || tr.Error != "" || !strings.HasPrefix(tr.Version, "TLS 1.") || tr.Cipher == "" ||
					tr.Subject != "CN=smtptest" || tr.Issuer != "CN=smtptest" || time.Until(tr.NotAfter) < time.Hour {
					t.Errorf("tls %+v", tr)
				}
				if rep.Auth == nil || !rep.Auth.OK || rep.Auth.Mechanism != mech || rep.Auth.Reply != "235" {
					t.Errorf("auth %+v", rep.Auth)
				}
				if rep.Send != nil || len(srv.Messages()) != 0 {
					t.Errorf("a message was sent without --send-to")
				}
				lines := stepsOf(rep.Steps)
				for _, name := range []string{"connect", "banner", "ehlo", "tls", "verify", "auth"} {
					if s, ok := step(rep.Steps, name); !ok || s.Result != send.ResultOK {
						t.Errorf("step %s: %+v\n%s", name, s, lines)
					}
				}
				// The test certificate expires in a day: a warning.
				if s, _ := step(rep.Steps, "certificate"); s.Result != send.ResultWarn || !strings.Contains(s.Detail, "CN=smtptest, issued by CN=smtptest, expires ") ||
					!strings.Contains(s.Detail, "hours: renew it") {
					t.Errorf("certificate step %+v", s)
				}
				if _, ok := step(rep.Steps, "ehlo (TLS)"); ok != (scheme == "smtp") {
					t.Errorf("ehlo after STARTTLS shown: %v\n%s", ok, lines)
				}
				if strings.Contains(lines, checkPassword) {
					t.Errorf("the password shows in the report:\n%s", lines)
				}
			})
		}
	}
}

// TestCheckUpstreamWrongPassword: the server's 535 is the failure.
func TestCheckUpstreamWrongPassword(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{TLS: true, Users: map[string]string{"postmaster": checkPassword}})
	d := checkDialer(t, srv, fmt.Sprintf("smtp://postmaster@127.0.0.1:%d", srv.Port), "wrong-Pa55", true)
	rep, err := d.CheckUpstream(checkCtx(t), send.CheckOptions{SendTo: "someone@example.com", From: "news@example.org"})
	if err == nil {
		t.Fatalf("CheckUpstream succeeded with a wrong password\n%s", stepsOf(rep.Steps))
	}
	if !strings.Contains(err.Error(), "535") || rep.OK || rep.Auth == nil || rep.Auth.OK || rep.Auth.Mechanism != "PLAIN" ||
		!strings.HasPrefix(rep.Auth.Reply, "535 5.7.8") {
		t.Errorf("err %v, auth %+v", err, rep.Auth)
	}
	if s, _ := step(rep.Steps, "auth"); s.Result != send.ResultFail || !strings.Contains(s.Detail, "check the username and password") {
		t.Errorf("auth step %+v", s)
	}
	if rep.Send != nil || len(srv.Messages()) != 0 {
		t.Error("went on to send after AUTH failed")
	}
	if strings.Contains(stepsOf(rep.Steps)+err.Error(), "wrong-Pa55") {
		t.Error("the password shows in the report")
	}
}

// TestCheckUpstreamUntrusted: a certificate that does not verify stops the
// check before AUTH, with the x509 error and the certificate shown.
func TestCheckUpstreamUntrusted(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"smtp", "smtps"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.Options{TLS: scheme == "smtp", Implicit: scheme == "smtps",
				Users: map[string]string{"postmaster": checkPassword}})
			d := checkDialer(t, srv, fmt.Sprintf("%s://postmaster@127.0.0.1:%d", scheme, srv.Port), checkPassword, false)
			rep, err := d.CheckUpstream(checkCtx(t), send.CheckOptions{})
			if err == nil || !strings.Contains(err.Error(), "unknown authority") {
				t.Fatalf("err %v, want an x509 unknown authority error\n%s", err, stepsOf(rep.Steps))
			}
			tr := rep.TLS
			if tr == nil || tr.Verified || !strings.Contains(tr.Error, "x509: certificate signed by unknown authority") || tr.Subject != "CN=smtptest" {
				t.Errorf("tls %+v", tr)
			}
			if s, _ := step(rep.Steps, "verify"); s.Result != send.ResultFail || !strings.Contains(s.Detail, "--ca") {
				t.Errorf("verify step %+v", s)
			}
			if rep.Auth != nil {
				t.Errorf("went on to AUTH: %+v", rep.Auth)
			}
		})
	}
}

// TestCheckUpstreamWrongName: a certificate for another name fails, and
// says to connect by the certificate's name.
func TestCheckUpstreamWrongName(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{TLS: true})
	d := checkDialer(t, srv, fmt.Sprintf("smtp://127.0.0.1:%d", srv.Port), "", false)
	d.TLS = &tls.Config{RootCAs: srv.Pool, ServerName: "mail.example.com"}
	rep, err := d.CheckUpstream(checkCtx(t), send.CheckOptions{})
	if err == nil || !strings.Contains(err.Error(), "not mail.example.com") {
		t.Fatalf("err %v\n%s", err, stepsOf(rep.Steps))
	}
	if s, _ := step(rep.Steps, "verify"); s.Result != send.ResultFail || !strings.Contains(s.Detail, "connect by the name the certificate is for") {
		t.Errorf("verify step %+v", s)
	}
}

// TestCheckUpstreamSendTo delivers one test message, with the headers.
func TestCheckUpstreamSendTo(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{TLS: true, Users: map[string]string{"postmaster": checkPassword}})
	d := checkDialer(t, srv, fmt.Sprintf("smtp://postmaster@127.0.0.1:%d", srv.Port), checkPassword, true)
	rep, err := d.CheckUpstream(checkCtx(t), send.CheckOptions{SendTo: "someone@example.com", From: "news@example.org"})
	if err != nil {
		t.Fatalf("CheckUpstream: %v\n%s", err, stepsOf(rep.Steps))
	}
	if rep.Send == nil || rep.Send.To != "someone@example.com" || !strings.HasPrefix(rep.Send.Reply, "250") {
		t.Errorf("send %+v", rep.Send)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "news@example.org" || !slices.Equal(m.To, []string{"someone@example.com"}) || m.User != "postmaster" {
		t.Errorf("envelope %s → %v as %q", m.From, m.To, m.User)
	}
	for _, h := range []string{"From: <news@example.org>\r\n", "To: <someone@example.com>\r\n", "Subject: relayctl check\r\n",
		"\r\nDate: ", "\r\nMessage-ID: <relayctl-check.", "@example.org>\r\n"} {
		if !strings.Contains(string(m.Data), h) {
			t.Errorf("message lacks %q:\n%s", h, m.Data)
		}
	}
}

// TestCheckUpstreamSteps: the failures people meet, each on its line.
func TestCheckUpstreamSteps(t *testing.T) {
	t.Parallel()
	users := map[string]string{"postmaster": checkPassword}
	cases := []struct {
		name, url string
		opts      smtptest.Options
		step      string
		result    send.Result
		detail    string
		fails     bool
	}{
		{"no STARTTLS offered", "smtp://postmaster@127.0.0.1:%d", smtptest.Options{Users: users},
			"starttls", send.ResultFail, "not offered, and smtp:// requires it", true},
		{"AUTH only after STARTTLS", "smtp://postmaster@127.0.0.1:%d?tls=none", smtptest.Options{TLS: true, Users: users},
			"auth", send.ResultFail, "offer AUTH only after it, so drop ?tls=none", true},
		{"tls=none prefers CRAM-MD5", "smtp://postmaster@127.0.0.1:%d?tls=none",
			smtptest.Options{Users: users, Mechanisms: []string{"PLAIN", "LOGIN", "CRAM-MD5"}},
			"auth", send.ResultOK, "CRAM-MD5 as postmaster: accepted", false},
		{"no username", "smtp://127.0.0.1:%d", smtptest.Options{TLS: true},
			"auth", send.ResultSkip, "no username", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, c.opts)
			d := checkDialer(t, srv, fmt.Sprintf(c.url, srv.Port), checkPassword, true)
			rep, err := d.CheckUpstream(checkCtx(t), send.CheckOptions{})
			if (err != nil) != c.fails || rep.OK == c.fails {
				t.Errorf("err %v, ok %v; want failure %v", err, rep.OK, c.fails)
			}
			s, _ := step(rep.Steps, c.step)
			if s.Result != c.result || !strings.Contains(s.Detail, c.detail) {
				t.Errorf("step %s is %+v, want %s with %q\n%s", c.step, s, c.result, c.detail, stepsOf(rep.Steps))
			}
		})
	}
}

// TestCheckUpstreamRefused: nothing listening is a connect failure.
func TestCheckUpstreamRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	up, _ := send.ParseUpstream(fmt.Sprintf("smtp://127.0.0.1:%d", port))
	d := &send.Dialer{HELO: "relay.example.org", Upstream: up, Timeouts: send.Timeouts{Dial: time.Second, Command: time.Second, Final: time.Second}}
	rep, err := d.CheckUpstream(checkCtx(t), send.CheckOptions{})
	if err == nil || rep.OK {
		t.Fatal("CheckUpstream succeeded with nothing listening")
	}
	if s, _ := step(rep.Steps, "connect"); s.Result != send.ResultFail || !strings.Contains(s.Detail, "nothing listens there") {
		t.Errorf("connect step %+v", s)
	}
}

// TestCheckRelay tells open relays from closed ones, over plain text and
// STARTTLS, and never sends DATA.
func TestCheckRelay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tls     bool
		trust   bool
		open    bool
		local   []string // nil: an open relay
		verdict string
		warn    string // a step expected to warn
		hack    bool   // the %-hack recipient is accepted
	}{
		{name: "open", open: true, verdict: "127.0.0.1 is an OPEN RELAY: it accepted a recipient at an outside domain without authentication"},
		{name: "closed", local: []string{"example.com"}, verdict: "127.0.0.1 refused to relay: 554 5.7.1 Relay access denied"},
		{name: "open over STARTTLS", tls: true, trust: true, open: true, verdict: "OPEN RELAY"},
		{name: "closed over STARTTLS", tls: true, trust: true, local: []string{"example.com"}, verdict: "refused to relay: 554 5.7.1"},
		{name: "untrusted certificate", tls: true, local: []string{"example.com"}, verdict: "refused to relay", warn: "verify"},
		{name: "percent hack", local: []string{"mx.test"}, verdict: "refused to relay", warn: "%-hack (plain text)", hack: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, smtptest.Options{TLS: c.tls})
			var log *smtptest.RelayLog
			if c.local == nil {
				log = srv.OpenRelay()
			} else {
				log = srv.ClosedRelay(c.local...)
			}
			d := &send.Dialer{HELO: "relay.example.org", Timeouts: send.Timeouts{Dial: 5 * time.Second, Command: 5 * time.Second, Final: 5 * time.Second}}
			if c.trust {
				d.TLS = &tls.Config{RootCAs: srv.Pool}
			}
			rep, err := d.CheckRelay(checkCtx(t), "127.0.0.1", srv.Port, send.RelayCheckOptions{})
			lines := stepsOf(rep.Steps)
			if (err != nil) != c.open || rep.Open != c.open || rep.OK == c.open {
				t.Errorf("err %v, open %v, ok %v; want open %v\n%s", err, rep.Open, rep.OK, c.open, lines)
			}
			if !strings.Contains(rep.Verdict, c.verdict) {
				t.Errorf("verdict %q, want %q", rep.Verdict, c.verdict)
			}
			if c.warn != "" {
				if s, _ := step(rep.Steps, c.warn); s.Result != send.ResultWarn {
					t.Errorf("step %s is %+v, want a warning\n%s", c.warn, s, lines)
				}
			}
			// Over STARTTLS and then in plain text when TLS is offered.
			channels := []string{"plain"}
			if c.tls {
				channels = []string{"starttls", "plain"}
			}
			var got []string
			for _, pr := range rep.Probes {
				if pr.From != send.DefaultRelayFrom || pr.Accepted != (c.open || pr.Variant == "percent-hack" && c.hack) {
					t.Errorf("probe %+v", pr)
				}
				if pr.Variant == "plain" {
					got = append(got, pr.Channel)
				}
			}
			if !slices.Equal(got, channels) {
				t.Errorf("channels tested %v, want %v\n%s", got, channels, lines)
			}
			rcpts := log.Rcpts()
			want := []string{"relay-test@example.net", "relay-test%example.net@mx.test"}
			if len(rcpts) != 2*len(channels) || !slices.Equal(rcpts[:2], want) {
				t.Errorf("server saw RCPT %q, want %q per channel", rcpts, want)
			}
			if n := log.Data(); n != 0 || len(srv.Messages()) != 0 {
				t.Errorf("server received DATA %d times, messages %d: the relay test must never send DATA", n, len(srv.Messages()))
			}
		})
	}
}

func TestParseRelayTarget(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		host string
		port int
		bad  bool
	}{
		{in: "mx.example.com", host: "mx.example.com", port: 25},
		{in: "mx.example.com:2525", host: "mx.example.com", port: 2525},
		{in: "127.0.0.1", host: "127.0.0.1", port: 25},
		{in: "[::1]:587", host: "::1", port: 587},
		{in: "::1", host: "::1", port: 25},
		{in: "mx.example.com:0", bad: true},
		{in: "mx.example.com:smtp", bad: true},
		{in: "", bad: true},
		{in: "smtp://mx.example.com", bad: true},
		{in: "user@mx.example.com", bad: true},
	} {
		host, port, err := send.ParseRelayTarget(c.in)
		if (err != nil) != c.bad || !c.bad && (host != c.host || port != c.port) {
			t.Errorf("ParseRelayTarget(%q) = %q, %d, %v", c.in, host, port, err)
		}
	}
}
