// Package send delivers messages over SMTP: sessions to a recipient's MX
// hosts (the built-in relay) or to an upstream smarthost, and the one
// place where a server's reply is turned into what relayctl does next.
package send

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/emersion/go-smtp"
)

// Kind is what a reply means for a recipient and for the run.
type Kind int

const (
	// Sent: the server took the message (2xx).
	Sent Kind = iota
	// Deferred: try again later (4xx, timeouts, dropped connections).
	Deferred
	// Bounced: the server refused the recipient for good (5xx).
	Bounced
	// Throttled: the provider is rate-limiting or blocking the sender;
	// pause the provider instead of burning through its recipients. The
	// recipient is deferred, never suppressed.
	Throttled
	// TooManyRecipients: 452 4.5.3, send the rest in another message.
	TooManyRecipients
	// Fatal: the sender itself is misconfigured (authentication, TLS,
	// SPF/DKIM/DMARC refusals): stop the run instead of failing every
	// recipient.
	Fatal
)

func (k Kind) String() string {
	return [...]string{"sent", "deferred", "bounced", "throttled", "too many recipients", "fatal"}[k]
}

// Outcome is a classified reply.
type Outcome struct {
	Kind Kind
	// Suppress: a mailbox-level hard bounce (5.1.x, 5.2.1): the address
	// goes on the suppression list.
	Suppress bool
	// Code, Enhanced and Text are the server's reply ("" and 0 for
	// errors that are not replies, whose text is in Text).
	Code     int
	Enhanced string
	Text     string
}

// Reply formats the outcome as the server said it: "550 5.1.1 text".
func (o Outcome) Reply() string {
	if o.Code == 0 {
		return o.Text
	}
	s := fmt.Sprint(o.Code)
	if o.Enhanced != "" {
		s += " " + o.Enhanced
	}
	if o.Text != "" {
		s += " " + o.Text
	}
	return s
}

// throttleWords mark replies that mean "you are sending too fast or are
// blocked" whatever their code: Yahoo's TSS04, Microsoft's S3150 and
// 4.7.28-style rate limits, block-list refusals.
var throttleWords = []string{"tss04", "ts04", "4.7.28", "s3150", "rate limit", "rate-limit", "ratelimit",
	"too many messages", "too many connections", "blocklist", "block list", "blacklist", "blocked",
	"spamhaus", "spamcop", "dnsbl", "reputation", "unusual rate", "throttl"}

// senderFixes are replies that mean the sender is misconfigured, with the
// fix to name.
var senderFixes = map[string]string{
	"5.7.26":  "the message fails DMARC/SPF/DKIM authentication: publish SPF for the relay and sign with DKIM (relayctl doctor checks both)",
	"5.7.25":  "the sending IP has no reverse DNS (PTR): ask the IP's owner to set one matching the HELO name",
	"5.7.27":  "the sender domain has no SPF record that authorises this relay",
	"5.7.515": "Microsoft requires SPF, DKIM and DMARC to pass for bulk senders: publish them",
	"5.7.57":  "the upstream requires authentication before MAIL FROM: configure smtp_relay_username/password",
	"5.7.8":   "the upstream refused the credentials: check the username and password",
}

// Classify turns the result of an SMTP command, or of dialling, into an
// Outcome. It is the only place that reads replies.
func Classify(err error) Outcome {
	if err == nil {
		return Outcome{Kind: Sent}
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return classifyError(err)
	}
	o := Outcome{Code: se.Code, Text: strings.TrimSpace(se.Message)}
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		o.Enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	lower := strings.ToLower(o.Text)
	enh := o.Enhanced
	if enh == "" {
		enh = leadingEnhanced(o.Text)
	}
	switch {
	case se.Code/100 == 2:
		o.Kind = Sent
	case se.Code == 452 && enh == "4.5.3":
		o.Kind = TooManyRecipients
	case se.Code == 535 || se.Code == 534 || se.Code == 530 || enh == "5.7.8" || enh == "5.7.57":
		o.Kind = Fatal
	case se.Code/100 == 5 && senderFixes[enh] != "":
		o.Kind = Fatal
	case se.Code/100 == 4 && strings.Contains(lower, "greylist"):
		o.Kind = Deferred // greylisting wants a retry, not a pause
	case se.Code == 421 && strings.HasPrefix(enh, "4.7.") || enh == "4.7.28" || containsAny(lower, throttleWords):
		o.Kind = Throttled
	case se.Code/100 == 5 && strings.HasPrefix(enh, "5.7."):
		// A policy refusal (block list, spam filter) says nothing about the
		// mailbox: pause the provider, never suppress the address.
		o.Kind = Throttled
	case se.Code/100 == 5:
		o.Kind = Bounced
		o.Suppress = strings.HasPrefix(enh, "5.1.") || enh == "5.2.1" ||
			enh == "" && (se.Code == 550 || se.Code == 551 || se.Code == 553) && mailboxUnknown(lower)
	default:
		o.Kind = Deferred
	}
	return o
}

// Fix names what to do about a Fatal outcome.
func (o Outcome) Fix() string {
	enh := o.Enhanced
	if enh == "" {
		enh = leadingEnhanced(o.Text)
	}
	if f := senderFixes[enh]; f != "" {
		return f
	}
	switch o.Code {
	case 535, 534:
		return "the upstream refused the credentials: check the username and password (RELAYCTL_SMTP_PASSWORD)"
	case 530:
		return "the upstream wants authentication (or TLS) first: configure the username and password"
	}
	return "see the server's reply"
}

func leadingEnhanced(text string) string {
	f, _, _ := strings.Cut(text, " ")
	parts := strings.Split(f, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return ""
	}
	return f
}

func mailboxUnknown(text string) bool {
	return containsAny(text, []string{"user unknown", "unknown user", "no such user", "mailbox unavailable",
		"does not exist", "mailbox not found", "recipient rejected", "invalid recipient", "unknown recipient"})
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// classifyError handles what is not an SMTP reply: network and TLS
// failures.
func classifyError(err error) Outcome {
	o := Outcome{Kind: Deferred, Text: err.Error()}
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ie x509.CertificateInvalidError
	var re tls.RecordHeaderError
	var fe *FatalError
	var ne net.Error
	switch {
	case errors.As(err, &fe):
		o.Kind = Fatal
	case errors.Is(err, ErrNullMX):
		o.Kind, o.Suppress = Bounced, true
	case errors.As(err, &ce), errors.As(err, &ue), errors.As(err, &he), errors.As(err, &ie), errors.As(err, &re):
		o.Text = "TLS: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		o.Text = "timeout: " + err.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		o.Text = "connection dropped: " + err.Error()
	}
	return o
}

// FatalError is a failure that no retry can mend: the run must stop.
type FatalError struct {
	Msg string
	Err error
}

func (e *FatalError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *FatalError) Unwrap() error { return e.Err }
