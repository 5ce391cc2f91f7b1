package send

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

// Upstream is a smarthost: smtp://user@host:587 (STARTTLS required unless
// ?tls=none) or smtps://user@host:465 (implicit TLS).
type Upstream struct {
	Host     string
	Port     int
	Mode     TLSMode
	Username string
	Password string
}

// ParseUpstream reads an upstream URL. A password in the URL is refused:
// it would show in ps and in shell history.
func ParseUpstream(raw string) (*Upstream, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", raw, err)
	}
	up := &Upstream{Host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
		up.Port, up.Mode = 587, TLSRequired
		switch u.Query().Get("tls") {
		case "", "required", "starttls":
		case "none":
			up.Mode = TLSNone
		default:
			return nil, fmt.Errorf("upstream %q: tls=%s: want none or starttls", raw, u.Query().Get("tls"))
		}
	case "smtps":
		up.Port, up.Mode = 465, TLSImplicit
	default:
		return nil, fmt.Errorf("upstream %q: want smtp://host:587 or smtps://host:465", raw)
	}
	if up.Host == "" {
		return nil, fmt.Errorf("upstream %q: no host", raw)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("upstream %q: bad port", raw)
		}
		up.Port = n
	}
	if u.User != nil {
		up.Username = u.User.Username()
		if _, set := u.User.Password(); set {
			return nil, fmt.Errorf("upstream %q: put the password in relayctl.yaml or RELAYCTL_SMTP_PASSWORD, not in the URL", redact(u))
		}
	}
	return up, nil
}

func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

// MX is one mail exchanger of a domain.
type MX struct {
	Host string
	Pref uint16
}

// Resolver is the DNS that direct delivery needs.
type Resolver interface {
	// LookupMX returns the domain's MX hosts; implicit is true when the
	// domain has none but has an address (RFC 5321 §5.1), null when it
	// publishes a null MX (RFC 7505).
	LookupMX(ctx context.Context, domain string) (mx []MX, implicit, null bool, err error)
	// LookupAddrs returns a host's IPv4 and IPv6 addresses.
	LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error)
}

// Dialer opens sessions: to an upstream when one is set, otherwise
// straight to each domain's MX hosts.
type Dialer struct {
	HELO     string
	TLS      *tls.Config // roots (--ca); nil for the system's
	Timeouts Timeouts
	Upstream *Upstream
	Resolver Resolver
	// Port overrides port 25 for direct delivery (tests).
	Port int
}

// Open returns a session that can deliver mail for domain.
func (d *Dialer) Open(ctx context.Context, domain string) (*Session, error) {
	if d.Upstream != nil {
		return d.openUpstream(ctx)
	}
	return d.openDirect(ctx, domain)
}

func (d *Dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.Timeouts.Dial)
	defer cancel()
	var nd net.Dialer
	return nd.DialContext(dctx, "tcp", addr)
}

func (d *Dialer) openUpstream(ctx context.Context) (*Session, error) {
	up := d.Upstream
	conn, err := d.dial(ctx, net.JoinHostPort(up.Host, strconv.Itoa(up.Port)))
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up.Host, err)
	}
	s, err := handshake(ctx, conn, up.Host, d.HELO, up.Mode, d.TLS, d.Timeouts)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if up.Username != "" {
		if err := s.auth(up); err != nil {
			s.Abort()
			return nil, err
		}
	}
	return s, nil
}

// auth picks a mechanism from what the server offers: PLAIN or LOGIN over
// TLS, CRAM-MD5 first on a connection without it (it never sends the
// password itself).
func (s *Session) auth(up *Upstream) error {
	ok, mechs := s.c.Extension("AUTH")
	if !ok {
		return &FatalError{Msg: fmt.Sprintf("upstream %s offers no AUTH (after TLS: %v), but a username is configured", up.Host, s.TLS)}
	}
	m := authMechanism(mechs, s.TLS)
	if m == "" {
		return &FatalError{Msg: fmt.Sprintf("upstream %s offers AUTH %s; relayctl speaks PLAIN, LOGIN and CRAM-MD5", up.Host, mechs)}
	}
	if err := s.c.Auth(saslClient(m, up)); err != nil {
		return &FatalError{Msg: fmt.Sprintf("upstream %s refused AUTH %s for %s: check the username and password", up.Host, m, up.Username), Err: err}
	}
	return nil
}

// authMechanism is the mechanism to use of those offered: PLAIN or LOGIN
// over TLS, CRAM-MD5 first without it; "" if none is one relayctl speaks.
func authMechanism(offered string, overTLS bool) string {
	have := strings.Fields(strings.ToUpper(offered))
	prefs := []string{"PLAIN", "LOGIN", "CRAM-MD5"}
	if !overTLS {
		prefs = []string{"CRAM-MD5", "PLAIN", "LOGIN"}
	}
	for _, m := range prefs {
		if slices.Contains(have, m) {
			return m
		}
	}
	return ""
}

func saslClient(mech string, up *Upstream) sasl.Client {
	switch mech {
	case "PLAIN":
		return sasl.NewPlainClient("", up.Username, up.Password)
	case "LOGIN":
		return sasl.NewLoginClient(up.Username, up.Password)
	}
	return &cramMD5{up.Username, up.Password}
}

// cramMD5 is RFC 2195's CRAM-MD5, which go-sasl does not provide.
type cramMD5 struct{ user, secret string }

func (c *cramMD5) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c *cramMD5) Next(challenge []byte) ([]byte, error) {
	return []byte(c.user + " " + CRAMDigest(c.secret, challenge)), nil
}

// CRAMDigest is CRAM-MD5's proof (RFC 2195): the hex HMAC-MD5 of the
// server's challenge keyed with the shared secret. The client sends it;
// relayctl serve computes it to check.
func CRAMDigest(secret string, challenge []byte) string {
	m := hmac.New(md5.New, []byte(secret))
	m.Write(challenge)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrNullMX is returned for a domain that accepts no mail.
var ErrNullMX = errors.New("the domain publishes a null MX: it accepts no mail")

// openDirect tries the domain's MX hosts in preference order (shuffled
// among equal preferences, as RFC 5321 §5.1 asks), each of its addresses,
// moving on after a refused connection or a 4xx greeting.
func (d *Dialer) openDirect(ctx context.Context, domain string) (*Session, error) {
	mxs, implicit, null, err := d.Resolver.LookupMX(ctx, domain)
	if err != nil {
		return nil, fmt.Errorf("MX of %s: %w", domain, err)
	}
	if null {
		return nil, fmt.Errorf("%s: %w", domain, ErrNullMX)
	}
	if implicit {
		mxs = []MX{{Host: domain}}
	}
	if len(mxs) == 0 {
		return nil, fmt.Errorf("%s: no MX and no address", domain)
	}
	mxs = shuffleEqual(mxs)
	port := 25
	if d.Port != 0 {
		port = d.Port
	}
	var errs []error
	for _, mx := range mxs {
		addrs, err := d.Resolver.LookupAddrs(ctx, mx.Host)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", mx.Host, err))
			continue
		}
		for _, a := range addrs {
			conn, err := d.dial(ctx, net.JoinHostPort(a.String(), strconv.Itoa(port)))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", mx.Host, err))
				continue
			}
			s, err := handshake(ctx, conn, mx.Host, d.HELO, TLSOpportunistic, d.TLS, d.Timeouts)
			if err != nil {
				conn.Close()
				errs = append(errs, err)
				var fe *FatalError
				if errors.As(err, &fe) || ctx.Err() != nil {
					return nil, err
				}
				continue
			}
			return s, nil
		}
	}
	// The last host's error decides the outcome; the others are context.
	last := errs[len(errs)-1]
	if len(errs) > 1 {
		return nil, fmt.Errorf("%w (and %d more MX attempts failed)", last, len(errs)-1)
	}
	return nil, last
}

// shuffleEqual sorts by preference and shuffles hosts of equal preference.
func shuffleEqual(mxs []MX) []MX {
	out := slices.Clone(mxs)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	slices.SortStableFunc(out, func(a, b MX) int { return int(a.Pref) - int(b.Pref) })
	return out
}

// TLSWithCA returns a TLS configuration that trusts the system's CAs and
// those in caFile (PEM), for an upstream or MX hosts with a private CA;
// nil (the system's alone) when caFile is "".
func TLSWithCA(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool}, nil
}
