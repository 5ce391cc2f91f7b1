package listclean_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/relayctl/relayctl/internal/dnstest"
	"github.com/relayctl/relayctl/listclean"
)

// mxZone is the zone the MX tests resolve against.
var mxZone = []string{
	// MX hosts deliberately out of preference order.
	"ordered.test. 300 IN MX 30 mx3.ordered.test.",
	"ordered.test. 300 IN MX 10 mx1.ordered.test.",
	"ordered.test. 300 IN MX 20 mx2.ordered.test.",
	"ordered.test. 300 IN A 192.0.2.10",
	"nullmx.test. 300 IN MX 0 .",
	"nullmx.test. 300 IN A 192.0.2.11",
	"mixed.test. 300 IN MX 0 .",
	"mixed.test. 300 IN MX 10 mx.mixed.test.",
	"aonly.test. 300 IN A 192.0.2.12",
	"aaaaonly.test. 300 IN AAAA 2001:db8::12",
	`txtonly.test. 300 IN TXT "v=spf1 -all"`,
}

func newResolver(t *testing.T, addr string, timeout time.Duration) *listclean.Resolver {
	t.Helper()
	r, err := listclean.NewResolver(addr, timeout)
	if err != nil {
		t.Fatalf("NewResolver(%q, %s): %v", addr, timeout, err)
	}
	return r
}

func TestCheckDomain(t *testing.T) {
	srv := dnstest.Start(t)
	srv.Add(t, mxZone...)
	srv.Rcode("servfail.test", dns.RcodeServerFailure)
	srv.Rcode("refused.test", dns.RcodeRefused)
	r := newResolver(t, srv.Addr, 2*time.Second)

	tests := []struct {
		domain  string
		verdict string
		mx      []string
		detail  string // substring of Detail
		// queries the server must have seen for the domain, by type
		mxQueries, aQueries, aaaaQueries int
	}{
		{domain: "ordered.test", verdict: listclean.DomainOK,
			mx: []string{"mx1.ordered.test", "mx2.ordered.test", "mx3.ordered.test"}, mxQueries: 1},
		// RFC 7505: a null MX forbids falling back to the A record.
		{domain: "nullmx.test", verdict: listclean.DomainNullMX, detail: "null MX", mxQueries: 1},
		{domain: "mixed.test", verdict: listclean.DomainOK, mx: []string{"mx.mixed.test"}, mxQueries: 1},
		{domain: "aonly.test", verdict: listclean.DomainOK, detail: "implicit MX from A", mxQueries: 1, aQueries: 1},
		{domain: "aaaaonly.test", verdict: listclean.DomainOK, detail: "implicit MX from AAAA",
			mxQueries: 1, aQueries: 1, aaaaQueries: 1},
		{domain: "txtonly.test", verdict: listclean.DomainNoMailHost, mxQueries: 1, aQueries: 1, aaaaQueries: 1},
		{domain: "gone.test", verdict: listclean.DomainNoDomain, detail: "NXDOMAIN", mxQueries: 1},
		// Server failures are retried once and prove nothing about the name.
		{domain: "servfail.test", verdict: listclean.DomainUnverified, detail: "SERVFAIL", mxQueries: 2},
		{domain: "refused.test", verdict: listclean.DomainUnverified, detail: "REFUSED", mxQueries: 2},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			got := r.CheckDomain(context.Background(), tt.domain)
			if got.Domain != tt.domain || got.Verdict != tt.verdict {
				t.Errorf("CheckDomain(%q) = %q %q (%s), want verdict %q", tt.domain, got.Domain, got.Verdict, got.Detail, tt.verdict)
			}
			if !slices.Equal(got.MX, tt.mx) {
				t.Errorf("CheckDomain(%q).MX = %q, want %q", tt.domain, got.MX, tt.mx)
			}
			if !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("CheckDomain(%q).Detail = %q, want it to contain %q", tt.domain, got.Detail, tt.detail)
			}
			for _, q := range []struct {
				qtype uint16
				want  int
			}{{dns.TypeMX, tt.mxQueries}, {dns.TypeA, tt.aQueries}, {dns.TypeAAAA, tt.aaaaQueries}} {
				if n := srv.Queries(tt.domain, q.qtype); n != q.want {
					t.Errorf("%s %s queries = %d, want %d", tt.domain, dns.TypeToString[q.qtype], n, q.want)
				}
			}
		})
	}
}

// waitQueries polls until the server has seen at least want queries of qtype
// for name: a silent server counts a query in its own goroutine, after the
// client may already have given up.
func waitQueries(t *testing.T, srv *dnstest.Server, name string, qtype uint16, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := srv.Queries(name, qtype)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCheckDomainSilentServer(t *testing.T) {
	srv := dnstest.Start(t)
	srv.Silence("")
	r := newResolver(t, srv.Addr, 100*time.Millisecond)

	start := time.Now()
	got := r.CheckDomain(context.Background(), "silent.test")
	took := time.Since(start)
	if got.Verdict != listclean.DomainUnverified {
		t.Errorf("verdict = %q (%s), want %q", got.Verdict, got.Detail, listclean.DomainUnverified)
	}
	if !strings.Contains(got.Detail, "timeout") {
		t.Errorf("detail = %q, want it to say timeout", got.Detail)
	}
	if took > 2*time.Second {
		t.Errorf("CheckDomain took %s against a silent server with a 100ms timeout", took)
	}
	// One try and one retry.
	if n := waitQueries(t, srv, "silent.test", dns.TypeMX, 2); n != 2 {
		t.Errorf("MX queries = %d, want 2", n)
	}
	if n := srv.Queries("silent.test", dns.TypeA); n != 0 {
		t.Errorf("A queries = %d after the MX query timed out, want 0", n)
	}
}

func TestCheckDomainCancelled(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		srv := dnstest.Start(t)
		srv.Add(t, mxZone...)
		r := newResolver(t, srv.Addr, 5*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		got := r.CheckDomain(ctx, "ordered.test")
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("CheckDomain with a cancelled context took %s", took)
		}
		if got.Verdict != listclean.DomainUnverified {
			t.Errorf("verdict = %q (%s), want %q", got.Verdict, got.Detail, listclean.DomainUnverified)
		}
		if n := srv.Queries("ordered.test", dns.TypeMX); n > 1 {
			t.Errorf("MX queries = %d with a cancelled context, want no retry", n)
		}
	})
	t.Run("in flight", func(t *testing.T) {
		srv := dnstest.Start(t)
		srv.Silence("")
		// The CLI's default query timeout: what an interrupted run would wait.
		r := newResolver(t, srv.Addr, 5*time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Cancel once the query has reached the server.
		polled := make(chan struct{})
		defer func() { <-polled }()
		go func() {
			defer close(polled)
			waitQueries(t, srv, "stuck.test", dns.TypeMX, 1)
			cancel()
		}()
		start := time.Now()
		got := r.CheckDomain(ctx, "stuck.test")
		if took := time.Since(start); took > time.Second {
			t.Errorf("CheckDomain took %s after its context was cancelled mid-query (query timeout 5s)", took)
		}
		if got.Verdict != listclean.DomainUnverified {
			t.Errorf("verdict = %q (%s), want %q", got.Verdict, got.Detail, listclean.DomainUnverified)
		}
		if n := srv.Queries("stuck.test", dns.TypeMX); n != 1 {
			t.Errorf("MX queries = %d, want 1: no retry once the context is cancelled", n)
		}
	})
}

func TestCheckDomains(t *testing.T) {
	srv := dnstest.Start(t)
	var domains []string
	want := map[string]string{}
	for i := range 300 {
		d := fmt.Sprintf("d%03d.example", i)
		domains = append(domains, d)
		switch i % 3 {
		case 0:
			srv.Add(t, d+". 300 IN MX 10 mx."+d+".")
			want[d] = listclean.DomainOK
		case 1:
			srv.Add(t, d+". 300 IN A 192.0.2.1")
			want[d] = listclean.DomainOK
		case 2: // unknown: NXDOMAIN
			want[d] = listclean.DomainNoDomain
		}
	}
	r := newResolver(t, srv.Addr, 2*time.Second)

	var done atomic.Int64
	got := r.CheckDomains(context.Background(), domains, 16, func() { done.Add(1) })
	if len(got) != len(domains) {
		t.Fatalf("CheckDomains returned %d results for %d domains", len(got), len(domains))
	}
	for i, d := range domains {
		if got[i].Domain != d || got[i].Verdict != want[d] {
			t.Errorf("result %d = %q %q (%s), want %q %q", i, got[i].Domain, got[i].Verdict, got[i].Detail, d, want[d])
		}
		if n := srv.Queries(d, dns.TypeMX); n != 1 {
			t.Errorf("%s: %d MX queries, want 1", d, n)
		}
	}
	if n := done.Load(); n != int64(len(domains)) {
		t.Errorf("done called %d times, want %d", n, len(domains))
	}
}

func TestCheckDomainsEmpty(t *testing.T) {
	srv := dnstest.Start(t)
	r := newResolver(t, srv.Addr, time.Second)
	if got := r.CheckDomains(context.Background(), nil, 8, nil); len(got) != 0 {
		t.Errorf("CheckDomains(nil) = %v, want nothing", got)
	}
	if n := srv.TotalQueries(); n != 0 {
		t.Errorf("%d queries for no domains", n)
	}
}
