package send_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/send"
)

// wireReply returns the error go-smtp's client makes of a server's reply
// to MAIL FROM, given as it goes on the wire ("550 5.1.1 text", or the
// lines of a multi-line reply): Classify sees exactly what a session would.
func wireReply(t *testing.T, lines ...string) error {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan error, 1)
	go func() {
		defer server.Close()
		tp := textproto.NewConn(server)
		step := func(read bool, reply ...string) error {
			if read {
				if _, err := tp.ReadLine(); err != nil {
					return err
				}
			}
			for _, l := range reply {
				if err := tp.PrintfLine("%s", l); err != nil {
					return err
				}
			}
			return nil
		}
		err := step(false, "220 mx.test ESMTP")
		if err == nil {
			err = step(true, "250 mx.test") // EHLO
		}
		if err == nil {
			err = step(true, lines...) // MAIL FROM
		}
		done <- err
	}()
	c := smtp.NewClient(client)
	defer c.Close()
	err := c.Mail("news@example.org", nil)
	if serr := <-done; serr != nil {
		t.Fatalf("scripted server: %v", serr)
	}
	return err
}

func TestClassify(t *testing.T) {
	type want struct {
		kind     send.Kind
		suppress bool
		fix      string // for Fatal: words the fix must name
	}
	replies := []struct {
		name  string
		lines []string
		want  want
	}{
		{"accepted", []string{"250 2.1.0 OK"}, want{kind: send.Sent}},
		{"greylisting", []string{"451 4.7.1 Greylisted, please try again in 300 seconds"}, want{kind: send.Deferred}},
		{"greylisting without enhanced code", []string{"450 Recipient address rejected: Greylisted for 5 minutes"}, want{kind: send.Deferred}},
		{"421 4.7.0 try later", []string{"421 4.7.0 Try again later, closing connection."}, want{kind: send.Throttled}},
		{"421 4.3.2 shutting down", []string{"421 4.3.2 System not accepting network messages"}, want{kind: send.Deferred}},
		{"mailbox full, temporary", []string{"452 4.2.2 The email account that you tried to reach is over quota"}, want{kind: send.Deferred}},
		{"too many recipients", []string{"452 4.5.3 Too many recipients"}, want{kind: send.TooManyRecipients}},
		{"user unknown", []string{"550 5.1.1 The email account that you tried to reach does not exist"}, want{kind: send.Bounced, suppress: true}},
		{"user unknown, multi-line", []string{
			"550-5.1.1 The email account that you tried to reach does not exist. Please try",
			"550-5.1.1 double-checking the recipient's email address for typos or",
			"550 5.1.1 unnecessary spaces.",
		}, want{kind: send.Bounced, suppress: true}},
		{"user unknown without enhanced code", []string{"550 <nobody@example.com>: User unknown"}, want{kind: send.Bounced, suppress: true}},
		{"mailbox disabled", []string{"550 5.2.1 The email account that you tried to reach is disabled"}, want{kind: send.Bounced, suppress: true}},
		{"mailbox full, permanent", []string{"552 5.2.2 Mailbox full"}, want{kind: send.Bounced}},
		{"message too big", []string{"552 5.3.4 Message size exceeds fixed limit"}, want{kind: send.Bounced}},
		{"spam refusal", []string{"554 5.7.1 Message rejected as spam by Content Filtering"}, want{kind: send.Throttled}},
		{"block list", []string{"554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"}, want{kind: send.Throttled}},
		{"Yahoo TSS04 on a 421", []string{"421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints"}, want{kind: send.Throttled}},
		{"Yahoo TSS04 alone", []string{"451 Messages from 192.0.2.1 temporarily deferred [TSS04]"}, want{kind: send.Throttled}},
		{"Microsoft S3150", []string{"550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150)."}, want{kind: send.Throttled}},
		{"Microsoft S3150 alone", []string{"550 Messages from [192.0.2.1] weren't sent (S3150)"}, want{kind: send.Throttled}},
		{"Gmail 4.7.28 on a 421", []string{"421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address."}, want{kind: send.Throttled}},
		{"4.7.28 in the text", []string{"451 Deferred: 4.7.28 too much mail from 192.0.2.1"}, want{kind: send.Throttled}},
		{"4.7.28 as the enhanced code", []string{"451 4.7.28 Try again later"}, want{kind: send.Throttled}},
		{"DMARC 5.7.26", []string{"550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM."}, want{kind: send.Fatal, fix: "SPF DKIM"}},
		{"Microsoft 5.7.515", []string{"550 5.7.515 Access denied, sending domain example.org doesn't meet the required authentication level."}, want{kind: send.Fatal, fix: "SPF DKIM"}},
		{"bad credentials", []string{"535 5.7.8 Username and Password not accepted"}, want{kind: send.Fatal, fix: "password"}},
		{"authentication required", []string{"530 5.7.0 Authentication required"}, want{kind: send.Fatal, fix: "authentication"}},
	}
	for _, tc := range replies {
		t.Run(tc.name, func(t *testing.T) {
			err := wireReply(t, tc.lines...)
			if tc.want.kind == send.Sent && err != nil {
				t.Fatalf("the client refused a 2xx reply: %v", err)
			}
			got := send.Classify(err)
			if got.Kind != tc.want.kind || got.Suppress != tc.want.suppress {
				t.Errorf("Classify(%q) = %v (suppress %v), want %v (suppress %v)", tc.lines, got.Kind, got.Suppress, tc.want.kind, tc.want.suppress)
			}
			if got.Kind == send.Throttled && got.Suppress {
				t.Errorf("a throttle suppresses the address")
			}
			for _, w := range strings.Fields(tc.want.fix) {
				if !strings.Contains(strings.ToLower(got.Fix()), strings.ToLower(w)) {
					t.Errorf("Fix() = %q, want it to name %s", got.Fix(), w)
				}
			}
			if err != nil {
				last := tc.lines[len(tc.lines)-1]
				code := last[:3]
				if !strings.HasPrefix(got.Reply(), code+" ") {
					t.Errorf("Reply() = %q, want it to start with the code %s", got.Reply(), code)
				}
			}
		})
	}
}

// timeoutError is a net.Error that timed out, as a deadline makes.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestClassifyErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		kind     send.Kind
		suppress bool
		text     string // the outcome's text starts with it
	}{
		{"no error", nil, send.Sent, false, ""},
		{"read timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, send.Deferred, false, "timeout"},
		{"custom net timeout", fmt.Errorf("mx.example.com: %w", timeoutError{}), send.Deferred, false, "timeout"},
		{"context deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded), send.Deferred, false, "timeout"},
		{"EOF", io.EOF, send.Deferred, false, "connection dropped"},
		{"wrapped EOF", fmt.Errorf("DATA: %w", io.ErrUnexpectedEOF), send.Deferred, false, "connection dropped"},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, send.Deferred, false, ""},
		{"untrusted certificate", fmt.Errorf("mx.example.com: %w", x509.UnknownAuthorityError{}), send.Deferred, false, "TLS"},
		{"null MX", fmt.Errorf("example.com: %w", send.ErrNullMX), send.Bounced, true, ""},
		{"fatal", fmt.Errorf("upstream: %w", &send.FatalError{Msg: "refused AUTH"}), send.Fatal, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := send.Classify(tc.err)
			if got.Kind != tc.kind || got.Suppress != tc.suppress {
				t.Errorf("Classify(%v) = %v (suppress %v), want %v (suppress %v)", tc.err, got.Kind, got.Suppress, tc.kind, tc.suppress)
			}
			if !strings.HasPrefix(got.Text, tc.text) {
				t.Errorf("Text = %q, want it to start with %q", got.Text, tc.text)
			}
			if got.Code != 0 {
				t.Errorf("Code = %d for an error that is not a reply", got.Code)
			}
		})
	}
}

func TestOutcomeReply(t *testing.T) {
	for _, tc := range []struct {
		o    send.Outcome
		want string
	}{
		{send.Outcome{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}, "550 5.1.1 User unknown"},
		{send.Outcome{Code: 250}, "250"},
		{send.Outcome{Code: 421, Text: "Bye"}, "421 Bye"},
		{send.Outcome{Text: "timeout: i/o timeout"}, "timeout: i/o timeout"},
	} {
		if got := tc.o.Reply(); got != tc.want {
			t.Errorf("%+v.Reply() = %q, want %q", tc.o, got, tc.want)
		}
	}
}

func TestKindString(t *testing.T) {
	want := map[send.Kind]string{send.Sent: "sent", send.Deferred: "deferred", send.Bounced: "bounced",
		send.Throttled: "throttled", send.TooManyRecipients: "too many recipients", send.Fatal: "fatal"}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), k.String(), s)
		}
	}
}
