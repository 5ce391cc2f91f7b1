package domaincheck

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// Resolver asks one DNS server, and nothing else, the questions the
// checks and the SPF library ask. A net.Resolver, even one dialling that
// server, answers addresses and reverse names from /etc/hosts first, and
// the relay's own hosts file (127.0.1.1 relay.example.org) is exactly what
// receivers never see. Errors are *net.DNSError, as the SPF library
// expects: IsNotFound for NXDOMAIN or no record of the type, IsTemporary
// for SERVFAIL and the like, IsTimeout for timeouts.
type Resolver struct {
	server   string
	udp, tcp *dns.Client
}

// NewResolver returns a Resolver that sends every query to server
// (HOST:PORT). Callers bound each query with their context.
func NewResolver(server string) *Resolver {
	return &Resolver{
		server: server,
		udp:    &dns.Client{Net: "udp", UDPSize: 1232},
		tcp:    &dns.Client{Net: "tcp"},
	}
}

// LookupTXT returns name's TXT records, each record's strings joined.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.query(ctx, name, dns.TypeTXT)
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, err
}

// LookupMX returns name's MX records.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := r.query(ctx, name, dns.TypeMX)
	var out []*net.MX
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
	}
	return out, err
}

// LookupIPAddr returns host's IPv4 and IPv6 addresses.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	var out []net.IPAddr
	var failed error
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.query(ctx, host, qt)
		if err != nil && !isNotFound(err) {
			failed = err
		}
		for _, rr := range rrs {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, net.IPAddr{IP: a.A})
			case *dns.AAAA:
				out = append(out, net.IPAddr{IP: a.AAAA})
			}
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case failed != nil:
		return nil, failed
	}
	return nil, notFound(host, r.server)
}

// LookupAddr returns the names of addr's PTR records.
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	arpa, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: addr}
	}
	rrs, err := r.query(ctx, arpa, dns.TypePTR)
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.(*dns.PTR).Ptr)
	}
	return out, err
}

// query returns the answers of type qtype, or an error when there are
// none.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	resp, err := r.exchange(ctx, r.udp, m)
	if err == nil && resp.Truncated {
		resp, err = r.exchange(ctx, r.tcp, m)
	}
	if err != nil {
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
		return nil, &net.DNSError{Err: err.Error(), Name: name, Server: r.server, IsTimeout: timeout, IsTemporary: true}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, notFound(name, r.server)
	default:
		return nil, &net.DNSError{Err: "server failure: " + dns.RcodeToString[resp.Rcode], Name: name, Server: r.server, IsTemporary: true}
	}
	var out []dns.RR
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	if len(out) == 0 {
		return nil, notFound(name, r.server)
	}
	return out, nil
}

// exchange sends m over a connection of its own, closed as soon as ctx
// ends: the DNS library honours a context's deadline but not its
// cancellation, and Ctrl-C must not wait for a query's timeout.
func (r *Resolver) exchange(ctx context.Context, c *dns.Client, m *dns.Msg) (*dns.Msg, error) {
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

func notFound(name, server string) error {
	return &net.DNSError{Err: "no such record", Name: name, Server: server, IsNotFound: true}
}
