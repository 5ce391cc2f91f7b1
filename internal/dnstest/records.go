package dnstest

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// ttl is the TTL of the records the helpers below add.
const ttl = 300

// AddTXT adds one TXT record at name holding value, split into strings of
// at most 255 octets as DNS requires: a DKIM key or a long SPF record is
// one record of several strings, which resolvers join again. The value is
// taken as is, with no zone-file quoting to get wrong.
func (s *Server) AddTXT(t testing.TB, name, value string) {
	t.Helper()
	var chunks []string
	for len(value) > 255 {
		chunks = append(chunks, value[:255])
		value = value[255:]
	}
	chunks = append(chunks, value)
	s.addRR(&dns.TXT{Hdr: header(name, dns.TypeTXT), Txt: chunks})
}

// AddPTR adds the reverse-DNS record of ip, in in-addr.arpa or ip6.arpa,
// naming host.
func (s *Server) AddPTR(t testing.TB, ip netip.Addr, host string) {
	t.Helper()
	arpa, err := dns.ReverseAddr(ip.Unmap().String())
	if err != nil {
		t.Fatalf("dnstest: PTR of %s: %v", ip, err)
	}
	s.addRR(&dns.PTR{Hdr: header(arpa, dns.TypePTR), Ptr: dns.Fqdn(host)})
}

// AddHost adds an A record for each IPv4 address and an AAAA record for
// each IPv6 address of host.
func (s *Server) AddHost(t testing.TB, host string, ips ...netip.Addr) {
	t.Helper()
	for _, ip := range ips {
		ip = ip.Unmap()
		if ip.Is4() {
			s.addRR(&dns.A{Hdr: header(host, dns.TypeA), A: ip.AsSlice()})
		} else {
			s.addRR(&dns.AAAA{Hdr: header(host, dns.TypeAAAA), AAAA: ip.AsSlice()})
		}
	}
}

func header(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: dns.Fqdn(name), Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

func (s *Server) addRR(rr dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.ToLower(rr.Header().Name)
	s.records[name] = append(s.records[name], rr)
}
