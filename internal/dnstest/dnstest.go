// Package dnstest runs an authoritative-looking DNS server on 127.0.0.1 for
// tests: it answers from records the test gives it, returns chosen rcodes
// (NXDOMAIN, SERVFAIL), or never answers, and counts the queries it gets.
// Names it knows nothing about get NXDOMAIN.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running test DNS server listening on UDP and TCP.
type Server struct {
	// Addr is HOST:PORT, for --resolver.
	Addr string

	mu       sync.Mutex
	records  map[string][]dns.RR // by lower-case FQDN
	rcodes   map[string]int
	silent   map[string]bool
	allQuiet bool
	queries  map[string]int // "name TYPE" → count
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{records: map[string][]dns.RR{}, rcodes: map[string]int{}, silent: map[string]bool{}, queries: map[string]int{}}
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if try == 10 {
			t.Fatalf("dnstest: no port free for both UDP and TCP: %v", err)
		}
	}
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	var wg sync.WaitGroup
	for _, srv := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() { srv.ActivateAndServe() })
		<-started
	}
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
		wg.Wait()
	})
	return s
}

// Add adds records given in zone-file syntax, e.g.
// "example.test. 300 IN MX 10 mx.example.test.".
func (s *Server) Add(t testing.TB, rrs ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, text := range rrs {
		rr, err := dns.NewRR(text)
		if err != nil {
			t.Fatalf("dnstest: record %q: %v", text, err)
		}
		name := strings.ToLower(rr.Header().Name)
		s.records[name] = append(s.records[name], rr)
	}
}

// Rcode makes every query for name answer with rcode (dns.RcodeServerFailure,
// dns.RcodeNameError, dns.RcodeRefused...).
func (s *Server) Rcode(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcodes[dns.CanonicalName(name)] = rcode
}

// Silence makes the server never answer queries for name, or, with name
// "", any query at all.
func (s *Server) Silence(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		s.allQuiet = true
		return
	}
	s.silent[dns.CanonicalName(name)] = true
}

// Queries returns how many queries of qtype (dns.TypeMX...) name received.
func (s *Server) Queries(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.CanonicalName(name)+" "+dns.TypeToString[qtype]]
}

// TotalQueries returns how many queries the server received.
func (s *Server) TotalQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.queries {
		n += c
	}
	return n
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	s.mu.Lock()
	s.queries[name+" "+dns.TypeToString[q.Qtype]]++
	quiet := s.allQuiet || s.silent[name]
	rcode, forced := s.rcodes[name]
	rrs := s.records[name]
	s.mu.Unlock()
	if quiet {
		return // the client must give up by its own timeout
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	switch {
	case forced:
		m.Rcode = rcode
	case len(rrs) == 0:
		m.Rcode = dns.RcodeNameError
	default:
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype || q.Qtype == dns.TypeANY {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
	}
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), false)
	}
	w.WriteMsg(m)
}
