package listclean_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/relayctl/relayctl/internal/dnstest"
	"github.com/relayctl/relayctl/listclean"
)

// BenchmarkCheckDomains10k checks 10,000 distinct domains, each with an MX
// record, against a DNS server on loopback, at several concurrencies. With
// rtt=0 the server answers at once, so the figures are the client's and the
// loopback's cost on this machine's cores; with rtt=1ms each answer is held
// back a millisecond, like a resolver on the LAN answering from its cache,
// and concurrency is what hides the wait.
func BenchmarkCheckDomains10k(b *testing.B) {
	const n = 10000
	domains := make([]string, n)
	records := make([]string, n)
	for i := range domains {
		domains[i] = fmt.Sprintf("d%05d.bench.example", i)
		records[i] = fmt.Sprintf("%s. 300 IN MX 10 mx.%s.", domains[i], domains[i])
	}
	for _, rtt := range []time.Duration{0, time.Millisecond} {
		for _, c := range []int{1, 8, 32, 128} {
			b.Run(fmt.Sprintf("rtt=%s/concurrency=%d", rtt, c), func(b *testing.B) {
				// A server per sub-benchmark, so its counts are this run's alone.
				srv := dnstest.Start(b)
				srv.Add(b, records...)
				addr := srv.Addr
				if rtt > 0 {
					addr = delayed(b, srv, rtt)
				}
				r, err := listclean.NewResolver(addr, 5*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				rounds := 0
				for b.Loop() {
					rounds++
					for _, res := range r.CheckDomains(ctx, domains, c, nil) {
						if res.Verdict != listclean.DomainOK {
							b.Fatalf("%s: %s (%s)", res.Domain, res.Verdict, res.Detail)
						}
					}
				}
				b.ReportMetric(float64(rounds*n)/b.Elapsed().Seconds(), "domains/s")
				// Exactly one MX query per domain and round: no retries, and no
				// A or AAAA fallbacks for domains that have an MX.
				for _, d := range domains {
					if got := srv.Queries(d, dns.TypeMX); got != rounds {
						b.Fatalf("%s: %d MX queries in %d rounds, want one a round", d, got, rounds)
					}
				}
				if got := srv.TotalQueries(); got != rounds*n {
					b.Fatalf("server got %d queries in %d rounds of %d domains, want %d", got, rounds, n, rounds*n)
				}
			})
		}
	}
}

// delayed serves srv's answers on another loopback UDP port, each held back
// by rtt, and returns that port's address. The sleep stands for the
// resolver's round trip; it waits for nothing.
func delayed(b *testing.B, srv *dnstest.Server, rtt time.Duration) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	front := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		time.Sleep(rtt)
		srv.ServeDNS(w, req)
	})}
	started := make(chan struct{})
	front.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		front.ActivateAndServe()
	}()
	<-started
	b.Cleanup(func() {
		front.Shutdown()
		<-done
	})
	return pc.LocalAddr().String()
}

// BenchmarkParseAddress parses the forms addresses take in lists, each
// after Normalize as Clean does it.
func BenchmarkParseAddress(b *testing.B) {
	for _, tc := range []struct{ name, in string }{
		{"plain", "jane.doe1984@gmail.example"},
		{"mixed-case", "Jane.Doe@CO0042.Example"},
		{"display-name", `"Doe, Jane" <jane.doe@co0042.example>`},
		{"mailto", "mailto:jane.doe@co0042.example?subject=hi"},
		{"quoted", `"jane doe"@co0042.example`},
		{"idn", "jane@bücher.example"},
		{"invalid", "jane..doe@co0042.example"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				listclean.ParseAddress(listclean.Normalize(tc.in), listclean.SyntaxOptions{})
			}
		})
	}
}

// BenchmarkClean cleans a 100,000-row list without MX checks: both passes,
// the external sort and the three output files.
func BenchmarkClean(b *testing.B) {
	const rows = 100000
	dir := b.TempDir()
	list := filepath.Join(dir, "list.csv")
	size := writeBenchList(b, list, rows)
	b.SetBytes(size)
	ctx := context.Background()
	for b.Loop() {
		sum, err := listclean.Clean(ctx, listclean.Options{Input: list, TempDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if sum.Rows != rows || sum.Reasons[listclean.ReasonDuplicate] == 0 {
			b.Fatalf("cleaned %d rows with %d duplicates, want %d rows and some duplicates", sum.Rows, sum.Reasons[listclean.ReasonDuplicate], rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// writeBenchList writes a list shaped like bench/genlist's, more simply:
// a few big provider domains and a tail of company domains, with about 1%
// duplicates in another case, 0.5% display-name forms, 0.5% syntax errors
// and quoted fields. It returns the file's size.
func writeBenchList(b *testing.B, path string, rows int) int64 {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(r, 1.07, 2, 4999)
	providers := []string{"gmail.example", "gmail.example", "gmail.example", "hotmail.example", "yahoo.example", "outlook.example"}
	first := []string{"james", "mary", "robert", "patricia", "john", "jennifer", "michael", "linda", "david", "elizabeth"}
	last := []string{"smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "wilson", "taylor"}
	var earlier []string
	w.WriteString("email,first_name,last_name,company,city\n")
	for i := range rows {
		fn, ln := first[r.IntN(len(first))], last[r.IntN(len(last))]
		domain := providers[r.IntN(len(providers))]
		if r.IntN(2) == 0 {
			domain = fmt.Sprintf("co%04d.example", zipf.Uint64())
		}
		email := fmt.Sprintf("%s.%s%d@%s", fn, ln, i, domain)
		earlier = append(earlier, email)
		switch x := r.IntN(1000); {
		case x < 10:
			email = strings.ToUpper(earlier[r.IntN(len(earlier))])
		case x < 15:
			email = fmt.Sprintf(`"%s, %s <%s>"`, ln, fn, email)
		case x < 20:
			email = strings.Replace(email, "@", "@@", 1)
		}
		fmt.Fprintf(w, "%s,%s,%s,\"%s Labs, Inc.\",London\n", email, fn, ln, strings.ToUpper(ln[:1])+ln[1:])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
