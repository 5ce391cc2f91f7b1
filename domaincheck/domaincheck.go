// Package domaincheck checks a sending domain's DNS: SPF, DKIM, DMARC, MX
// and reverse DNS of the relay IPs.
//
// Each check ends in a Check: pass, warn or fail, a detail in the mail
// administrator's terms and, where something must change, the records to
// publish in zone-file syntax.
package domaincheck

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/relayctl/relayctl/listclean"
)

// Result is a check's verdict.
type Result string

// The verdicts. Only Fail makes a report not OK.
const (
	Pass Result = "pass"
	Warn Result = "warn"
	Fail Result = "fail"
)

// Check is the outcome of one check.
type Check struct {
	Name   string
	Result Result
	Detail string
	// Fix is what to publish, one zone-file record a line, or "" when
	// nothing (or nothing that can be derived from here) needs publishing.
	Fix string
}

// Report is every check made on one domain, in a fixed order: SPF, DKIM,
// DMARC, the bounce domain's MX, reverse DNS.
type Report struct {
	Domain string
	Checks []Check
}

// OK reports whether no check failed; warnings are allowed.
func (r *Report) OK() bool {
	return r.Failed() == 0
}

// Failed counts the checks that failed.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if c.Result == Fail {
			n++
		}
	}
	return n
}

// Fixes returns the distinct fixes of the checks that warned or failed, in
// check order: checks of several relay IPs often propose the same record.
func (r *Report) Fixes() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range r.Checks {
		if c.Result == Pass || c.Fix == "" || seen[c.Fix] {
			continue
		}
		seen[c.Fix] = true
		out = append(out, c.Fix)
	}
	return out
}

// DNS answers the lookups the checks make, and is what the SPF library
// evaluates records with. *Resolver implements it (so does *net.Resolver,
// but it answers from /etc/hosts: see Resolver).
type DNS interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// MailHosts decides whether a domain accepts mail; *listclean.Resolver
// implements it.
type MailHosts interface {
	CheckDomain(ctx context.Context, domain string) listclean.DomainResult
}

// DefaultTimeout bounds each DNS query when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Options say what to check and how to ask DNS.
type Options struct {
	// Domain is the sending domain: the From address's domain.
	Domain string
	// RelayIPs are the addresses mail leaves from; SPF must authorise
	// each and each needs forward-confirmed reverse DNS.
	RelayIPs []netip.Addr
	// Selector is the DKIM selector; "" fails the DKIM check.
	Selector string
	// DKIMKey is the signing key's public half; nil checks the published
	// record without comparing it.
	DKIMKey crypto.PublicKey
	// BounceDomain is the return path's domain (default Domain).
	BounceDomain string
	// RelayName is the relay's host name (its HELO), proposed as the
	// reverse DNS of relay IPs that have none (default mail.DOMAIN).
	RelayName string

	DNS       DNS
	MailHosts MailHosts
	// Timeout bounds each DNS query (default DefaultTimeout).
	Timeout time.Duration
	// Trace, if set, receives the SPF library's evaluation trace: for
	// debugging, not for users (its wording is not stable).
	Trace func(format string, args ...any)
}

// Run makes every check. Its error is for options it cannot work with;
// DNS failures are failed checks.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.Domain = normalize(o.Domain)
	o.BounceDomain = normalize(o.BounceDomain)
	switch {
	case o.Domain == "":
		return nil, errors.New("domaincheck: no domain")
	case o.DNS == nil || o.MailHosts == nil:
		return nil, errors.New("domaincheck: no DNS resolver")
	}
	for _, ip := range o.RelayIPs {
		if !ip.IsValid() {
			return nil, errors.New("domaincheck: invalid relay IP")
		}
	}
	if o.BounceDomain == "" {
		o.BounceDomain = o.Domain
	}
	if o.RelayName == "" {
		o.RelayName = "mail." + o.Domain
	}
	o.RelayName = normalize(o.RelayName)
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	c := &checker{o: o, dns: boundedDNS{dns: o.DNS, timeout: o.Timeout}}
	rep := &Report{Domain: o.Domain}
	rep.Checks = append(rep.Checks, c.spf(ctx)...)
	rep.Checks = append(rep.Checks, c.dkim(ctx), c.dmarc(ctx), c.bounce(ctx))
	for _, ip := range o.RelayIPs {
		rep.Checks = append(rep.Checks, c.ptr(ctx, ip.Unmap()))
	}
	return rep, nil
}

func normalize(domain string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
}

type checker struct {
	o   Options
	dns boundedDNS
}

// boundedDNS gives every query its own timeout, and asks for names as
// absolute, so that no search domain of resolv.conf is tried after them.
// Errors pass through unwrapped: the SPF library tells NXDOMAIN from a
// temporary failure by asserting *net.DNSError.
type boundedDNS struct {
	dns     DNS
	timeout time.Duration
}

func (b boundedDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.dns.LookupTXT(ctx, fqdn(name))
}

func (b boundedDNS) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.dns.LookupMX(ctx, fqdn(name))
}

func (b boundedDNS) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.dns.LookupIPAddr(ctx, fqdn(host))
}

func (b boundedDNS) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.dns.LookupAddr(ctx, addr)
}

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// isNotFound reports whether err says the name or the record does not
// exist, as opposed to DNS not answering.
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// dnsError words a lookup's failure for a detail.
func dnsError(what, name string, err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsTimeout:
			return fmt.Sprintf("%s lookup of %s timed out", what, name)
		case de.IsNotFound:
			return fmt.Sprintf("no %s record at %s", what, name)
		}
		return fmt.Sprintf("%s lookup of %s failed: %s", what, name, de.Err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("%s lookup of %s timed out", what, name)
	}
	return fmt.Sprintf("%s lookup of %s failed: %v", what, name, err)
}

// txtRecord formats a TXT record for a zone file, the value split into
// strings of at most 255 octets.
func txtRecord(name, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, `"`+value[:255]+`"`)
		value = value[255:]
	}
	parts = append(parts, `"`+value+`"`)
	return fmt.Sprintf("%s. TXT %s", name, strings.Join(parts, " "))
}

// tag is one tag=value of a DKIM or DMARC record.
type tag struct{ name, value string }

// parseTags splits a tag-list (RFC 6376 §3.2, shared by DMARC): tags
// separated by ";", whitespace around names and values ignored, names
// case-sensitive but compared here in lower case.
func parseTags(record string) ([]tag, error) {
	var out []tag
	seen := map[string]bool{}
	for part := range strings.SplitSeq(record, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not tag=value", part)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if seen[name] {
			return nil, fmt.Errorf("tag %s= appears twice", name)
		}
		seen[name] = true
		out = append(out, tag{name, strings.TrimSpace(value)})
	}
	return out, nil
}

func tagValue(tags []tag, name string) (string, bool) {
	for _, t := range tags {
		if t.name == name {
			return t.value, true
		}
	}
	return "", false
}

func formatTags(tags []tag) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = t.name + "=" + t.value
	}
	return strings.Join(parts, "; ")
}
