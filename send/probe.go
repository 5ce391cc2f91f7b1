package send

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"syscall"
	"time"
)

// Result is how one step of a check went.
type Result string

// The results a step can have.
const (
	ResultOK   Result = "ok"
	ResultFail Result = "FAIL"
	ResultWarn Result = "warn"
	ResultSkip Result = "skip"
)

// Step is one line of a check's report: what was tried, how it went, and
// what the server said.
type Step struct {
	Name   string
	Result Result
	Detail string
}

// TLSReport is what a TLS handshake showed: the protocol, the server's
// certificate, and whether it verifies against the roots relayctl trusts.
type TLSReport struct {
	Version  string    `json:"version"`
	Cipher   string    `json:"cipher"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
	Verified bool      `json:"verified"`
	Error    string    `json:"error,omitempty"`
}

// probe speaks the opening of an SMTP session itself, one step at a time,
// and keeps what it sees. handshake does the same for delivery but keeps
// nothing of it (the banner, the extensions, the certificate), which is
// what a check is for; past the opening, go-smtp takes over through the
// same Session.greet that delivery uses.
type probe struct {
	host  string // the server's name, for TLS and messages
	helo  string
	t     Timeouts
	raw   net.Conn // the TCP connection, closed when the context ends
	conn  net.Conn // raw, or TLS over it
	tp    *textproto.Conn
	isTLS bool
	roots string // what certificates are verified against, for people

	steps      []Step
	banner     string
	extensions []string // from the last EHLO
	tlsReport  *TLSReport
}

// connect dials addr and starts a probe of host on it. The returned stop
// function must be called when the probe is done with.
func (d *Dialer) connect(ctx context.Context, host, addr string) (*probe, func(), error) {
	p := &probe{host: host, helo: d.HELO, t: d.Timeouts, roots: "the system's roots"}
	if d.TLS != nil && d.TLS.RootCAs != nil {
		p.roots = "the system's roots and the --ca file"
	}
	conn, err := d.dial(ctx, addr)
	if err != nil {
		return p, func() {}, p.record(ResultFail, "connect", err.Error()+connectHint(addr, err), err)
	}
	p.raw, p.conn = conn, conn
	p.tp = textproto.NewConn(conn)
	p.add("connect", ResultOK, conn.RemoteAddr().String())
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return p, func() { stop(); conn.Close() }, nil
}

// connectHint says why a connection commonly fails.
func connectHint(addr string, err error) string {
	_, port, _ := net.SplitHostPort(addr)
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	switch {
	case port == "25" && timeout:
		return " (outbound port 25 is often blocked by ISPs and cloud providers: try from another network, or the submission port 587)"
	case timeout:
		return " (a firewall may be dropping the connection)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return " (nothing listens there: check the host and port)"
	}
	return ""
}

func (p *probe) add(name string, r Result, detail string) {
	p.steps = append(p.steps, Step{Name: name, Result: r, Detail: detail})
}

// stepError is a step that failed: its message is the step's detail, and
// it wraps the cause (an *smtp.SMTPError when the server refused).
type stepError struct {
	host, step, detail string
	err                error
}

func (e *stepError) Error() string {
	if e.step == "" {
		return e.host + ": " + e.detail
	}
	return e.host + ": " + e.step + ": " + e.detail
}
func (e *stepError) Unwrap() error { return e.err }

// record adds a step that failed (or only warns) and returns it as an
// error wrapping cause, which may be nil.
func (p *probe) record(r Result, name, detail string, cause error) error {
	p.add(name, r, detail)
	return &stepError{host: p.host, step: name, detail: detail, err: cause}
}

// fail records a step failed by err, as the server said it, and hint.
func (p *probe) fail(name string, err error, hint string) error {
	return p.failAs(ResultFail, name, err, hint)
}

// failAs is fail for a step whose failure may be only a warning.
func (p *probe) failAs(r Result, name string, err error, hint string) error {
	return p.record(r, name, replyOf(err)+hint, err)
}

// failText records a failed step whose detail is already worded.
func (p *probe) failText(name, detail string, cause error) error {
	return p.record(ResultFail, name, detail, cause)
}

// failResult is how a TLS step's failure counts: a failure when TLS is
// enforced, else a warning.
func failResult(enforce bool) Result {
	if enforce {
		return ResultFail
	}
	return ResultWarn
}

// replyOf is an error as the server said it ("554 5.7.1 text"), or the
// error's own text when it is not a reply.
func replyOf(err error) string {
	return Classify(replyError(err)).Reply()
}

// within bounds the next exchange: the command timeout, or the context's
// deadline when that comes first.
func (p *probe) within(ctx context.Context) {
	dl := time.Now().Add(p.t.Command)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	p.conn.SetDeadline(dl)
}

// greeting reads the server's banner.
func (p *probe) greeting(ctx context.Context) error {
	p.within(ctx)
	code, msg, err := p.tp.ReadResponse(220)
	if err != nil {
		return p.fail("banner", err, "")
	}
	p.banner = fmt.Sprintf("%d %s", code, strings.ReplaceAll(msg, "\n", " "))
	p.add("banner", ResultOK, p.banner)
	return nil
}

// ehlo introduces the client and keeps the extensions announced.
func (p *probe) ehlo(ctx context.Context, step string) error {
	p.within(ctx)
	if err := p.tp.PrintfLine("EHLO %s", p.helo); err != nil {
		return p.fail(step, err, "")
	}
	_, msg, err := p.tp.ReadResponse(250)
	if err != nil {
		return p.fail(step, err, "")
	}
	p.extensions = []string{}
	for _, line := range strings.Split(msg, "\n")[1:] {
		if line = strings.TrimSpace(line); line != "" {
			p.extensions = append(p.extensions, line)
		}
	}
	p.add(step, ResultOK, strings.Join(p.extensions, ", "))
	return nil
}

// offers reports whether the last EHLO announced ext, and its parameters.
func (p *probe) offers(ext string) (bool, string) {
	for _, line := range p.extensions {
		name, params, _ := strings.Cut(line, " ")
		if strings.EqualFold(name, ext) {
			return true, params
		}
	}
	return false, ""
}

// startTLS sends STARTTLS and upgrades the connection.
func (p *probe) startTLS(ctx context.Context, cfg *tls.Config, enforce bool) error {
	p.within(ctx)
	r := failResult(enforce)
	if err := p.tp.PrintfLine("STARTTLS"); err != nil {
		return p.failAs(r, "starttls", err, "")
	}
	if _, _, err := p.tp.ReadResponse(220); err != nil {
		return p.failAs(r, "starttls", err, "")
	}
	if p.tp.R.Buffered() > 0 {
		return p.failAs(r, "starttls", errors.New("data after the STARTTLS reply (possible command injection)"), "")
	}
	return p.handshakeTLS(ctx, cfg, enforce)
}

// handshakeTLS speaks TLS over the connection and reports the protocol and
// certificate. With enforce, the certificate is verified as delivery
// verifies it, and a failure ends the handshake; without (the open-relay
// test, which sends nothing secret), it is verified just the same, the
// result reported, and the test goes on.
func (p *probe) handshakeTLS(ctx context.Context, cfg *tls.Config, enforce bool) error {
	rep := &TLSReport{}
	p.tlsReport = rep
	tc := inspectingTLS(cfg, p.host, enforce, rep)
	tconn := tls.Client(p.raw, tc)
	hctx, cancel := context.WithTimeout(ctx, p.t.Command)
	err := tconn.HandshakeContext(hctx)
	cancel()
	p.raw.SetDeadline(time.Time{})
	if err != nil {
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
			cs := tconn.ConnectionState()
			cs.PeerCertificates = cve.UnverifiedCertificates
			rep.fill(cs)
			rep.Error = cve.Err.Error()
			p.reportTLS(enforce)
			return &stepError{host: p.host, detail: "certificate does not verify: " + rep.Error + verifyHint(rep.Error), err: err}
		}
		return p.failAs(failResult(enforce), "tls", err, "")
	}
	p.conn, p.isTLS = tconn, true
	p.tp = textproto.NewConn(tconn)
	p.reportTLS(enforce)
	return nil
}

// reportTLS adds the steps that show the handshake.
func (p *probe) reportTLS(enforce bool) {
	r := p.tlsReport
	if r.Version != "" {
		p.add("tls", ResultOK, r.Version+", "+r.Cipher)
	}
	soon := expiresIn(r.NotAfter)
	cert := ResultOK
	if soon != "" {
		cert = ResultWarn
	}
	p.add("certificate", cert, fmt.Sprintf("%s, issued by %s, expires %s%s",
		r.Subject, r.Issuer, r.NotAfter.UTC().Format(time.RFC3339), soon))
	switch {
	case r.Verified:
		p.add("verify", ResultOK, fmt.Sprintf("valid for %s, verified against %s", p.host, p.roots))
	case !enforce:
		p.add("verify", ResultWarn, r.Error+" (the test went on: it sends nothing secret)")
	default:
		p.add("verify", ResultFail, r.Error+verifyHint(r.Error))
	}
}

func expiresIn(t time.Time) string {
	left := time.Until(t)
	switch {
	case left < 0:
		return " (expired)"
	case left < 48*time.Hour:
		return fmt.Sprintf(" (in %d hours: renew it)", int(left.Hours()))
	case left < 14*24*time.Hour:
		return fmt.Sprintf(" (in %d days: renew it)", int(left.Hours()/24))
	}
	return ""
}

func verifyHint(msg string) string {
	switch {
	case strings.Contains(msg, "unknown authority"):
		return " (a private or self-signed CA: pass its PEM with --ca or tls_ca)"
	case strings.Contains(msg, "is valid for"), strings.Contains(msg, "not valid for"):
		return " (connect by the name the certificate is for)"
	case strings.Contains(msg, "expired"):
		return " (the server's certificate must be renewed)"
	}
	return ""
}

// inspectingTLS is tlsConfig, recording what the handshake shows in rep.
// With enforce, verification is Go's own and untouched (VerifyConnection
// runs only once it passed); without, Go's is replaced by the same check
// made by hand whose failure is recorded instead of ending the handshake.
func inspectingTLS(cfg *tls.Config, host string, enforce bool, rep *TLSReport) *tls.Config {
	c := tlsConfig(cfg, host)
	if enforce {
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			rep.fill(cs)
			rep.Verified = true
			return nil
		}
		return c
	}
	roots, name := c.RootCAs, c.ServerName
	c.InsecureSkipVerify = true // verified below, reported, never silently skipped
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		rep.fill(cs)
		if len(cs.PeerCertificates) == 0 {
			rep.Error = "the server sent no certificate"
			return nil
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
		rep.Verified = err == nil
		if err != nil {
			rep.Error = err.Error()
		}
		return nil
	}
	return c
}

func (r *TLSReport) fill(cs tls.ConnectionState) {
	if cs.Version != 0 {
		r.Version = tls.VersionName(cs.Version)
		r.Cipher = tls.CipherSuiteName(cs.CipherSuite)
	}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		r.Subject, r.Issuer, r.NotAfter = leaf.Subject.String(), leaf.Issuer.String(), leaf.NotAfter
	}
}

// session hands the connection to go-smtp, as handshake does, for AUTH
// and transactions.
func (p *probe) session(ctx context.Context) (*Session, error) {
	p.conn.SetDeadline(time.Time{})
	s := &Session{conn: p.conn, Host: p.host, Addr: p.raw.RemoteAddr().String(), TLS: p.isTLS, Opened: time.Now(), timeouts: p.t}
	if err := s.greet(ctx, p.conn, p.helo, p.tp.R); err != nil {
		return nil, p.fail("ehlo", err, "")
	}
	return s, nil
}
