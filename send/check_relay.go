package send

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Outside addresses for the open-relay test: neither is the server's, so
// only a relay accepts the recipient. They are reserved domains (RFC
// 2606): even an open relay cannot deliver to them, and no DATA is sent
// anyway.
const (
	DefaultRelayFrom = "relayctl-test@example.org"
	DefaultRelayRcpt = "relay-test@example.net"
)

// RelayCheckOptions are the envelope of the open-relay test.
type RelayCheckOptions struct {
	From string // the outside sender; DefaultRelayFrom if ""
	Rcpt string // the outside recipient; DefaultRelayRcpt if ""
}

// RelayReport is what the open-relay test found. Steps is the report for
// people; the rest, relayctl check --open-relay --json's object.
type RelayReport struct {
	Host       string       `json:"host"`
	Port       int          `json:"port"`
	Banner     string       `json:"banner"`
	Extensions []string     `json:"extensions"`
	TLS        *TLSReport   `json:"tls"`
	Probes     []RelayProbe `json:"probes"`
	Open       bool         `json:"open"`
	Verdict    string       `json:"verdict"`
	OK         bool         `json:"ok"`
	Error      string       `json:"error,omitempty"`
	Steps      []Step       `json:"-"`
}

// RelayProbe is one recipient tried without authentication.
type RelayProbe struct {
	Channel  string `json:"channel"` // "starttls" or "plain"
	Variant  string `json:"variant"` // "plain" or "percent-hack"
	From     string `json:"from"`
	Rcpt     string `json:"rcpt"`
	Accepted bool   `json:"accepted"`
	Reply    string `json:"reply"`
}

// ParseRelayTarget reads HOST[:PORT] (an IPv6 address in brackets when
// it has a port); the port is 25 when not given.
func ParseRelayTarget(s string) (string, int, error) {
	host, port := s, 25
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", 0, fmt.Errorf("%q: want HOST or HOST:PORT", s)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("%q: bad port", s)
		}
		host, port = h, n
	}
	if host == "" || strings.ContainsAny(host, " /@<>\r\n") {
		return "", 0, fmt.Errorf("%q: want HOST or HOST:PORT", s)
	}
	return host, port, nil
}

// CheckRelay tells whether host:port relays for anyone: without
// authentication it asks to send from an outside sender to an outside
// recipient, and, as a classic trick, to relay-test%example.net at the
// server's own name. It never sends DATA: after the RCPTs come RSET and
// QUIT. STARTTLS is tried first when offered, then the test is repeated in
// plain text, since a server can be open over either. An open relay is
// reported as the error.
func (d *Dialer) CheckRelay(ctx context.Context, host string, port int, o RelayCheckOptions) (*RelayReport, error) {
	if o.From == "" {
		o.From = DefaultRelayFrom
	}
	if o.Rcpt == "" {
		o.Rcpt = DefaultRelayRcpt
	}
	rep := &RelayReport{Host: host, Port: port, Extensions: []string{}, Probes: []RelayProbe{}}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	again, err := d.relayPass(ctx, addr, o, true, rep)
	if err == nil && again {
		_, err = d.relayPass(ctx, addr, o, false, rep)
	}
	if err != nil {
		rep.Error = err.Error()
		return rep, err
	}
	refusal := ""
	for _, pr := range rep.Probes {
		if pr.Variant == "plain" && pr.Accepted {
			rep.Open = true
		}
		if refusal == "" && pr.Variant == "plain" && !pr.Accepted {
			refusal = pr.Reply
		}
	}
	if rep.Open {
		rep.Verdict = host + " is an OPEN RELAY: it accepted a recipient at an outside domain without authentication"
		rep.Error = rep.Verdict
		return rep, fmt.Errorf("%s", rep.Verdict)
	}
	if refusal == "" {
		err := fmt.Errorf("%s: no relay test could be made", host)
		rep.Error = err.Error()
		return rep, err
	}
	rep.Verdict = host + " refused to relay: " + refusal
	rep.OK = true
	return rep, nil
}

// relayPass runs the test on one connection: over STARTTLS when tryTLS
// and the server offers it. again says the test remains to be made in
// plain text.
func (d *Dialer) relayPass(ctx context.Context, addr string, o RelayCheckOptions, tryTLS bool, rep *RelayReport) (again bool, err error) {
	p, stop, err := d.connect(ctx, rep.Host, addr)
	defer func() {
		stop()
		rep.Steps = append(rep.Steps, p.steps...)
	}()
	if err != nil {
		return false, err
	}
	if err := p.greeting(ctx); err != nil {
		return false, err
	}
	if rep.Banner == "" {
		rep.Banner = p.banner
	}
	if err := p.ehlo(ctx, "ehlo"); err != nil {
		return false, err
	}
	if tryTLS {
		rep.Extensions = p.extensions
	}
	channel := "plain"
	if offered, _ := p.offers("STARTTLS"); tryTLS && offered {
		err := p.startTLS(ctx, d.TLS, false)
		rep.TLS = p.tlsReport
		if err != nil {
			p.add("relay (STARTTLS)", ResultSkip, "no TLS session: testing in plain text only")
			return true, nil
		}
		if err := p.ehlo(ctx, "ehlo (TLS)"); err != nil {
			return false, err
		}
		rep.Extensions = p.extensions
		channel = "starttls"
	}
	s, err := p.session(ctx)
	if err != nil {
		return false, err
	}
	defer s.Close() // QUIT
	probes := []RelayProbe{
		{Channel: channel, Variant: "plain", From: o.From, Rcpt: o.Rcpt},
		{Channel: channel, Variant: "percent-hack", From: o.From, Rcpt: percentHack(o.Rcpt, ownDomain(rep.Host, p.banner))},
	}
	label := map[string]string{"plain": " (plain text)", "starttls": " (STARTTLS)"}[channel]
	if err := s.c.Mail(o.From, nil); err != nil {
		for i := range probes {
			probes[i].Reply = replyOf(err)
		}
		rep.Probes = append(rep.Probes, probes[0])
		p.add("relay"+label, ResultOK, fmt.Sprintf("MAIL FROM:<%s> refused: %s", o.From, replyOf(err)))
		return channel == "starttls", nil
	}
	for i := range probes {
		pr := &probes[i]
		err := s.c.Rcpt(pr.Rcpt, nil)
		pr.Accepted, pr.Reply = err == nil, "250"
		if err != nil {
			pr.Reply = replyOf(err)
		}
		rep.Probes = append(rep.Probes, *pr)
		p.add(probeStep(*pr, label))
		if brokenSession(err) != nil {
			return channel == "starttls", nil
		}
	}
	// Never DATA: the transaction is abandoned.
	s.c.Reset()
	return channel == "starttls", nil
}

func probeStep(pr RelayProbe, label string) (string, Result, string) {
	what := fmt.Sprintf("RCPT TO:<%s> from <%s>", pr.Rcpt, pr.From)
	switch {
	case pr.Variant == "plain" && pr.Accepted:
		return "relay" + label, ResultFail, what + " accepted without authentication: an open relay"
	case pr.Accepted:
		return "%-hack" + label, ResultWarn, what + " accepted: if the server honours the %-hack it relays (Postfix: allow_percent_hack = no; or check it bounces)"
	case pr.Variant == "plain":
		return "relay" + label, ResultOK, what + " refused: " + pr.Reply
	}
	return "%-hack" + label, ResultOK, what + " refused: " + pr.Reply
}

// ownDomain is the domain the server calls its own: host when it is a
// name, else the name in its banner, else host as an address literal.
func ownDomain(host, banner string) string {
	if _, err := netip.ParseAddr(host); err != nil {
		return host
	}
	if f := strings.Fields(banner); len(f) > 1 && strings.Contains(f[1], ".") {
		if _, err := netip.ParseAddr(f[1]); err != nil {
			return f[1]
		}
	}
	if a, _ := netip.ParseAddr(host); a.Is6() {
		return "[IPv6:" + host + "]"
	}
	return "[" + host + "]"
}

// percentHack turns local@outside into local%outside@domain: the old
// source-routing form some servers still relay.
func percentHack(rcpt, domain string) string {
	at := strings.LastIndex(rcpt, "@")
	if at < 0 {
		return rcpt + "@" + domain
	}
	return rcpt[:at] + "%" + rcpt[at+1:] + "@" + domain
}
