package listclean_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/relayctl/relayctl/internal/dnstest"
	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/store"
)

// cleanZone is the DNS the cleaning tests see; servfail.test answers
// SERVFAIL and every other name NXDOMAIN.
var cleanZone = []string{
	"ok.test. 300 IN MX 10 mx.ok.test.",
	"other.test. 300 IN MX 10 mx.other.test.",
	"nullmx.test. 300 IN MX 0 .",
	"aonly.test. 300 IN A 192.0.2.20",
	`nohost.test. 300 IN TXT "no mail here"`,
	"notbanned.test. 300 IN MX 10 mx.notbanned.test.",
	"sub.banned.test. 300 IN MX 10 mx.banned.test.",
}

// cleanEnv is a list directory, a store and a DNS server for Clean.
type cleanEnv struct {
	dir string // holds the list and, by default, the outputs
	tmp string // Options.TempDir
	srv *dnstest.Server
	st  *store.Store
}

func newCleanEnv(t *testing.T) *cleanEnv {
	t.Helper()
	e := &cleanEnv{dir: t.TempDir(), tmp: t.TempDir(), srv: dnstest.Start(t)}
	e.srv.Add(t, cleanZone...)
	e.srv.Rcode("servfail.test", dns.RcodeServerFailure)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "relayctl.db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	return e
}

// list writes the list file and returns options to clean it.
func (e *cleanEnv) list(t *testing.T, content string) listclean.Options {
	t.Helper()
	path := filepath.Join(e.dir, "list.csv")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return listclean.Options{
		Input:       path,
		Resolver:    newResolver(t, e.srv.Addr, 2*time.Second),
		DNSCacheTTL: time.Hour,
		Store:       e.st,
		TempDir:     e.tmp,
	}
}

func clean(t *testing.T, opt listclean.Options) *listclean.Summary {
	t.Helper()
	sum, err := listclean.Clean(context.Background(), opt)
	if err != nil {
		t.Fatalf("Clean: %v", err)
	}
	return sum
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(readFile(t, path)))
	r.FieldsPerRecord = -1 // rejected malformed rows keep their own field count
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

// dirNames lists a directory's entries.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// rejected is a rejects-file row reduced to what the tests check.
type rejected struct{ email, reason, detail string }

// rejects reads the rejects file, whose last two columns are reason and
// detail, taking the email from column col.
func rejects(t *testing.T, path string, col int) []rejected {
	t.Helper()
	recs := readCSV(t, path)
	if len(recs) == 0 {
		t.Fatalf("%s: no header", path)
	}
	h := recs[0]
	if len(h) < 2 || h[len(h)-2] != "reason" || h[len(h)-1] != "detail" {
		t.Fatalf("%s: header %q, want it to end in reason, detail", path, h)
	}
	var out []rejected
	for _, r := range recs[1:] {
		out = append(out, rejected{r[col], r[len(r)-2], r[len(r)-1]})
	}
	return out
}

func checkRejects(t *testing.T, got []rejected, want []rejected) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("rejects: got %d rows, want %d:\ngot  %q\nwant %q", len(got), len(want), got, want)
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.email != w.email || g.reason != w.reason || !strings.Contains(g.detail, w.detail) {
			t.Errorf("reject %d = %q %q %q, want %q %q with detail containing %q", i, g.email, g.reason, g.detail, w.email, w.reason, w.detail)
		}
	}
}

func TestCleanVerdicts(t *testing.T) {
	e := newCleanEnv(t)
	opt := e.list(t, `email,name
a@ok.test,Ann
b@nullmx.test,Bob
c@aonly.test,Cid
d@nohost.test,Dee
e@gone.test,Eve
f@servfail.test,Fay
not-an-address,Gus
,Hal
i@ok.test,Ivy,extra
`)
	sum := clean(t, opt)

	out, rej, warn := listclean.DefaultPaths(opt.Input)
	if got, want := readFile(t, out), "email,name\na@ok.test,Ann\nc@aonly.test,Cid\nf@servfail.test,Fay\n"; got != want {
		t.Errorf("clean file:\n%s\nwant:\n%s", got, want)
	}
	checkRejects(t, rejects(t, rej, 0), []rejected{
		{"b@nullmx.test", listclean.DomainNullMX, "nullmx.test"},
		{"d@nohost.test", listclean.DomainNoMailHost, "nohost.test"},
		{"e@gone.test", listclean.DomainNoDomain, "gone.test"},
		{"not-an-address", listclean.ReasonSyntax, "no @"},
		{"", listclean.ReasonMissing, ""},
		{"i@ok.test", listclean.ReasonMalformed, "3 fields"},
	})
	warns := readCSV(t, warn)
	if want := [][]string{{"row", "email", "kind", "detail"}}; len(warns) != 2 || !slices.Equal(warns[0], want[0]) ||
		warns[1][0] != "7" || warns[1][1] != "f@servfail.test" || warns[1][2] != listclean.DomainUnverified {
		t.Errorf("warnings file = %q, want the header and row 7 f@servfail.test %s", warns, listclean.DomainUnverified)
	}

	if sum.Rows != 9 || sum.Kept != 3 || sum.Rejected != 6 {
		t.Errorf("summary rows/kept/rejected = %d/%d/%d, want 9/3/6", sum.Rows, sum.Kept, sum.Rejected)
	}
	for reason, n := range map[string]int64{listclean.DomainNullMX: 1, listclean.DomainNoMailHost: 1, listclean.DomainNoDomain: 1,
		listclean.ReasonSyntax: 1, listclean.ReasonMissing: 1, listclean.ReasonMalformed: 1, listclean.DomainUnverified: 0} {
		if sum.Reasons[reason] != n {
			t.Errorf("summary reasons[%s] = %d, want %d", reason, sum.Reasons[reason], n)
		}
	}
	if sum.Warnings[listclean.DomainUnverified] != 1 {
		t.Errorf("summary warnings[%s] = %d, want 1", listclean.DomainUnverified, sum.Warnings[listclean.DomainUnverified])
	}
	// Six distinct domains: the malformed row adds none.
	if sum.Domains != 6 || sum.DNSAsked != 6 || sum.DNSCached != 0 {
		t.Errorf("summary domains/asked/cached = %d/%d/%d, want 6/6/0", sum.Domains, sum.DNSAsked, sum.DNSCached)
	}
}

func TestCleanDialect(t *testing.T) {
	e := newCleanEnv(t)
	opt := e.list(t, "\ufeffName;E-Mail\r\nAnn;  Ann@OK.test \r\nBob;bob@gone.test\r\n")
	clean(t, opt)
	out, rej, _ := listclean.DefaultPaths(opt.Input)
	if got, want := readFile(t, out), "\ufeffName;E-Mail\r\nAnn;Ann@ok.test\r\n"; got != want {
		t.Errorf("clean file = %q, want %q (BOM, semicolons and CRLF kept)", got, want)
	}
	if got, want := readFile(t, rej), "\ufeffName;E-Mail;reason;detail\r\nBob;bob@gone.test;no_domain;gone.test: NXDOMAIN\r\n"; got != want {
		t.Errorf("rejects file = %q, want %q", got, want)
	}
}

func TestCleanCache(t *testing.T) {
	const list = "email\na@ok.test\nb@nullmx.test\nc@aonly.test\ne@gone.test\nA@OK.test\n"
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("second run from the cache", func(t *testing.T) {
		e := newCleanEnv(t)
		opt := e.list(t, list)
		opt.Now = func() time.Time { return t0 }
		first := clean(t, opt)
		asked := e.srv.TotalQueries()
		if asked == 0 || first.DNSAsked != 4 || first.DNSCached != 0 {
			t.Fatalf("first run: %d queries, summary asked %d cached %d; want queries, 4 asked, 0 cached", asked, first.DNSAsked, first.DNSCached)
		}
		out, rej, warn := listclean.DefaultPaths(opt.Input)
		want := []string{readFile(t, out), readFile(t, rej), readFile(t, warn)}

		opt.Now = func() time.Time { return t0.Add(30 * time.Minute) }
		second := clean(t, opt)
		if n := e.srv.TotalQueries() - asked; n != 0 {
			t.Errorf("second run sent %d DNS queries, want 0", n)
		}
		if second.DNSAsked != 0 || second.DNSCached != 4 {
			t.Errorf("second run: summary asked %d cached %d, want 0 and 4", second.DNSAsked, second.DNSCached)
		}
		for i, p := range []string{out, rej, warn} {
			if got := readFile(t, p); got != want[i] {
				t.Errorf("%s from the cache:\n%s\nwant, as from DNS:\n%s", filepath.Base(p), got, want[i])
			}
		}
	})

	t.Run("stale entries asked again", func(t *testing.T) {
		e := newCleanEnv(t)
		opt := e.list(t, list)
		opt.Now = func() time.Time { return t0 }
		clean(t, opt)
		asked := e.srv.TotalQueries()
		opt.Now = func() time.Time { return t0.Add(2 * time.Hour) } // DNSCacheTTL is 1h
		sum := clean(t, opt)
		if sum.DNSAsked != 4 || sum.DNSCached != 0 || e.srv.TotalQueries() != 2*asked {
			t.Errorf("run after the TTL: asked %d cached %d, %d queries after %d; want 4, 0 and the same queries again",
				sum.DNSAsked, sum.DNSCached, e.srv.TotalQueries()-asked, asked)
		}
	})

	t.Run("zero TTL never reads the cache", func(t *testing.T) {
		e := newCleanEnv(t)
		opt := e.list(t, list)
		clean(t, opt)
		asked := e.srv.TotalQueries()
		opt.DNSCacheTTL = 0
		sum := clean(t, opt)
		if sum.DNSCached != 0 || e.srv.TotalQueries() != 2*asked {
			t.Errorf("DNSCacheTTL 0: cached %d, %d queries after %d; want 0 and the same queries again", sum.DNSCached, e.srv.TotalQueries()-asked, asked)
		}
	})

	t.Run("unverified not cached", func(t *testing.T) {
		e := newCleanEnv(t)
		opt := e.list(t, "email\na@ok.test\nf@servfail.test\n")
		clean(t, opt)
		if n := e.srv.Queries("servfail.test", dns.TypeMX); n != 2 {
			t.Fatalf("first run: %d MX queries for servfail.test, want 2", n)
		}
		sum := clean(t, opt)
		if n := e.srv.Queries("servfail.test", dns.TypeMX); n != 4 {
			t.Errorf("second run: servfail.test MX queries %d in all, want 4: a dns_unverified verdict must not be cached", n)
		}
		if n := e.srv.Queries("ok.test", dns.TypeMX); n != 1 {
			t.Errorf("ok.test MX queries %d over two runs, want 1", n)
		}
		if sum.DNSAsked != 1 || sum.DNSCached != 1 {
			t.Errorf("second run: asked %d cached %d, want 1 and 1", sum.DNSAsked, sum.DNSCached)
		}
	})
}

func TestCleanStrict(t *testing.T) {
	const list = "email\na@ok.test\nf@servfail.test\n"
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("strict=", strict), func(t *testing.T) {
			e := newCleanEnv(t)
			opt := e.list(t, list)
			opt.Strict = strict
			sum := clean(t, opt)
			out, rej, warn := listclean.DefaultPaths(opt.Input)
			var wantClean string
			var wantRejects []rejected
			var wantWarnings int
			if strict {
				wantClean = "email\na@ok.test\n"
				wantRejects = []rejected{{"f@servfail.test", listclean.DomainUnverified, "servfail.test"}}
			} else {
				wantClean = "email\na@ok.test\nf@servfail.test\n"
				wantWarnings = 1
			}
			if got := readFile(t, out); got != wantClean {
				t.Errorf("clean file:\n%s\nwant:\n%s", got, wantClean)
			}
			checkRejects(t, rejects(t, rej, 0), wantRejects)
			if n := len(readCSV(t, warn)) - 1; n != wantWarnings {
				t.Errorf("%d warnings, want %d", n, wantWarnings)
			}
			if sum.Warnings[listclean.DomainUnverified] != int64(wantWarnings) {
				t.Errorf("summary: %d dns_unverified warnings, want %d", sum.Warnings[listclean.DomainUnverified], wantWarnings)
			}
		})
	}
}

func TestCleanSuppressed(t *testing.T) {
	e := newCleanEnv(t)
	ctx := context.Background()
	for _, s := range []store.Suppression{
		{Value: "Blocked@ok.test", Kind: store.SuppressAddress, Reason: "complaint"},
		{Value: "banned.test", Kind: store.SuppressDomain, Reason: "legal"},
	} {
		if err := e.st.AddSuppression(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	opt := e.list(t, `email
BLOCKED@OK.test
x@sub.banned.test
y@notbanned.test
z@ok.test
`)
	sum := clean(t, opt)
	out, rej, _ := listclean.DefaultPaths(opt.Input)
	if got, want := readFile(t, out), "email\ny@notbanned.test\nz@ok.test\n"; got != want {
		t.Errorf("clean file:\n%s\nwant:\n%s", got, want)
	}
	checkRejects(t, rejects(t, rej, 0), []rejected{
		{"BLOCKED@OK.test", listclean.ReasonSuppressed, "complaint"},
		{"x@sub.banned.test", listclean.ReasonSuppressed, "banned.test"},
	})
	if sum.Reasons[listclean.ReasonSuppressed] != 2 {
		t.Errorf("summary: %d suppressed, want 2", sum.Reasons[listclean.ReasonSuppressed])
	}
}

func TestCleanDuplicates(t *testing.T) {
	e := newCleanEnv(t)
	opt := e.list(t, `email,n
jane@ok.test,1
JANE@OK.TEST,2
Jane Doe <Jane@Ok.Test>,3
mailto:jane@ok.test,4
bob@other.test,5
"  <BOB@other.test> ",6
MAILTO:Bob@Other.Test?subject=hi,7
jane@other.test,8
`)
	sum := clean(t, opt)
	out, rej, _ := listclean.DefaultPaths(opt.Input)
	if got, want := readFile(t, out), "email,n\njane@ok.test,1\nbob@other.test,5\njane@other.test,8\n"; got != want {
		t.Errorf("clean file:\n%s\nwant:\n%s", got, want)
	}
	checkRejects(t, rejects(t, rej, 0), []rejected{
		{"JANE@OK.TEST", listclean.ReasonDuplicate, "duplicate of row 2"},
		{"Jane Doe <Jane@Ok.Test>", listclean.ReasonDuplicate, "duplicate of row 2"},
		{"mailto:jane@ok.test", listclean.ReasonDuplicate, "duplicate of row 2"},
		{"  <BOB@other.test> ", listclean.ReasonDuplicate, "duplicate of row 6"},
		{"MAILTO:Bob@Other.Test?subject=hi", listclean.ReasonDuplicate, "duplicate of row 6"},
	})
	for _, r := range rejects(t, rej, 0) {
		if n := strings.TrimPrefix(r.detail, "duplicate of row "); n == r.detail || strings.ContainsAny(n, " :") {
			t.Errorf("detail %q, want exactly \"duplicate of row N\"", r.detail)
		}
	}
	if sum.Reasons[listclean.ReasonDuplicate] != 5 {
		t.Errorf("summary: %d duplicates, want 5", sum.Reasons[listclean.ReasonDuplicate])
	}
}

func TestCleanIPLiteral(t *testing.T) {
	e := newCleanEnv(t)
	opt := e.list(t, "email\nops@[192.0.2.1]\na@ok.test\n")
	opt.Syntax.AllowIPLiteral = true
	clean(t, opt)
	out, rej, _ := listclean.DefaultPaths(opt.Input)
	// An address literal names its host: there is no domain to ask DNS about.
	if got, want := readFile(t, out), "email\nops@[192.0.2.1]\na@ok.test\n"; got != want {
		t.Errorf("clean file:\n%s\nwant:\n%s\nrejects:\n%s", got, want, readFile(t, rej))
	}
}

// generatedList is a list of n rows over far fewer mailboxes, each written
// in assorted cases and forms, with an invalid row now and then, and what
// cleaning it must give.
func generatedList(n int) (list, wantClean string, wantRejects []rejected) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b, cb strings.Builder
	b.WriteString("email,id\n")
	cb.WriteString("email,id\n")
	first := map[string]int{} // mailbox key → row
	for i := range n {
		row := i + 2 // the header is row 1
		id := fmt.Sprintf("r%d", row)
		if i%97 == 50 {
			fmt.Fprintf(&b, "no-at-sign-%d,%s\n", i, id)
			wantRejects = append(wantRejects, rejected{fmt.Sprintf("no-at-sign-%d", i), listclean.ReasonSyntax, ""})
			continue
		}
		m := rng.IntN(n / 6)
		local := fmt.Sprintf("user%04d.x", m)
		domain := []string{"ok.test", "other.test"}[m%2]
		switch rng.IntN(3) {
		case 1:
			local = strings.ToUpper(local)
		case 2:
			local = strings.ToUpper(local[:1]) + local[1:]
		}
		written := domain
		if rng.IntN(2) == 1 {
			written = strings.ToUpper(domain)
		}
		addr := local + "@" + written
		var cell string
		switch rng.IntN(4) {
		case 0:
			cell = addr
		case 1:
			cell = fmt.Sprintf("User %d <%s>", m, addr)
		case 2:
			cell = "mailto:" + addr
		case 3:
			cell = " " + addr + " "
		}
		fmt.Fprintf(&b, "%s,%s\n", cell, id)
		key := strings.ToLower(local) + "@" + domain
		if r, ok := first[key]; ok {
			wantRejects = append(wantRejects, rejected{cell, listclean.ReasonDuplicate, fmt.Sprintf("duplicate of row %d", r)})
			continue
		}
		first[key] = row
		fmt.Fprintf(&cb, "%s@%s,%s\n", local, domain, id)
	}
	return b.String(), cb.String(), wantRejects
}

func TestCleanDuplicatesSpill(t *testing.T) {
	list, wantClean, wantRejects := generatedList(3000)
	var outputs [][3]string
	for _, mem := range []int{0, 256} { // 0: the default, 16 MiB
		t.Run(fmt.Sprint("SortMemory=", mem), func(t *testing.T) {
			e := newCleanEnv(t)
			opt := e.list(t, list)
			opt.SortMemory = mem
			// When the first pass ends, the run files are in the temporary directory.
			spilled := -1
			opt.Progress = func(stage string, done, total int64) {
				if stage != "scan" || done != total {
					return
				}
				tmps, _ := filepath.Glob(filepath.Join(e.tmp, "*", "*"))
				spilled = len(tmps)
			}
			sum := clean(t, opt)
			t.Logf("SortMemory %d: %d sort runs on disk after the first pass", mem, spilled)
			if mem == 0 && spilled != 0 || mem > 0 && spilled < 2 {
				t.Errorf("SortMemory %d: %d sort runs on disk after the first pass", mem, spilled)
			}
			out, rej, warn := listclean.DefaultPaths(opt.Input)
			if got := readFile(t, out); got != wantClean {
				t.Errorf("clean file differs from the expected one (%d bytes, want %d)", len(got), len(wantClean))
			}
			checkRejects(t, rejects(t, rej, 0), wantRejects)
			if sum.Kept+sum.Rejected != 3000 || sum.Rejected != int64(len(wantRejects)) {
				t.Errorf("summary kept %d rejected %d, want %d rejected of 3000", sum.Kept, sum.Rejected, len(wantRejects))
			}
			outputs = append(outputs, [3]string{readFile(t, out), readFile(t, rej), readFile(t, warn)})
			if names := dirNames(t, e.tmp); len(names) != 0 {
				t.Errorf("temporary directory left with %q", names)
			}
		})
	}
	if len(outputs) == 2 && outputs[0] != outputs[1] {
		t.Errorf("spilling to disk changed the output files")
	}
}

// lateErrorList is a valid list of n data rows but for a bare quote on line
// bad.
func lateErrorList(n, bad int) string {
	var b strings.Builder
	b.WriteString("email,name\n")
	for line := 2; line <= n+1; line++ {
		if line == bad {
			fmt.Fprintf(&b, "u%d@ok.test,an \"unquoted\" quote\n", line)
			continue
		}
		fmt.Fprintf(&b, "u%d@ok.test,User %d\n", line, line)
	}
	return b.String()
}

func TestCleanFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name  string
		list  string
		setup func(t *testing.T, dir string, opt *listclean.Options)
		keep  []string // entries of the list's directory besides list.csv
	}{
		{name: "parse error late in the list", list: lateErrorList(3000, 2900)},
		{name: "--out directory missing", list: lateErrorList(50, 0),
			setup: func(t *testing.T, dir string, opt *listclean.Options) {
				opt.Out = filepath.Join(dir, "missing", "clean.csv")
			}},
		{name: "--rejects directory missing", list: lateErrorList(50, 0),
			setup: func(t *testing.T, dir string, opt *listclean.Options) {
				opt.Rejects = filepath.Join(dir, "missing", "rejects.csv")
			}},
		{name: "--warnings directory missing", list: lateErrorList(50, 0),
			setup: func(t *testing.T, dir string, opt *listclean.Options) {
				opt.Warnings = filepath.Join(dir, "missing", "warnings.csv")
			}},
		// The last output cannot be renamed into place: the first two
		// must not be left behind either.
		{name: "--warnings is a directory", list: lateErrorList(50, 0), keep: []string{"warn"},
			setup: func(t *testing.T, dir string, opt *listclean.Options) {
				opt.Warnings = filepath.Join(dir, "warn")
				if err := os.Mkdir(opt.Warnings, 0o755); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCleanEnv(t)
			opt := e.list(t, tt.list)
			if tt.setup != nil {
				tt.setup(t, e.dir, &opt)
			}
			if _, err := listclean.Clean(context.Background(), opt); err == nil {
				t.Fatal("Clean succeeded, want an error")
			}
			want := append([]string{"list.csv"}, tt.keep...)
			slices.Sort(want)
			if got := dirNames(t, e.dir); !slices.Equal(got, want) {
				t.Errorf("list directory holds %q after a failed run, want %q", got, want)
			}
			if got := dirNames(t, e.tmp); len(got) != 0 {
				t.Errorf("temporary directory holds %q after a failed run", got)
			}
			for _, k := range tt.keep {
				if got := dirNames(t, filepath.Join(e.dir, k)); len(got) != 0 {
					t.Errorf("%s holds %q after a failed run", k, got)
				}
			}
		})
	}
}

func TestCleanInputErrors(t *testing.T) {
	tests := []struct {
		name    string
		content *string // nil: no file
		dir     bool    // the input is a directory
		column  string  // Options.EmailColumn
		out     string  // Options.Out, relative to the list's directory
		line    int
		msg     string
	}{
		{name: "no such file", msg: "no such file"},
		{name: "directory", dir: true, msg: "directory"},
		{name: "empty", content: ptr(""), msg: "empty"},
		{name: "blank", content: ptr(" \r\n\n"), msg: "empty"},
		{name: "binary", content: ptr("PK\x03\x04\x00\x00\x08\x00email\x00\xff\xfe"), msg: "not a CSV"},
		{name: "no email column", content: ptr("name,phone\nAnn,123\n"), line: 1, msg: "no email column"},
		{name: "--email-column not in header", content: ptr("email,name\na@ok.test,Ann\n"), column: "Work Email", line: 1, msg: "Work Email"},
		{name: "bare quote late", content: ptr(lateErrorList(3000, 2501)), line: 2501, msg: "not valid CSV"},
		{name: "unterminated quote", content: ptr("email,name\na@ok.test,Ann\nb@ok.test,\"Bob\n"), line: 3, msg: "not valid CSV"},
		{name: "--out is the list", content: ptr("email\na@ok.test\n"), out: "list.csv", msg: "same file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newCleanEnv(t)
			path := filepath.Join(e.dir, "list.csv")
			switch {
			case tt.dir:
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			case tt.content != nil:
				if err := os.WriteFile(path, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			opt := listclean.Options{Input: path, EmailColumn: tt.column, Resolver: newResolver(t, e.srv.Addr, time.Second),
				Store: e.st, TempDir: e.tmp}
			if tt.out != "" {
				opt.Out = filepath.Join(e.dir, tt.out)
			}
			_, err := listclean.Clean(context.Background(), opt)
			var ie *listclean.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Clean: %v (%T), want an *InputError", err, err)
			}
			if ie.Line != tt.line || !strings.Contains(ie.Msg, tt.msg) {
				t.Errorf("InputError line %d msg %q, want line %d msg containing %q", ie.Line, ie.Msg, tt.line, tt.msg)
			}
			if ie.Path == "" || !strings.Contains(err.Error(), ie.Path) {
				t.Errorf("error %q does not name the file", err)
			}
			if tt.out == "" && ie.Path != path {
				t.Errorf("InputError path %q, want %q", ie.Path, path)
			}
			if tt.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("%s:%d: ", path, tt.line)) {
				t.Errorf("error %q, want it to start %s:%d: ", err, path, tt.line)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			want := []string{}
			if tt.dir || tt.content != nil {
				want = []string{"list.csv"}
			}
			if got := dirNames(t, e.dir); len(got) != len(want) || len(want) > 0 && got[0] != want[0] {
				t.Errorf("list directory holds %q, want %q", got, want)
			}
			if n := e.srv.TotalQueries(); n != 0 {
				t.Errorf("%d DNS queries for an unreadable list", n)
			}
			if tt.content != nil {
				if got := readFile(t, path); got != *tt.content {
					t.Errorf("the list was changed")
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
