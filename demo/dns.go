package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNS is a small authoritative server on loopback, over UDP and TCP on one
// port, answering from a fixed zone. A name it holds no record for gets
// NXDOMAIN; a name with records but none of the type asked, an empty
// answer (NODATA).
type DNS struct {
	// Addr is HOST:PORT, for --resolver.
	Addr string

	zone     map[string][]dns.RR // by lower-case FQDN; read-only once serving
	udp, tcp *dns.Server
	wg       sync.WaitGroup
}

// StartDNS starts a server on 127.0.0.1 answering from records given in
// zone-file syntax ("club.example. 300 IN MX 10 mx.mailhost.example.").
func StartDNS(records []string) (*DNS, error) {
	d := &DNS{zone: map[string][]dns.RR{}}
	for _, text := range records {
		rr, err := dns.NewRR(text)
		if err != nil {
			return nil, fmt.Errorf("demo dns: record %q: %w", text, err)
		}
		name := strings.ToLower(rr.Header().Name)
		d.zone[name] = append(d.zone[name], rr)
	}
	pc, ln, err := listenBoth()
	if err != nil {
		return nil, fmt.Errorf("demo dns: %w", err)
	}
	d.Addr = pc.LocalAddr().String()
	d.udp = &dns.Server{PacketConn: pc, Handler: d}
	d.tcp = &dns.Server{Listener: ln, Handler: d}
	for _, srv := range []*dns.Server{d.udp, d.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		d.wg.Go(func() { srv.ActivateAndServe() })
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			d.Close()
			return nil, errors.New("demo dns: server did not start within 5s")
		}
	}
	return d, nil
}

// listenBoth finds a loopback port free for both UDP and TCP.
func listenBoth() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("no loopback port free for both UDP and TCP: %w", lastErr)
}

// Close stops the server.
func (d *DNS) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := errors.Join(d.udp.ShutdownContext(ctx), d.tcp.ShutdownContext(ctx))
	d.wg.Wait()
	return err
}

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	rrs, ok := d.zone[dns.CanonicalName(q.Name)]
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), false)
	}
	w.WriteMsg(m)
}
