package domaincheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"blitiri.com.ar/go/spf"
)

// spf checks that DOMAIN publishes exactly one SPF record, then evaluates
// it for each relay IP as a receiver would, with the SPF library: include,
// redirect, a, mx, exists, macros and the limit of 10 DNS lookups.
func (c *checker) spf(ctx context.Context) []Check {
	d := c.o.Domain
	txts, err := c.dns.LookupTXT(ctx, d)
	if err != nil && !isNotFound(err) {
		return []Check{{Name: "spf", Result: Fail, Detail: dnsError("TXT", d, err)}}
	}
	var records []string
	for _, t := range txts {
		if isSPF(t) {
			records = append(records, t)
		}
	}
	switch len(records) {
	case 0:
		detail := fmt.Sprintf("no SPF record (v=spf1) at %s: receivers cannot tell your relay from a forger", d)
		if len(c.o.RelayIPs) == 0 {
			detail += "; replace RELAY_IP with your relay's address, or run again with --relay-ip"
		}
		return []Check{{Name: "spf", Result: Fail, Detail: detail, Fix: txtRecord(d, c.proposedSPF())}}
	case 1:
	default:
		return []Check{{Name: "spf", Result: Fail,
			Detail: fmt.Sprintf("%d SPF records at %s: receivers treat that as a permanent error (RFC 7208 §4.5); merge them into one", len(records), d),
			Fix:    txtRecord(d, c.mergedSPF(records))}}
	}
	record := records[0]
	if len(c.o.RelayIPs) == 0 {
		return []Check{{Name: "spf", Result: Pass, Detail: record + " (give --relay-ip to check that it authorises your relay)"}}
	}
	checks := []Check{{Name: "spf", Result: Pass, Detail: record}}
	var unauthorised []netip.Addr
	for _, ip := range c.o.RelayIPs {
		ch := c.spfFor(ctx, ip.Unmap())
		if ch.Result != Pass {
			unauthorised = append(unauthorised, ip.Unmap())
		}
		checks = append(checks, ch)
	}
	// One record authorising every relay, proposed by each check that
	// found its IP not authorised.
	fix := txtRecord(d, withTerms(record, unauthorised))
	for i := range checks {
		if checks[i].Result != Pass {
			checks[i].Fix = fix
		}
	}
	return checks
}

// spfFor evaluates DOMAIN's SPF record for a message from postmaster@DOMAIN
// sent by ip.
func (c *checker) spfFor(ctx context.Context, ip netip.Addr) Check {
	opts := []spf.Option{spf.WithResolver(c.dns), spf.WithContext(ctx)}
	if c.o.Trace != nil {
		opts = append(opts, spf.WithTraceFunc(c.o.Trace))
	}
	res, err := spf.CheckHostWithSender(net.IP(ip.AsSlice()), c.o.RelayName, "postmaster@"+c.o.Domain, opts...)
	ch := Check{Name: "spf " + ip.String()}
	term := ipTerm(ip)
	switch res {
	case spf.Pass:
		ch.Result, ch.Detail = Pass, fmt.Sprintf("%s is authorised (%s)", ip, matched(err))
	case spf.SoftFail:
		ch.Result, ch.Detail = Warn, fmt.Sprintf("softfail: %s is not authorised and ~all lets receivers accept its mail but mark it suspect; add %s", ip, term)
	case spf.Fail:
		ch.Result, ch.Detail = Fail, fmt.Sprintf("fail: %s is not authorised, and -all tells receivers to refuse its mail; add %s", ip, term)
	case spf.Neutral:
		ch.Result, ch.Detail = Fail, fmt.Sprintf("neutral: the record says nothing about %s, which earns it no trust; add %s", ip, term)
	case spf.None:
		ch.Result, ch.Detail = Fail, fmt.Sprintf("none: no SPF record found for %s", c.o.Domain)
	case spf.TempError:
		ch.Result, ch.Detail = Fail, fmt.Sprintf("temperror: a DNS lookup failed while evaluating the record (%v); receivers defer or refuse the mail", err)
	default:
		ch.Result, ch.Detail = Fail, "permerror: "+permErrorReason(err)+"; receivers treat the record as broken"
	}
	return ch
}

// matched words the library's match "error" of a pass.
func matched(err error) string {
	if err == nil {
		return "matched"
	}
	return err.Error()
}

func permErrorReason(err error) string {
	switch {
	case errors.Is(err, spf.ErrLookupLimitReached):
		return "evaluating the record takes more than 10 DNS lookups (RFC 7208 §4.6.4): each include:, a, mx, ptr, exists: and redirect= costs one, nested includes too; replace includes by the ip4:/ip6: ranges they list"
	case errors.Is(err, spf.ErrVoidLookupLimitReached):
		return "more than 2 lookups found nothing (RFC 7208 §4.6.4): remove the terms naming domains without records"
	case errors.Is(err, spf.ErrNoResult):
		return "an include: or redirect= names a domain with no SPF record"
	case errors.Is(err, spf.ErrMultipleRecords):
		return "a domain the record includes has several SPF records"
	case errors.Is(err, spf.ErrUnknownField):
		return "a term of the record (or of one it includes) is not SPF"
	case err == nil:
		return "the record is invalid"
	}
	return err.Error()
}

func isSPF(txt string) bool {
	l := strings.ToLower(txt)
	return l == "v=spf1" || strings.HasPrefix(l, "v=spf1 ")
}

func ipTerm(ip netip.Addr) string {
	if ip.Is4() {
		return "ip4:" + ip.String()
	}
	return "ip6:" + ip.String()
}

func (c *checker) relayTerms() []string {
	var terms []string
	for _, ip := range c.o.RelayIPs {
		terms = append(terms, ipTerm(ip.Unmap()))
	}
	return terms
}

// proposedSPF is the record for a domain that has none: only the relay,
// and -all so that forgeries fail.
func (c *checker) proposedSPF() string {
	terms := c.relayTerms()
	if len(terms) == 0 {
		terms = []string{"ip4:RELAY_IP"}
	}
	return "v=spf1 " + strings.Join(terms, " ") + " -all"
}

// withTerms returns record with terms for ips first after v=spf1, moved
// there if already present: evaluation stops at the first match, so the
// relay passes before any lookup is spent.
func withTerms(record string, ips []netip.Addr) string {
	fields := strings.Fields(record)
	var add []string
	for _, ip := range ips {
		add = append(add, ipTerm(ip))
	}
	rest := slices.DeleteFunc(fields[1:], func(f string) bool {
		return slices.ContainsFunc(add, func(t string) bool { return strings.EqualFold(f, t) })
	})
	return strings.Join(slices.Concat(fields[:1], add, rest), " ")
}

// mergedSPF joins several SPF records into one: the relay's terms, every
// other mechanism once, then the first record's all (or redirect=).
func (c *checker) mergedSPF(records []string) string {
	terms := c.relayTerms()
	var all, redirect string
	for _, r := range records {
		for _, f := range strings.Fields(r)[1:] {
			l := strings.ToLower(f)
			switch {
			case strings.TrimLeft(l, "+-~?") == "all":
				if all == "" {
					all = f
				}
			case strings.HasPrefix(l, "redirect="):
				if redirect == "" {
					redirect = f
				}
			case !slices.ContainsFunc(terms, func(t string) bool { return strings.EqualFold(t, f) }):
				terms = append(terms, f)
			}
		}
	}
	switch {
	case all != "":
		terms = append(terms, all) // redirect= is ignored when all is present
	case redirect != "":
		terms = append(terms, redirect)
	default:
		terms = append(terms, "-all")
	}
	return "v=spf1 " + strings.Join(terms, " ")
}
