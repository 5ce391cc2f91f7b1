package listclean

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Domain verdicts. They double as reject reasons in the rejects file, except
// DomainOK and DomainUnverified (kept unless --strict).
const (
	DomainOK         = "ok"
	DomainNullMX     = "null_mx"
	DomainNoMailHost = "no_mail_host"
	DomainNoDomain   = "no_domain"
	DomainUnverified = "dns_unverified"
)

// DomainResult is the verdict on whether a domain can receive mail.
type DomainResult struct {
	Domain  string
	Verdict string
	MX      []string // MX hosts by preference; empty for an implicit MX
	Prefs   []uint16 // their preferences
	Detail  string
}

// Resolver asks one DNS server about mail domains. Unlike net.Resolver it
// tells NXDOMAIN, NODATA and SERVFAIL apart, which the verdicts need.
type Resolver struct {
	server  string
	timeout time.Duration
	udp     *dns.Client
	tcp     *dns.Client
}

// NewResolver returns a resolver that sends every query to server
// (host:port, or host for port 53); with server empty, to the first
// nameserver of /etc/resolv.conf. timeout bounds each query.
func NewResolver(server string, timeout time.Duration) (*Resolver, error) {
	if server == "" {
		cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cfg.Servers) == 0 {
			return nil, fmt.Errorf("no DNS resolver in /etc/resolv.conf (set --resolver or RELAYCTL_RESOLVER): %v", err)
		}
		server = net.JoinHostPort(cfg.Servers[0], cfg.Port)
	} else if _, _, err := net.SplitHostPort(server); err != nil {
		if net.ParseIP(strings.Trim(server, "[]")) == nil && strings.Contains(server, ":") {
			return nil, fmt.Errorf("resolver %q: want HOST:PORT", server)
		}
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("resolver timeout must be positive, got %s", timeout)
	}
	return &Resolver{
		server:  server,
		timeout: timeout,
		udp:     &dns.Client{Net: "udp", Timeout: timeout, UDPSize: 1232},
		tcp:     &dns.Client{Net: "tcp", Timeout: timeout},
	}, nil
}

// Server is the address queries go to.
func (r *Resolver) Server() string { return r.server }

// errServFail marks answers that say nothing about the name: SERVFAIL,
// REFUSED and the like. They are retried, and leave a domain unverified.
var errServFail = errors.New("server failure")

// query asks once more after a timeout or server failure.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var resp *dns.Msg
		resp, err = r.exchange(ctx, m)
		if err == nil {
			switch resp.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				return resp, nil
			}
			err = fmt.Errorf("%w: %s", errServFail, dns.RcodeToString[resp.Rcode])
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, err
}

// Exchange sends m to the resolver's server and returns its answer: over
// UDP, then TCP when the answer was truncated, within the resolver's
// timeout; Ctrl-C (ctx) ends it at once.
func (r *Resolver) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	return r.exchange(ctx, m)
}

func (r *Resolver) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	resp, err := r.exchangeOn(ctx, r.udp, m)
	if err == nil && resp.Truncated {
		resp, err = r.exchangeOn(ctx, r.tcp, m)
	}
	return resp, err
}

// exchangeOn sends m over a connection of its own, closed as soon as ctx
// ends: the DNS library honours a context's deadline but not its
// cancellation, and Ctrl-C must not wait for a query's full timeout.
func (r *Resolver) exchangeOn(ctx context.Context, c *dns.Client, m *dns.Msg) (*dns.Msg, error) {
	conn, err := c.DialContext(ctx, r.server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp, err
}

// CheckDomain decides whether domain can receive mail: an MX record, or
// failing that an A or AAAA record (the implicit MX of RFC 5321 §5.1), and
// not a null MX (RFC 7505). A domain is only called dead on an answer that
// says so; timeouts and server failures leave it DomainUnverified.
func (r *Resolver) CheckDomain(ctx context.Context, domain string) DomainResult {
	res := DomainResult{Domain: domain}
	if strings.HasPrefix(domain, "[") {
		res.Verdict, res.Detail = DomainOK, "address literal: no DNS needed"
		return res
	}
	unverified := func(qtype string, err error) DomainResult {
		res.Verdict, res.Detail = DomainUnverified, fmt.Sprintf("%s query: %v", qtype, shortDNSError(err))
		return res
	}
	resp, err := r.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return unverified("MX", err)
	}
	if resp.Rcode == dns.RcodeNameError {
		res.Verdict, res.Detail = DomainNoDomain, "NXDOMAIN"
		return res
	}
	type mx struct {
		pref uint16
		host string
	}
	var mxs []mx
	for _, rr := range resp.Answer {
		if m, ok := rr.(*dns.MX); ok {
			mxs = append(mxs, mx{m.Preference, strings.ToLower(m.Mx)})
		}
	}
	if len(mxs) > 0 {
		slices.SortStableFunc(mxs, func(a, b mx) int { return int(a.pref) - int(b.pref) })
		for _, m := range mxs {
			if m.host != "." {
				res.MX = append(res.MX, strings.TrimSuffix(m.host, "."))
				res.Prefs = append(res.Prefs, m.pref)
			}
		}
		if len(res.MX) == 0 {
			res.Verdict, res.Detail = DomainNullMX, "null MX: the domain accepts no mail (RFC 7505)"
			return res
		}
		res.Verdict = DomainOK
		return res
	}
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := r.query(ctx, domain, qt)
		if err != nil {
			return unverified(dns.TypeToString[qt], err)
		}
		if resp.Rcode == dns.RcodeNameError {
			res.Verdict, res.Detail = DomainNoDomain, "NXDOMAIN"
			return res
		}
		for _, rr := range resp.Answer {
			switch rr.(type) {
			case *dns.A, *dns.AAAA:
				res.Verdict, res.Detail = DomainOK, "no MX, implicit MX from "+dns.TypeToString[qt]
				return res
			}
		}
	}
	res.Verdict, res.Detail = DomainNoMailHost, "no MX, A or AAAA record"
	return res
}

func shortDNSError(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return err.Error()
}

// CheckDomains checks domains with up to concurrency queries in flight and
// calls done (if not nil, from any goroutine) after each domain.
func (r *Resolver) CheckDomains(ctx context.Context, domains []string, concurrency int, done func()) []DomainResult {
	out := make([]DomainResult, len(domains))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(concurrency, len(domains))) {
		wg.Go(func() {
			for i := range next {
				out[i] = r.CheckDomain(ctx, domains[i])
				if done != nil {
					done()
				}
			}
		})
	}
	for i := range domains {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// Addrs returns host's IPv4 and IPv6 addresses, asked of the resolver's
// server like everything else (never the system's).
func (r *Resolver) Addrs(ctx context.Context, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := r.query(ctx, host, qt)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %v", dns.TypeToString[qt], host, shortDNSError(err)))
			continue
		}
		for _, rr := range resp.Answer {
			switch a := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
					out = append(out, ip)
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(a.AAAA); ok {
					out = append(out, ip)
				}
			}
		}
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, fmt.Errorf("%s has no address", host)
	}
	return out, nil
}
