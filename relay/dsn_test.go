package relay_test

import (
	"bufio"
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/relayctl/relayctl/relay"
)

var (
	arrival     = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	lastAttempt = time.Date(2025, 3, 2, 9, 30, 0, 0, time.UTC)
	retryUntil  = time.Date(2025, 3, 6, 9, 0, 0, 0, time.UTC)
	dsnDate     = time.Date(2025, 3, 2, 9, 31, 0, 0, time.FixedZone("", 3600))
)

const originalHeaders = "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: hello\r\n\r\n"

func sampleDSN(rcpts ...relay.DSNRecipient) relay.DSN {
	return relay.DSN{
		ReportingMTA: "mx.example.net",
		To:           "alice@example.org",
		QueueID:      42,
		Arrival:      arrival,
		Date:         dsnDate,
		Headers:      []byte(originalHeaders),
		Recipients:   rcpts,
	}
}

var (
	failedRcpt  = relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: "550 5.1.1 No such user", LastAttempt: lastAttempt}
	delayedRcpt = relay.DSNRecipient{Address: "carol@example.com", Action: "delayed", Reply: "421 4.7.0 try later", LastAttempt: lastAttempt, RetryUntil: retryUntil}
)

// part is one MIME part of a rendered DSN, decoded.
type part struct {
	header message.Header
	body   string
}

// render renders d and parses it back, failing the test on any error.
func render(t *testing.T, d relay.DSN) (raw []byte, top message.Header, parts []part) {
	t.Helper()
	raw, err := d.Bytes()
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message.Read: %v\n%s", err, raw)
	}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("not multipart:\n%s", raw)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("reading part: %v", err)
		}
		parts = append(parts, part{p.Header, string(body)})
	}
	return raw, e.Header, parts
}

// statusBlocks parses a message/delivery-status body: the per-message
// block, then one block per recipient.
func statusBlocks(t *testing.T, body string) []textproto.Header {
	t.Helper()
	r := bufio.NewReader(strings.NewReader(body))
	var blocks []textproto.Header
	for {
		if _, err := r.Peek(1); err == io.EOF {
			return blocks
		}
		h, err := textproto.ReadHeader(r)
		if err != nil {
			t.Fatalf("reading delivery-status block %d: %v\n%s", len(blocks), err, body)
		}
		blocks = append(blocks, h)
	}
}

func TestDSNStructure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		headers   string
		wantTypes []string
		wantCTE   string // of the text/rfc822-headers part
	}{
		{"headers", originalHeaders, []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}, "7bit"},
		{"headers without blank line", strings.TrimSuffix(originalHeaders, "\r\n"), []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}, "7bit"},
		{"8-bit headers", "Subject: Grüße\r\n\r\n", []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}, "8bit"},
		{"no headers", "", []string{"text/plain", "message/delivery-status"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := sampleDSN(failedRcpt, delayedRcpt)
			d.Headers = []byte(tc.headers)
			_, top, parts := render(t, d)

			mediaType, params, err := top.ContentType()
			if err != nil || mediaType != "multipart/report" || params["report-type"] != "delivery-status" {
				t.Errorf("Content-Type = %q (%v), want multipart/report; report-type=delivery-status", top.Get("Content-Type"), err)
			}
			for k, want := range map[string]string{
				"From":           "Mail Delivery System <MAILER-DAEMON@mx.example.net>",
				"To":             "<alice@example.org>",
				"Subject":        "Undelivered Mail Returned to Sender",
				"Auto-Submitted": "auto-replied",
				"MIME-Version":   "1.0",
				"Date":           "Sun, 02 Mar 2025 09:31:00 +0100",
			} {
				if got := top.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if id := top.Get("Message-ID"); !regexp.MustCompile(`^<[0-9a-f]{32}@mx\.example\.net>$`).MatchString(id) {
				t.Errorf("Message-ID = %q, want <hex@mx.example.net>", id)
			}

			if len(parts) != len(tc.wantTypes) {
				t.Fatalf("%d parts, want %d", len(parts), len(tc.wantTypes))
			}
			for i, want := range tc.wantTypes {
				if got, _, _ := parts[i].header.ContentType(); got != want {
					t.Errorf("part %d is %s, want %s", i+1, got, want)
				}
			}
			if _, params, _ := parts[0].header.ContentType(); params["charset"] != "utf-8" {
				t.Errorf("text part charset = %q, want utf-8", params["charset"])
			}
			text := parts[0].body
			for _, want := range []string{"queue ID 42", "<bob@example.com>", "550 5.1.1 No such user",
				"<carol@example.com>", "421 4.7.0 try later", "retried until " + retryUntil.Format(time.RFC1123Z)} {
				if !strings.Contains(text, want) {
					t.Errorf("text part does not mention %q:\n%s", want, text)
				}
			}
			if len(parts) == 3 {
				want := strings.TrimRight(tc.headers, "\r\n") + "\r\n"
				if parts[2].body != want {
					t.Errorf("headers part = %q, want %q", parts[2].body, want)
				}
				if got := parts[2].header.Get("Content-Transfer-Encoding"); got != tc.wantCTE {
					t.Errorf("headers part Content-Transfer-Encoding = %q, want %q", got, tc.wantCTE)
				}
			}
		})
	}
}

func TestDSNMessageIDsDiffer(t *testing.T) {
	_, a, _ := render(t, sampleDSN(failedRcpt))
	_, b, _ := render(t, sampleDSN(failedRcpt))
	if a.Get("Message-ID") == b.Get("Message-ID") {
		t.Errorf("two DSNs share Message-ID %s", a.Get("Message-ID"))
	}
}

func TestDSNDeliveryStatus(t *testing.T) {
	const refused = "dial tcp 127.0.0.1:25: connection refused"
	for _, tc := range []struct {
		name   string
		rcpt   relay.DSNRecipient
		want   map[string]string // fields and their exact values
		absent []string
	}{
		{
			name: "failed with enhanced code",
			rcpt: failedRcpt,
			want: map[string]string{
				"Final-Recipient":   "rfc822; bob@example.com",
				"Action":            "failed",
				"Status":            "5.1.1",
				"Diagnostic-Code":   "smtp; 550 5.1.1 No such user",
				"Last-Attempt-Date": "Sun, 02 Mar 2025 09:30:00 +0000",
			},
			absent: []string{"Will-Retry-Until"},
		},
		{
			name:   "failed with basic code only",
			rcpt:   relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: "554 no such domain"},
			want:   map[string]string{"Status": "5.0.0", "Diagnostic-Code": "smtp; 554 no such domain"},
			absent: []string{"Last-Attempt-Date"},
		},
		{
			name:   "failed on a network error",
			rcpt:   relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: refused, LastAttempt: lastAttempt},
			want:   map[string]string{"Status": "5.0.0"},
			absent: []string{"Diagnostic-Code"},
		},
		{
			name:   "digits that are not a reply",
			rcpt:   relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: "5000 bytes written: broken pipe"},
			want:   map[string]string{"Status": "5.0.0"},
			absent: []string{"Diagnostic-Code"},
		},
		{
			name: "expired after a temporary reply",
			rcpt: relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: "451 4.4.1 timeout", LastAttempt: lastAttempt, Expired: true},
			want: map[string]string{"Status": "4.4.7", "Diagnostic-Code": "smtp; 451 4.4.1 timeout"},
		},
		{
			name: "expired keeps a permanent code",
			rcpt: relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: "550 5.7.1 rejected", Expired: true},
			want: map[string]string{"Status": "5.7.1"},
		},
		{
			name:   "expired after network errors",
			rcpt:   relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: refused, Expired: true},
			want:   map[string]string{"Status": "4.4.7"},
			absent: []string{"Diagnostic-Code"},
		},
		{
			name:   "expired never attempted",
			rcpt:   relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Expired: true},
			want:   map[string]string{"Status": "4.4.7"},
			absent: []string{"Diagnostic-Code", "Last-Attempt-Date"},
		},
		{
			name: "failed on a temporary reply",
			rcpt: relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: "452 4.2.2 mailbox full"},
			want: map[string]string{"Status": "4.2.2"},
		},
		{
			name: "delayed",
			rcpt: delayedRcpt,
			want: map[string]string{
				"Final-Recipient":   "rfc822; carol@example.com",
				"Action":            "delayed",
				"Status":            "4.7.0",
				"Diagnostic-Code":   "smtp; 421 4.7.0 try later",
				"Last-Attempt-Date": "Sun, 02 Mar 2025 09:30:00 +0000",
				"Will-Retry-Until":  "Thu, 06 Mar 2025 09:00:00 +0000",
			},
		},
		{
			name:   "delayed without a reply",
			rcpt:   relay.DSNRecipient{Address: "carol@example.com", Action: "delayed"},
			want:   map[string]string{"Status": "4.0.0"},
			absent: []string{"Diagnostic-Code", "Last-Attempt-Date", "Will-Retry-Until"},
		},
		{
			name: "delayed with a basic code only",
			rcpt: relay.DSNRecipient{Address: "carol@example.com", Action: "delayed", Reply: "450 mailbox busy"},
			want: map[string]string{"Status": "4.0.0"},
		},
		{
			name: "delayed with a permanent code",
			rcpt: relay.DSNRecipient{Address: "carol@example.com", Action: "delayed", Reply: "550 5.1.1 No such user"},
			want: map[string]string{"Status": "4.0.0"},
		},
		{
			name: "reply with embedded CRLF",
			rcpt: relay.DSNRecipient{Address: "bob@example.com", Action: "failed",
				Reply: "550 5.1.1 first line\r\n550 5.1.1 second line\r\nInjected: field"},
			want:   map[string]string{"Status": "5.1.1", "Diagnostic-Code": "smtp; 550 5.1.1 first line 550 5.1.1 second line Injected: field"},
			absent: []string{"Injected"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, parts := render(t, sampleDSN(tc.rcpt))
			blocks := statusBlocks(t, parts[1].body)
			if len(blocks) != 2 {
				t.Fatalf("%d delivery-status blocks, want 2:\n%s", len(blocks), parts[1].body)
			}
			perMessage, rcpt := blocks[0], blocks[1]
			for k, want := range map[string]string{
				"Reporting-MTA":       "dns; mx.example.net",
				"X-Relayctl-Queue-ID": "42",
				"Arrival-Date":        "Sat, 01 Mar 2025 09:00:00 +0000",
			} {
				if got := perMessage.Get(k); got != want {
					t.Errorf("per-message %s = %q, want %q", k, got, want)
				}
			}
			for k, want := range tc.want {
				if got := rcpt.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for _, k := range tc.absent {
				if rcpt.Has(k) {
					t.Errorf("unexpected %s: %q", k, rcpt.Get(k))
				}
			}
		})
	}
}

func TestDSNRecipientBlocks(t *testing.T) {
	_, _, parts := render(t, sampleDSN(failedRcpt, delayedRcpt, failedRcpt))
	blocks := statusBlocks(t, parts[1].body)
	var got []string
	for _, b := range blocks[1:] {
		got = append(got, b.Get("Final-Recipient")+" "+b.Get("Action"))
	}
	want := []string{"rfc822; bob@example.com failed", "rfc822; carol@example.com delayed", "rfc822; bob@example.com failed"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("recipient blocks = %q, want %q", got, want)
	}
}

func TestDSNFoldsLongReplies(t *testing.T) {
	reply := "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.example.com/mail/?p=NoSuchUser"
	rcpt := relay.DSNRecipient{Address: "bob@example.com", Action: "failed", Reply: reply}
	_, _, parts := render(t, sampleDSN(rcpt))
	for l := range strings.Lines(parts[1].body) {
		if len(strings.TrimRight(l, "\r\n")) > 78 {
			t.Errorf("delivery-status line longer than 78: %q", l)
		}
	}
	if got := statusBlocks(t, parts[1].body)[1].Get("Diagnostic-Code"); got != "smtp; "+reply {
		t.Errorf("unfolded Diagnostic-Code = %q, want %q", got, "smtp; "+reply)
	}
}

func TestDSNLineEnds(t *testing.T) {
	long := relay.DSNRecipient{Address: "dave@example.com", Action: "failed",
		Reply: "550 5.7.1 " + strings.Repeat("word ", 60) + "\nbare\rends"}
	for _, tc := range []struct {
		name string
		d    relay.DSN
	}{
		{"failed and delayed", sampleDSN(failedRcpt, delayedRcpt, long)},
		{"bare line ends in headers", func() relay.DSN {
			d := sampleDSN(failedRcpt)
			d.Headers = []byte("Subject: one\nX-Two: two\rX-Three: three\r\n")
			return d
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _, _ := render(t, tc.d)
			for i, c := range raw {
				if c == '\n' && (i == 0 || raw[i-1] != '\r') {
					t.Fatalf("bare LF at offset %d: %q", i, raw[max(0, i-40):i+1])
				}
				if c == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
					t.Fatalf("bare CR at offset %d: %q", i, raw[max(0, i-40):i+1])
				}
			}
			if !bytes.HasSuffix(raw, []byte("\r\n")) {
				t.Errorf("output does not end in CRLF")
			}
		})
	}
}

func TestDSNSubject(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rcpts []relay.DSNRecipient
		want  string
	}{
		{"failed", []relay.DSNRecipient{failedRcpt}, "Undelivered Mail Returned to Sender"},
		{"failed and delayed", []relay.DSNRecipient{delayedRcpt, failedRcpt}, "Undelivered Mail Returned to Sender"},
		{"delayed only", []relay.DSNRecipient{delayedRcpt}, "Delayed Mail (still being retried)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, top, _ := render(t, sampleDSN(tc.rcpts...))
			if got := top.Get("Subject"); got != tc.want {
				t.Errorf("Subject = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDSNErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*relay.DSN)
	}{
		{"no To", func(d *relay.DSN) { d.To = "" }},
		{"no reporting MTA", func(d *relay.DSN) { d.ReportingMTA = "" }},
		{"no recipients", func(d *relay.DSN) { d.Recipients = nil }},
		{"unknown action", func(d *relay.DSN) { d.Recipients[0].Action = "delivered" }},
		{"empty action", func(d *relay.DSN) { d.Recipients[0].Action = "" }},
		{"line break in To", func(d *relay.DSN) { d.To = "alice@example.org\r\nBcc: eve@example.org" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := sampleDSN(failedRcpt, delayedRcpt)
			tc.modify(&d)
			if b, err := d.Bytes(); err == nil {
				t.Errorf("Bytes succeeded, want an error:\n%s", b)
			}
		})
	}
}
