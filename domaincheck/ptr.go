package domaincheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// ptr checks ip's reverse DNS and that it is forward-confirmed (FCrDNS):
// the PTR name resolves back to ip. Receivers distrust, and some refuse,
// mail from addresses without it.
func (c *checker) ptr(ctx context.Context, ip netip.Addr) Check {
	ch := Check{Name: "ptr " + ip.String()}
	arpa, err := dns.ReverseAddr(ip.String())
	if err != nil {
		ch.Result, ch.Detail = Fail, fmt.Sprintf("reverse name of %s: %v", ip, err)
		return ch
	}
	arpa = strings.TrimSuffix(arpa, ".")
	names, err := c.dns.LookupAddr(ctx, ip.String())
	if err != nil && len(names) == 0 && !isNotFound(err) {
		ch.Result, ch.Detail = Fail, dnsError("PTR", arpa, err)
		return ch
	}
	if len(names) == 0 {
		ch.Result = Fail
		ch.Detail = fmt.Sprintf("no PTR record for %s: ask your hosting provider to set the reverse DNS of %s to a name that resolves back to it, such as %s", ip, ip, c.o.RelayName)
		ch.Fix = fmt.Sprintf("%s. PTR %s.", arpa, c.o.RelayName)
		if ok, _ := c.resolvesTo(ctx, c.o.RelayName, ip); !ok {
			ch.Fix += "\n" + addressRecord(c.o.RelayName, ip)
		}
		return ch
	}
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, ".")
	}
	var problems []string
	for _, n := range names {
		ok, err := c.resolvesTo(ctx, n, ip)
		if ok {
			ch.Result, ch.Detail = Pass, fmt.Sprintf("%s has PTR %s, which resolves back to it", ip, n)
			return ch
		}
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			problems = append(problems, n+" resolves to other addresses")
		}
	}
	ch.Result = Fail
	ch.Detail = fmt.Sprintf("%s has PTR %s, but it does not resolve back to %s (%s): receivers want forward-confirmed reverse DNS; publish the address record below, or ask your hosting provider to change the PTR",
		ip, strings.Join(names, ", "), ip, strings.Join(problems, "; "))
	ch.Fix = addressRecord(names[0], ip)
	return ch
}

// resolvesTo reports whether host has ip among its addresses.
func (c *checker) resolvesTo(ctx context.Context, host string, ip netip.Addr) (bool, error) {
	addrs, err := c.dns.LookupIPAddr(ctx, host)
	if err != nil {
		if isNotFound(err) {
			return false, fmt.Errorf("%s has no address", host)
		}
		return false, errors.New(dnsError("address", host, err))
	}
	return slices.ContainsFunc(addrs, func(a net.IPAddr) bool {
		got, ok := netip.AddrFromSlice(a.IP)
		return ok && got.Unmap() == ip
	}), nil
}

func addressRecord(host string, ip netip.Addr) string {
	if ip.Is4() {
		return fmt.Sprintf("%s. A %s", host, ip)
	}
	return fmt.Sprintf("%s. AAAA %s", host, ip)
}
