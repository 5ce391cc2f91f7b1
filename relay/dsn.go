package relay

// This file renders delivery status notifications (RFC 3464): the bounces
// and delay warnings the relay sends back to a message's envelope sender.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
)

// DSN describes a delivery status notification about one queued message
// (RFC 3464), sent to the message's envelope sender.
type DSN struct {
	ReportingMTA string    // this relay's host name (Reporting-MTA: dns; ..., and MAILER-DAEMON@ReportingMTA in From)
	To           string    // the original envelope sender: the DSN's recipient (never empty: callers never build a DSN for the null sender)
	QueueID      int64     // the original message's queue id (X-Relayctl-Queue-ID per-message field, and in the text)
	Arrival      time.Time // when the relay accepted the original (Arrival-Date)
	Date         time.Time // the DSN's own Date
	Headers      []byte    // the original message's header section, as received (CRLF line ends), possibly including the final blank line; may be empty
	Recipients   []DSNRecipient
}

// DSNRecipient is one recipient's fate.
type DSNRecipient struct {
	Address     string    // the original RCPT TO (Final-Recipient: rfc822; ...)
	Action      string    // "failed" or "delayed"
	Reply       string    // the last reply or error, e.g. "550 5.1.1 No such user" or "dial tcp: connection refused"
	LastAttempt time.Time // zero if never attempted
	RetryUntil  time.Time // for "delayed": when the relay gives up (Will-Retry-Until)
	Expired     bool      // "failed" because the queue lifetime ran out (status 4.4.7 unless the reply carries a 5.x.x code)
}

const (
	actionFailed  = "failed"
	actionDelayed = "delayed"

	// dsnDate is RFC 5322's date-time, for Date and the delivery-status
	// date fields alike.
	dsnDate = time.RFC1123Z

	// foldWidth is where header fields are folded (RFC 5322 2.1.1's 78).
	foldWidth = 78
	// maxText bounds a value taken from a reply or an address: a value
	// with no space to fold at must still fit the 998-octet line limit.
	maxText = 900
)

// Bytes renders the DSN as a complete RFC 5322 message with CRLF line ends.
// A zero Date means now.
func (d DSN) Bytes() ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	subject := "Delayed Mail (still being retried)"
	if d.anyFailed() {
		subject = "Undelivered Mail Returned to Sender"
	}
	date := d.Date
	if date.IsZero() {
		date = time.Now()
	}
	var id [16]byte
	rand.Read(id[:]) // crypto/rand.Read never returns an error

	var h message.Header
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status"})
	// Add inserts a field at the top, so add them bottom-up.
	fields := [][2]string{
		{"From", "Mail Delivery System <MAILER-DAEMON@" + d.ReportingMTA + ">"},
		{"To", "<" + d.To + ">"},
		{"Subject", subject},
		{"Date", date.Format(dsnDate)},
		{"Message-ID", "<" + hex.EncodeToString(id[:]) + "@" + d.ReportingMTA + ">"},
		// RFC 3834: auto-responders must not answer a bounce.
		{"Auto-Submitted", "auto-replied"},
		{"MIME-Version", "1.0"},
	}
	for i := len(fields) - 1; i >= 0; i-- {
		h.Add(fields[i][0], fields[i][1])
	}

	var buf bytes.Buffer
	w, err := message.CreateWriter(&buf, h) // fails on a CR or LF in To or ReportingMTA
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	headers := originalHeaders(d.Headers)
	parts := []struct {
		mediaType string
		params    map[string]string
		body      []byte
	}{
		{"text/plain", map[string]string{"charset": "utf-8"}, d.text(len(headers) > 0)},
		{"message/delivery-status", nil, d.status()},
		{"text/rfc822-headers", nil, headers},
	}
	if len(headers) == 0 {
		parts = parts[:2]
	}
	for _, p := range parts {
		var ph message.Header
		ph.Set("Content-Transfer-Encoding", transferEncoding(p.body))
		ph.SetContentType(p.mediaType, p.params)
		pw, err := w.CreatePart(ph)
		if err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
		if _, err := pw.Write(p.body); err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
		if err := pw.Close(); err != nil {
			return nil, fmt.Errorf("dsn: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	return buf.Bytes(), nil
}

func (d DSN) check() error {
	switch {
	case d.To == "":
		return errors.New("dsn: no recipient (the null sender gets no DSN)")
	case d.ReportingMTA == "":
		return errors.New("dsn: no reporting MTA host name")
	case len(d.Recipients) == 0:
		return errors.New("dsn: no recipients to report on")
	}
	for _, r := range d.Recipients {
		if r.Action != actionFailed && r.Action != actionDelayed {
			return fmt.Errorf("dsn: recipient %q: action %q, want %q or %q", r.Address, r.Action, actionFailed, actionDelayed)
		}
	}
	return nil
}

func (d DSN) anyFailed() bool {
	for _, r := range d.Recipients {
		if r.Action == actionFailed {
			return true
		}
	}
	return false
}

// text is the part people read: what happened to each recipient, in words.
func (d DSN) text(withHeaders bool) []byte {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\r\n")
	}
	line("This is the mail system at %s.", oneLine(d.ReportingMTA))
	line("")
	sent := ""
	if !d.Arrival.IsZero() {
		sent = " of " + d.Arrival.Format(dsnDate)
	}
	if d.anyFailed() {
		line("Your message%s (queue ID %d) could not be delivered to one or more of its recipients.", sent, d.QueueID)
	} else {
		line("Your message%s (queue ID %d) has not yet been delivered to one or more of its recipients.", sent, d.QueueID)
		line("Delivery is still being retried; you do not need to send it again.")
	}
	for _, r := range d.Recipients {
		addr := oneLine(r.Address)
		line("")
		switch {
		case r.Action == actionDelayed && !r.RetryUntil.IsZero():
			line("<%s>: delayed. Delivery will be retried until %s.", addr, r.RetryUntil.Format(dsnDate))
		case r.Action == actionDelayed:
			line("<%s>: delayed. Delivery will be retried.", addr)
		case r.Expired:
			line("<%s>: failed. Delivery was retried until the time allowed for it ran out.", addr)
		default:
			line("<%s>: failed.", addr)
		}
		reply := oneLine(r.Reply)
		if _, ok := replyStatus(reply); ok {
			line("    The receiving server said: %s", reply)
		} else if reply != "" {
			line("    The last attempt failed: %s", reply)
		}
	}
	if withHeaders {
		line("")
		line("The headers of your message are attached.")
	}
	return []byte(b.String())
}

// status is the machine-readable part: the per-message fields, then one
// block per recipient, blocks separated by a blank line.
func (d DSN) status() []byte {
	var b bytes.Buffer
	writeField(&b, "Reporting-MTA", "dns; "+d.ReportingMTA)
	writeField(&b, "X-Relayctl-Queue-ID", strconv.FormatInt(d.QueueID, 10))
	if !d.Arrival.IsZero() {
		writeField(&b, "Arrival-Date", d.Arrival.Format(dsnDate))
	}
	for _, r := range d.Recipients {
		reply := oneLine(r.Reply)
		b.WriteString("\r\n")
		writeField(&b, "Final-Recipient", "rfc822; "+r.Address)
		writeField(&b, "Action", r.Action)
		writeField(&b, "Status", r.status(reply))
		if _, ok := replyStatus(reply); ok {
			// A network error has no diagnostic type of its own; it stays
			// in the text part.
			writeField(&b, "Diagnostic-Code", "smtp; "+reply)
		}
		if !r.LastAttempt.IsZero() {
			writeField(&b, "Last-Attempt-Date", r.LastAttempt.Format(dsnDate))
		}
		if r.Action == actionDelayed && !r.RetryUntil.IsZero() {
			writeField(&b, "Will-Retry-Until", r.RetryUntil.Format(dsnDate))
		}
	}
	return b.Bytes()
}

// status is the recipient's RFC 3463 status code. A failed recipient's is
// of class 4 or 5, a delayed one's of class 4, whatever the reply says.
func (r DSNRecipient) status(reply string) string {
	s, _ := replyStatus(reply)
	class := byte(0)
	if s != "" {
		class = s[0]
	}
	if r.Action == actionDelayed {
		if class == '4' {
			return s
		}
		return "4.0.0"
	}
	switch {
	case class == '5':
		return s
	case r.Expired:
		return "4.4.7" // delivery time expired
	case class == '4':
		return s
	default: // a network error, or an odd 2xx/3xx reply
		return "5.0.0"
	}
}

// replyStatus reports whether reply is an SMTP reply ("550 5.1.1 text",
// "554 text", "421"), and if so its status: the enhanced code that follows
// the basic one, else the basic code's class as x.0.0.
func replyStatus(reply string) (status string, ok bool) {
	if len(reply) < 3 || reply[0] < '2' || reply[0] > '5' || !isDigit(reply[1]) || !isDigit(reply[2]) ||
		len(reply) > 3 && reply[3] != ' ' {
		return "", false
	}
	enhanced, _, _ := strings.Cut(strings.TrimLeft(reply[3:], " "), " ")
	if isEnhancedCode(enhanced) {
		return enhanced, true
	}
	return reply[:1] + ".0.0", true
}

// isEnhancedCode reports whether s is an RFC 3463 code: class.subject.detail.
func isEnhancedCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := range len(p) {
			if !isDigit(p[i]) {
				return false
			}
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// oneLine makes s fit on one line of a header field or of text: control
// characters (CR and LF above all: a multi-line reply, or one forged to
// inject fields) become spaces, runs of spaces collapse so folding can
// restore the value exactly, and it is cut to maxText bytes.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxText {
		n := maxText
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}

// writeField writes "name: value" and its CRLF, folded (RFC 5322 2.2.3)
// before a space so lines stay within foldWidth where the value allows.
func writeField(b *bytes.Buffer, name, value string) {
	line := name + ": " + oneLine(value)
	// Never fold between the name and the value's first word.
	minFold := len(name) + 2
	for len(line) > foldWidth {
		i := strings.LastIndexByte(line[:foldWidth+1], ' ')
		if i <= minFold {
			// A word longer than the line: fold after it instead.
			j := strings.IndexByte(line[minFold+1:], ' ')
			if j < 0 {
				break
			}
			i = minFold + 1 + j
		}
		b.WriteString(line[:i])
		b.WriteString("\r\n")
		line = line[i:] // the space starts the continuation line
		minFold = 1
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}

// originalHeaders is the original header section without its blank line,
// with every line end CRLF: the relay only queues CRLF messages, but a DSN
// must never carry a bare CR or LF whatever it is given.
func originalHeaders(h []byte) []byte {
	h = bytes.TrimRight(h, "\r\n")
	if len(h) == 0 {
		return nil
	}
	out := make([]byte, 0, len(h)+2)
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '\r':
			if i+1 < len(h) && h[i+1] == '\n' {
				i++
			}
			out = append(out, '\r', '\n')
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, h[i])
		}
	}
	return append(out, '\r', '\n')
}

// transferEncoding is the Content-Transfer-Encoding that declares body
// truthfully: 8bit as soon as one byte is not ASCII.
func transferEncoding(body []byte) string {
	for _, c := range body {
		if c >= 0x80 {
			return "8bit"
		}
	}
	return "7bit"
}
