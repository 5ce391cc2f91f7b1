package domaincheck

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/relayctl/relayctl/listclean"
)

// Resolver asks one DNS server, and nothing else, the questions the
// checks and the SPF library ask. A net.Resolver, even one dialling that
// server, answers addresses and reverse names from /etc/hosts first, and
// the relay's own hosts file (127.0.1.1 relay.example.org) is exactly what
// receivers never see. Errors are *net.DNSError, as the SPF library
// expects: IsNotFound for NXDOMAIN or no record of the type, IsTemporary
// for SERVFAIL and the like, IsTimeout for timeouts.
type Resolver struct {
	dns *listclean.Resolver
}

// NewResolver returns a Resolver that sends every query to r's server,
// each within r's timeout.
func NewResolver(r *listclean.Resolver) *Resolver {
	return &Resolver{dns: r}
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
	return nil, notFound(host, r.dns.Server())
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
	resp, err := r.dns.Exchange(ctx, m)
	if err != nil {
		var ne net.Error
		timeout := errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
		return nil, &net.DNSError{Err: err.Error(), Name: name, Server: r.dns.Server(), IsTimeout: timeout, IsTemporary: true}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, notFound(name, r.dns.Server())
	default:
		return nil, &net.DNSError{Err: "server failure: " + dns.RcodeToString[resp.Rcode], Name: name, Server: r.dns.Server(), IsTemporary: true}
	}
	var out []dns.RR
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == qtype {
			out = append(out, rr)
		}
	}
	if len(out) == 0 {
		return nil, notFound(name, r.dns.Server())
	}
	return out, nil
}

func notFound(name, server string) error {
	return &net.DNSError{Err: "no such record", Name: name, Server: server, IsNotFound: true}
}
