// Package listclean owns recipient lists: reading CSV exports as they come
// out of CRMs and spreadsheets, checking and normalising addresses, asking
// DNS whether their domains take mail, and writing the clean list, the
// rejects with their reasons, and the warnings.
package listclean

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relayctl/relayctl/internal/extsort"
	"github.com/relayctl/relayctl/store"
)

// Reject reasons written in the rejects file's reason column. The domain
// verdicts DomainNullMX, DomainNoMailHost, DomainNoDomain and (with Strict)
// DomainUnverified are reasons too.
const (
	ReasonMissing    = "missing"    // the email cell is empty
	ReasonMalformed  = "malformed"  // the row's field count differs from the header's
	ReasonSyntax     = "syntax"     // not an address a mail server accepts
	ReasonSuppressed = "suppressed" // on the store's suppression list
	ReasonDuplicate  = "duplicate"  // the same mailbox as an earlier row
)

// Reasons lists every reject reason, in the order summaries show them.
var Reasons = []string{ReasonMissing, ReasonMalformed, ReasonSyntax, ReasonSuppressed, ReasonDuplicate,
	DomainNoDomain, DomainNullMX, DomainNoMailHost, DomainUnverified}

// WarningKinds lists every warning kind, in the order summaries show them.
var WarningKinds = []string{WarnRole, WarnTypo, WarnDisposable, DomainUnverified}

// Store is what cleaning needs from the database: the domain cache and the
// suppression list.
type Store interface {
	Domains(ctx context.Context, names []string, notBefore time.Time) (map[string]store.Domain, error)
	PutDomains(ctx context.Context, ds []store.Domain) error
	EachSuppression(ctx context.Context, fn func(store.Suppression) error) error
}

// Options configure one cleaning run.
type Options struct {
	Input    string // the list
	Out      string // the clean file; default beside Input, LIST.clean.csv
	Rejects  string // the rejects file; default LIST.rejects.csv
	Warnings string // the warnings file; default LIST.warnings.csv

	Delimiter   rune   // 0: sniff from the header line
	EmailColumn string // header name or 1-based number; "": found by name

	Syntax SyntaxOptions

	// Resolver checks each distinct domain; nil skips MX checks.
	Resolver       *Resolver
	DNSConcurrency int
	// DNSCacheTTL is how old a cached verdict may be and still be used;
	// zero or less never reads the cache.
	DNSCacheTTL time.Duration
	// Strict rejects addresses whose domain could not be verified.
	Strict bool

	// Store supplies the suppression list and the domain cache; may be nil.
	Store Store

	// Progress, if set, is told how far each stage has got. Stages:
	// "scan" and "rows" in bytes of the list, "dns" in domains.
	Progress func(stage string, done, total int64)

	// SortMemory bounds the memory de-duplication uses before it spills
	// sorted runs to temporary files (default 1 MiB, some 44,000 rows;
	// twice that while a run is written in the background).
	SortMemory int
	// TempDir holds those runs (default: the system's temporary directory).
	TempDir string

	Now func() time.Time
}

// Summary is what a cleaning run did.
type Summary struct {
	Rows      int64            // data rows read
	Kept      int64            // rows written to the clean file
	Rejected  int64            // rows written to the rejects file
	Reasons   map[string]int64 // rejected rows by reason
	Warnings  map[string]int64 // kept rows flagged, by kind
	Samples   []Warning        // the first few warnings
	Domains   int              // distinct domains among valid addresses
	DNSCached int              // domain verdicts taken from the store
	DNSAsked  int              // domains looked up in DNS
	Format    Format
	Out       string
	Rejects   string
	WarnFile  string
	Duration  time.Duration
}

// maxSamples is how many warnings a summary lists in full.
const maxSamples = 10

// DefaultPaths returns the clean, rejects and warnings files that sit
// beside input: list.csv gives list.clean.csv, list.rejects.csv and
// list.warnings.csv.
func DefaultPaths(input string) (out, rejects, warnings string) {
	ext := filepath.Ext(input)
	base := strings.TrimSuffix(input, ext)
	if ext == "" {
		ext = ".csv"
	}
	return base + ".clean" + ext, base + ".rejects" + ext, base + ".warnings" + ext
}

// Sink receives every row of a list, in order, once its fate is known.
// The record passed is valid only during the call.
type Sink interface {
	// Begin is called once, before any row, with the list's format.
	Begin(ft Format) error
	// Keep receives a row to keep: its address normalised, its domain's
	// verdict (zero with no MX check) and the warnings on it.
	Keep(row int64, rec []string, a Address, d DomainResult, warns []Warning) error
	// Reject receives a row to leave out, with the reason and detail.
	Reject(row int64, rec []string, reason, detail string) error
}

// Check reads the list twice: first to find duplicates and domains, then,
// once DNS has given its verdicts, to hand every row to sink. Memory stays
// flat in the number of rows: duplicates are found by an external sort,
// and only the distinct domains are held.
func Check(ctx context.Context, opt Options, sink Sink) (*Summary, error) {
	start := time.Now()
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.SortMemory <= 0 {
		opt.SortMemory = 1 << 20
	}
	if opt.DNSConcurrency <= 0 {
		opt.DNSConcurrency = 32
	}
	tmp, err := os.MkdirTemp(opt.TempDir, "relayctl-clean-*")
	if err != nil {
		return nil, fmt.Errorf("clean %s: %w", opt.Input, err)
	}
	defer os.RemoveAll(tmp)

	sum := &Summary{Reasons: map[string]int64{}, Warnings: map[string]int64{}}
	for _, r := range Reasons {
		sum.Reasons[r] = 0
	}
	for _, k := range WarningKinds {
		sum.Warnings[k] = 0
	}

	sc, err := scan(ctx, opt, tmp)
	if err != nil {
		return nil, err
	}
	defer sc.dups.close()
	sum.Format = sc.format
	sum.Domains = len(sc.parser.sites)

	if err := checkDomains(ctx, opt, sc.parser.sites, sum); err != nil {
		return nil, err
	}
	var lister SuppressionLister
	if opt.Store != nil {
		lister = opt.Store
	}
	supp, err := LoadSuppressions(ctx, lister)
	if err != nil {
		return nil, err
	}
	if err := deliver(ctx, opt, sc, supp, sum, sink); err != nil {
		return nil, err
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// Clean checks the list and writes the clean, rejects and warnings files.
// They are written under temporary names and renamed into place only when
// everything succeeded.
func Clean(ctx context.Context, opt Options) (*Summary, error) {
	if err := opt.fillPaths(); err != nil {
		return nil, err
	}
	fs := &fileSink{opt: opt}
	sum, err := Check(ctx, opt, fs)
	if err == nil {
		err = fs.commit()
	}
	if err != nil {
		fs.abort()
		return nil, err
	}
	sum.Out, sum.Rejects, sum.WarnFile = opt.Out, opt.Rejects, opt.Warnings
	return sum, nil
}

// fillPaths sets default output paths and refuses ones that would
// overwrite the input or each other.
func (opt *Options) fillPaths() error {
	out, rej, warn := DefaultPaths(opt.Input)
	if opt.Out == "" {
		opt.Out = out
	}
	if opt.Rejects == "" {
		opt.Rejects = rej
	}
	if opt.Warnings == "" {
		opt.Warnings = warn
	}
	seen := map[string]string{}
	for _, p := range []struct{ flag, path string }{{"input", opt.Input}, {"--out", opt.Out}, {"--rejects", opt.Rejects}, {"--warnings", opt.Warnings}} {
		abs, err := filepath.Abs(p.path)
		if err != nil {
			return &InputError{Path: p.path, Msg: err.Error()}
		}
		if fi, err := os.Stat(p.path); err == nil && fi.IsDir() && p.flag != "input" {
			return &InputError{Path: p.path, Msg: p.flag + " names a directory, want a file"}
		}
		if other, ok := seen[abs]; ok {
			return &InputError{Path: p.path, Msg: fmt.Sprintf("%s and %s name the same file", other, p.flag)}
		}
		seen[abs] = p.flag
	}
	return nil
}

// scanned is what the first pass learnt.
type scanned struct {
	format  Format
	rows    int64
	size    int64
	modTime time.Time
	parser  *parser
	dups    *dupIndex
}

// scan is the first pass: it collects each valid address's key for
// de-duplication and, through the parser's cache, the distinct domains.
func scan(ctx context.Context, opt Options, tmp string) (*scanned, error) {
	lr, ft, err := openList(opt.Input, opt.Delimiter, opt.EmailColumn)
	if err != nil {
		return nil, err
	}
	defer lr.close()
	sc := &scanned{format: ft, size: lr.size, parser: newParser(opt.Syntax)}
	if fi, err := lr.f.Stat(); err == nil {
		sc.modTime = fi.ModTime()
	}
	keys := extsort.New(tmp, opt.SortMemory, keyFormat)
	defer keys.RemoveRuns()
	for {
		rec, err := lr.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if lr.row%8192 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			opt.progress("scan", lr.offset(), lr.size)
		}
		if len(rec) != len(ft.Header) {
			continue
		}
		a, _, err := sc.parser.parse(Normalize(rec[ft.EmailColumn]))
		if err != nil {
			continue
		}
		h1, h2 := a.hash()
		if err := keys.Add(keyRec{h1, h2, lr.row}); err != nil {
			return nil, fmt.Errorf("clean %s: %w", opt.Input, err)
		}
	}
	opt.progress("scan", lr.size, lr.size)
	sc.rows = lr.row - 1
	sc.dups, err = findDuplicates(keys, tmp, opt.SortMemory)
	if err != nil {
		return nil, fmt.Errorf("clean %s: %w", opt.Input, err)
	}
	return sc, nil
}

func (opt Options) progress(stage string, done, total int64) {
	if opt.Progress != nil {
		opt.Progress(stage, done, total)
	}
}

// keyRec is a mailbox's 128-bit hash and its row. De-duplication sorts
// these fixed-size records rather than the addresses: cheaper to compare
// and a third of the memory. Two different mailboxes collide with a
// probability of about n²/2¹²⁹, some 10⁻²⁷ for a million rows.
type keyRec struct {
	h1, h2 uint64
	row    int64
}

var keyFormat = extsort.Format[keyRec]{
	Compare: func(a, b keyRec) int {
		if c := cmp.Compare(a.h1, b.h1); c != 0 {
			return c
		}
		if c := cmp.Compare(a.h2, b.h2); c != 0 {
			return c
		}
		return cmp.Compare(a.row, b.row)
	},
	Size: func(keyRec) int { return 24 },
	Append: func(b []byte, k keyRec) []byte {
		b = binary.LittleEndian.AppendUint64(b, k.h1)
		b = binary.LittleEndian.AppendUint64(b, k.h2)
		return binary.LittleEndian.AppendUint64(b, uint64(k.row))
	},
	Read: func(r *bufio.Reader) (keyRec, error) {
		var b [24]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if err == io.ErrUnexpectedEOF {
				return keyRec{}, err
			}
			return keyRec{}, err
		}
		return keyRec{binary.LittleEndian.Uint64(b[:]), binary.LittleEndian.Uint64(b[8:]), int64(binary.LittleEndian.Uint64(b[16:]))}, nil
	},
}

// dupPair says that row repeats the mailbox of kept.
type dupPair struct{ row, kept int64 }

var pairFormat = extsort.Format[dupPair]{
	Compare: func(a, b dupPair) int { return cmp.Compare(a.row, b.row) },
	Size:    func(dupPair) int { return 16 },
	Append: func(b []byte, p dupPair) []byte {
		b = binary.LittleEndian.AppendUint64(b, uint64(p.row))
		return binary.LittleEndian.AppendUint64(b, uint64(p.kept))
	},
	Read: func(r *bufio.Reader) (dupPair, error) {
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return dupPair{}, err
		}
		return dupPair{int64(binary.LittleEndian.Uint64(b[:])), int64(binary.LittleEndian.Uint64(b[8:]))}, nil
	},
}

// dupIndex yields, in row order, each duplicate row with the row it repeats.
type dupIndex struct {
	it     *extsort.Iter[dupPair]
	sorter *extsort.Sorter[dupPair]
	next   dupPair // row -1 when there are no more
	err    error
}

// findDuplicates walks the keys in sorted order: within a run of equal keys
// the first row (the lowest) is kept and every other is a duplicate of it.
// The (duplicate, kept) pairs are sorted again by duplicate row, so the
// second pass can consume them in step with the list.
func findDuplicates(keys *extsort.Sorter[keyRec], tmp string, limit int) (*dupIndex, error) {
	it, err := keys.Sorted()
	if err != nil {
		return nil, err
	}
	defer it.Close()
	pairs := extsort.New(tmp, limit, pairFormat)
	var prev keyRec
	first := true
	for {
		k, ok, err := it.Next()
		if err != nil {
			pairs.RemoveRuns()
			return nil, err
		}
		if !ok {
			break
		}
		if !first && k.h1 == prev.h1 && k.h2 == prev.h2 {
			if err := pairs.Add(dupPair{k.row, prev.row}); err != nil {
				pairs.RemoveRuns()
				return nil, err
			}
			continue
		}
		first, prev = false, k
	}
	pit, err := pairs.Sorted()
	if err != nil {
		pairs.RemoveRuns()
		return nil, err
	}
	d := &dupIndex{it: pit, sorter: pairs}
	d.advance()
	return d, d.err
}

func (d *dupIndex) advance() {
	p, ok, err := d.it.Next()
	if err != nil || !ok {
		d.next, d.err = dupPair{row: -1}, err
		return
	}
	d.next = p
}

// keptFor reports the row that row duplicates, if it is a duplicate. Rows
// must be asked about in increasing order.
func (d *dupIndex) keptFor(row int64) (int64, bool) {
	for d.next.row >= 0 && d.next.row < row {
		d.advance()
	}
	if d.next.row == row {
		return d.next.kept, true
	}
	return 0, false
}

func (d *dupIndex) close() {
	d.it.Close()
	d.sorter.RemoveRuns()
}

// checkDomains gives every site a verdict, from the store's cache where
// it is fresh, otherwise from DNS, and caches what DNS said for sure.
func checkDomains(ctx context.Context, opt Options, sites map[string]*site, sum *Summary) error {
	if opt.Resolver == nil {
		return nil
	}
	names := make([]string, 0, len(sites))
	for d := range sites {
		names = append(names, d)
	}
	slices.Sort(names)
	if opt.Store != nil && opt.DNSCacheTTL > 0 {
		cached, err := opt.Store.Domains(ctx, names, opt.Now().Add(-opt.DNSCacheTTL))
		if err != nil {
			return err
		}
		for n, d := range cached {
			sites[n].verdict = DomainResult{Domain: n, Verdict: d.Verdict, MX: d.MX, Detail: d.Detail}
		}
		sum.DNSCached = len(cached)
	}
	ask := names[:0]
	for _, n := range names {
		if sites[n].verdict.Verdict == "" {
			ask = append(ask, n)
		}
	}
	sum.DNSAsked = len(ask)
	var mu sync.Mutex
	var done int64
	results := opt.Resolver.CheckDomains(ctx, ask, opt.DNSConcurrency, func() {
		mu.Lock()
		defer mu.Unlock()
		done++
		opt.progress("dns", done, int64(len(ask)))
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	var fresh []store.Domain
	now := opt.Now()
	for _, r := range results {
		sites[r.Domain].verdict = r
		if r.Verdict != DomainUnverified {
			fresh = append(fresh, store.Domain{Name: r.Domain, Verdict: r.Verdict, MX: r.MX, Detail: r.Detail, CheckedAt: now})
		}
	}
	if opt.Store != nil && len(fresh) > 0 {
		return opt.Store.PutDomains(ctx, fresh)
	}
	return nil
}

// Suppressions is the suppression list, held in memory for a clean or a
// run.
type Suppressions struct {
	addresses map[string]string // key → reason
	domains   map[string]string
}

// LoadSuppressions reads the whole suppression list; st may be nil.
func LoadSuppressions(ctx context.Context, st SuppressionLister) (*Suppressions, error) {
	s := &Suppressions{addresses: map[string]string{}, domains: map[string]string{}}
	if st == nil {
		return s, nil
	}
	err := st.EachSuppression(ctx, func(sup store.Suppression) error {
		if sup.Kind == store.SuppressDomain {
			s.domains[sup.Value] = sup.Reason
		} else {
			s.addresses[sup.Value] = sup.Reason
		}
		return nil
	})
	return s, err
}

// Match returns why a is suppressed, if it is: the address itself, or its
// domain or a parent of it.
func (s *Suppressions) Match(a Address) (string, bool) {
	if len(s.addresses) > 0 {
		if r, ok := s.addresses[a.Key()]; ok {
			return describe("address suppressed", r), true
		}
	}
	if len(s.domains) > 0 {
		for d := a.Domain; ; {
			if r, ok := s.domains[d]; ok {
				return describe("domain "+d+" suppressed", r), true
			}
			i := strings.IndexByte(d, '.')
			if i < 0 {
				break
			}
			d = d[i+1:]
		}
	}
	return "", false
}

func describe(what, reason string) string {
	if reason == "" {
		return what
	}
	return what + ": " + reason
}

// deliver is the second pass: every row goes to the sink, in the list's
// order.
func deliver(ctx context.Context, opt Options, sc *scanned, supp *Suppressions, sum *Summary, sink Sink) error {
	lr, ft, err := openList(opt.Input, sc.format.Delimiter, opt.EmailColumn)
	if err != nil {
		return err
	}
	defer lr.close()
	if fi, serr := lr.f.Stat(); serr == nil && (fi.Size() != sc.size || !fi.ModTime().Equal(sc.modTime)) {
		return &InputError{Path: opt.Input, Msg: "the file changed while it was being cleaned"}
	}
	if err := sink.Begin(ft); err != nil {
		return err
	}
	col := ft.EmailColumn
	adv := newAdvisor()
	var warns []Warning
	for {
		rec, rerr := lr.read()
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
		row := lr.row
		if row%8192 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			opt.progress("rows", lr.offset(), lr.size)
		}
		sum.Rows++
		reason, detail, a, st := classify(rec, len(ft.Header), col, opt, sc.parser, supp, sc.dups, row)
		if reason != "" {
			sum.Rejected++
			sum.Reasons[reason]++
			if err := sink.Reject(row, rec, reason, detail); err != nil {
				return err
			}
			continue
		}
		sum.Kept++
		v := st.verdict
		warns = append(adv.localWarnings(warns[:0], a.Local), st.advice(adv)...)
		if v.Verdict == DomainUnverified {
			warns = append(warns, Warning{Kind: DomainUnverified, Detail: v.Detail})
		}
		for i := range warns {
			warns[i].Row, warns[i].Email = row, a.String()
			sum.Warnings[warns[i].Kind]++
			if len(sum.Samples) < maxSamples {
				sum.Samples = append(sum.Samples, warns[i])
			}
		}
		if err := sink.Keep(row, rec, a, v, warns); err != nil {
			return err
		}
	}
	if sc.dups.err != nil {
		return fmt.Errorf("clean %s: %w", opt.Input, sc.dups.err)
	}
	if sum.Rows != sc.rows {
		return &InputError{Path: opt.Input, Msg: "the file changed while it was being cleaned"}
	}
	opt.progress("rows", lr.size, lr.size)
	return nil
}

// fileSink writes the clean, rejects and warnings files.
type fileSink struct {
	opt                      Options
	col                      int
	outs                     []*output
	clean, rejects, warnFile *output
}

func (fs *fileSink) Begin(ft Format) error {
	fs.col = ft.EmailColumn
	create := func(path string, header []string) (*output, error) {
		o, err := createOutput(path, ft)
		if err != nil {
			return nil, err
		}
		fs.outs = append(fs.outs, o)
		return o, o.write(header)
	}
	var err error
	if fs.clean, err = create(fs.opt.Out, ft.Header); err != nil {
		return err
	}
	if fs.rejects, err = create(fs.opt.Rejects, append(slices.Clone(ft.Header), "reason", "detail")); err != nil {
		return err
	}
	fs.warnFile, err = create(fs.opt.Warnings, []string{"row", ft.Header[fs.col], "kind", "detail"})
	return err
}

func (fs *fileSink) Keep(row int64, rec []string, a Address, _ DomainResult, warns []Warning) error {
	rec[fs.col] = a.String()
	if err := fs.clean.write(rec); err != nil {
		return err
	}
	for _, w := range warns {
		if err := fs.warnFile.write([]string{strconv.FormatInt(w.Row, 10), w.Email, w.Kind, w.Detail}); err != nil {
			return err
		}
	}
	return nil
}

func (fs *fileSink) Reject(row int64, rec []string, reason, detail string) error {
	return fs.rejects.write(append(rec, reason, detail))
}

// commit finishes every file before renaming any, so that a failure
// leaves none of them in place.
func (fs *fileSink) commit() error {
	for _, o := range fs.outs {
		if err := o.finish(); err != nil {
			return err
		}
	}
	for _, o := range fs.outs {
		if err := o.rename(); err != nil {
			return err
		}
	}
	fs.outs = nil
	return nil
}

func (fs *fileSink) abort() {
	for _, o := range fs.outs {
		o.abort()
	}
	fs.outs = nil
}

// classify decides a row's fate: a reject reason and detail, or the
// address to keep.
func classify(rec []string, fields, col int, opt Options, p *parser, supp *Suppressions, dups *dupIndex, row int64) (reason, detail string, a Address, st *site) {
	if len(rec) != fields {
		return ReasonMalformed, fmt.Sprintf("%d fields, the header has %d", len(rec), fields), a, nil
	}
	s := Normalize(rec[col])
	if s == "" {
		return ReasonMissing, "no address", a, nil
	}
	a, st, err := p.parse(s)
	if err != nil {
		return ReasonSyntax, err.Error(), a, nil
	}
	// Ask the duplicate index about every valid row, so it stays in step.
	kept, isDup := dups.keptFor(row)
	if why, ok := supp.Match(a); ok {
		return ReasonSuppressed, why, a, st
	}
	switch v := st.verdict; v.Verdict {
	case DomainNoDomain, DomainNullMX, DomainNoMailHost:
		return v.Verdict, a.Domain + ": " + v.Detail, a, st
	case DomainUnverified:
		if opt.Strict {
			return v.Verdict, a.Domain + ": " + v.Detail, a, st
		}
	}
	if isDup {
		return ReasonDuplicate, fmt.Sprintf("duplicate of row %d", kept), a, st
	}
	return "", "", a, st
}
