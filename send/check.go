package send

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// CheckOptions say what a check of an upstream does beyond connecting,
// TLS and AUTH.
type CheckOptions struct {
	// SendTo, when set, is sent a short test message from From.
	SendTo string
	From   string
}

// CheckReport is what checking an upstream found. Steps is the report for
// people; the rest, relayctl check --json's object.
type CheckReport struct {
	Host       string      `json:"host"`
	Port       int         `json:"port"`
	Banner     string      `json:"banner"`
	Extensions []string    `json:"extensions"`
	TLS        *TLSReport  `json:"tls"`
	Auth       *AuthReport `json:"auth"`
	Send       *SendReport `json:"send"`
	OK         bool        `json:"ok"`
	Error      string      `json:"error,omitempty"`
	Steps      []Step      `json:"-"`
}

// AuthReport is how AUTH went. The password is never part of it.
type AuthReport struct {
	Mechanism string `json:"mechanism"`
	OK        bool   `json:"ok"`
	Reply     string `json:"reply"`
}

// SendReport is the server's reply to the test message: on success, the
// 250 that usually names the queue id.
type SendReport struct {
	To    string `json:"to"`
	Reply string `json:"reply"`
}

// CheckUpstream connects to d.Upstream as delivery would, showing each
// step: the banner and EHLO extensions, TLS (STARTTLS for smtp://,
// implicit for smtps://) with its certificate, verified as delivery
// verifies it, AUTH with the configured credentials and, with o.SendTo, a
// test message. It stops at the first step that fails, and returns the
// report, and that failure as the error.
func (d *Dialer) CheckUpstream(ctx context.Context, o CheckOptions) (*CheckReport, error) {
	up := d.Upstream
	if up == nil {
		return nil, errors.New("check: no upstream")
	}
	rep := &CheckReport{Host: up.Host, Port: up.Port, Extensions: []string{}}
	p, stop, err := d.connect(ctx, up.Host, net.JoinHostPort(up.Host, strconv.Itoa(up.Port)))
	if err == nil {
		err = d.checkUpstream(ctx, p, o, rep)
	}
	stop()
	rep.Steps, rep.Banner, rep.TLS = p.steps, p.banner, p.tlsReport
	if p.extensions != nil {
		rep.Extensions = p.extensions
	}
	if err != nil {
		rep.Error = err.Error()
		return rep, err
	}
	rep.OK = true
	return rep, nil
}

func (d *Dialer) checkUpstream(ctx context.Context, p *probe, o CheckOptions, rep *CheckReport) error {
	up := d.Upstream
	if up.Mode == TLSImplicit {
		if err := p.handshakeTLS(ctx, d.TLS, true); err != nil {
			return err
		}
	}
	if err := p.greeting(ctx); err != nil {
		return err
	}
	if err := p.ehlo(ctx, "ehlo"); err != nil {
		return err
	}
	switch up.Mode {
	case TLSNone:
		p.add("tls", ResultWarn, "none (?tls=none): the session travels in clear, and the password too unless AUTH is CRAM-MD5")
	case TLSRequired, TLSOpportunistic:
		if ok, _ := p.offers("STARTTLS"); !ok {
			return p.failText("starttls", "not offered, and smtp:// requires it (smtps:// for implicit TLS on port 465; ?tls=none only on a trusted network)", nil)
		}
		if err := p.startTLS(ctx, d.TLS, true); err != nil {
			return err
		}
		if err := p.ehlo(ctx, "ehlo (TLS)"); err != nil {
			return err
		}
	}
	s, err := p.session(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := checkAuth(s, up, p, rep); err != nil {
		return err
	}
	if o.SendTo == "" {
		p.add("send", ResultSkip, "no --send-to: no test message")
		return nil
	}
	msg, err := checkMessage(o.From, o.SendTo, up.Host, time.Now())
	if err != nil {
		return p.failText("send", err.Error(), err)
	}
	out, err := s.Send(ctx, o.From, []string{o.SendTo}, msg)
	if len(out) == 1 {
		rep.Send = &SendReport{To: o.SendTo, Reply: out[0].Reply()}
		if out[0].Kind == Sent {
			p.add("send", ResultOK, fmt.Sprintf("from <%s> to <%s>: %s", o.From, o.SendTo, out[0].Reply()))
			return nil
		}
		return p.failText("send", fmt.Sprintf("from <%s> to <%s>: %s", o.From, o.SendTo, out[0].Reply()), err)
	}
	return p.fail("send", err, "")
}

// checkAuth authenticates as delivery does, and says with what.
func checkAuth(s *Session, up *Upstream, p *probe, rep *CheckReport) error {
	if up.Username == "" {
		p.add("auth", ResultSkip, "no username in the URL: not authenticating")
		return nil
	}
	ok, mechs := s.Extension("AUTH")
	if !ok {
		hint := ""
		if tls, _ := p.offers("STARTTLS"); tls && !s.TLS {
			hint = " (it offers STARTTLS: servers commonly offer AUTH only after it, so drop ?tls=none)"
		}
		return p.failText("auth", "the server offers no AUTH, and a username is configured"+hint, nil)
	}
	mech := authMechanism(mechs, s.TLS)
	if mech == "" {
		return p.failText("auth", fmt.Sprintf("the server offers AUTH %s; relayctl speaks PLAIN, LOGIN and CRAM-MD5", mechs), nil)
	}
	rep.Auth = &AuthReport{Mechanism: mech}
	if up.Password == "" {
		return p.failText("auth", fmt.Sprintf("%s as %s: no password: set RELAYCTL_SMTP_PASSWORD, or smtp_password in relayctl.yaml", mech, up.Username), nil)
	}
	if err := s.c.Auth(saslClient(mech, up)); err != nil {
		rep.Auth.Reply = replyOf(err)
		o := Classify(err)
		hint := ""
		if o.Kind == Fatal {
			hint = ": " + o.Fix()
		}
		return p.failText("auth", fmt.Sprintf("%s as %s: %s%s", mech, up.Username, rep.Auth.Reply, hint), err)
	}
	// go-smtp keeps the 235's text to itself; the code is what matters.
	rep.Auth.OK, rep.Auth.Reply = true, "235"
	p.add("auth", ResultOK, fmt.Sprintf("%s as %s: accepted (235)", mech, up.Username))
	return nil
}

// checkMessage is the test message: short, plain, with the headers
// receivers insist on (Date, Message-ID).
func checkMessage(from, to, relay string, now time.Time) ([]byte, error) {
	_, domain, ok := strings.Cut(from, "@")
	if !ok || strings.ContainsAny(from+to, "\r\n<>") {
		return nil, fmt.Errorf("from <%s> to <%s>: not plain addresses", from, to)
	}
	var id [8]byte
	rand.Read(id[:])
	return []byte("From: <" + from + ">\r\n" +
		"To: <" + to + ">\r\n" +
		"Subject: relayctl check\r\n" +
		"Date: " + now.Format(time.RFC1123Z) + "\r\n" +
		"Message-ID: <relayctl-check." + hex.EncodeToString(id[:]) + "@" + domain + ">\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"This is a test message from relayctl check, sent through " + relay + "\r\n" +
		"to see that it delivers. Nothing needs to be done about it.\r\n"), nil
}
