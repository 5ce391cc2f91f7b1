package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relayctl/relayctl/listclean"
)

// TestDNS asks the tour's DNS server what clean and run will ask it.
func TestDNS(t *testing.T) {
	d, err := StartDNS(zone)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := listclean.NewResolver(d.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		domain, verdict string
		mx              []string
	}{
		{"example.com", listclean.DomainOK, []string{"mx1.example.com"}},
		{"Club.Example", listclean.DomainOK, []string{"mx1.mailhost.example"}},
		{"smallshop.example", listclean.DomainOK, nil},
		{"closed.example", listclean.DomainNullMX, nil},
		{"web-only.example", listclean.DomainNoMailHost, nil},
		{"old-company.example", listclean.DomainNoDomain, nil},
	} {
		res := r.CheckDomain(ctx, tc.domain)
		if res.Verdict != tc.verdict || !slices.Equal(res.MX, tc.mx) {
			t.Errorf("%s: %s %v (%s), want %s %v", tc.domain, res.Verdict, res.MX, res.Detail, tc.verdict, tc.mx)
		}
	}
	addrs, err := r.Addrs(ctx, "mx1.mailhost.example")
	if err != nil || !slices.Equal(addrs, []netip.Addr{netip.MustParseAddr("127.0.0.1")}) {
		t.Errorf("addresses of mx1.mailhost.example: %v, %v; want 127.0.0.1", addrs, err)
	}
}

// reserved are the names the tour may use (RFC 2606, RFC 6761).
func reserved(domain string) bool {
	domain = strings.ToLower(domain)
	switch domain {
	case "example.com", "example.net", "example.org":
		return true
	}
	for _, tld := range []string{".example", ".test", ".invalid"} {
		if strings.HasSuffix(domain, tld) {
			return true
		}
	}
	for _, base := range []string{".example.com", ".example.net", ".example.org"} {
		if strings.HasSuffix(domain, base) {
			return true
		}
	}
	return false
}

var domainName = regexp.MustCompile(`(?i)[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}`)

// TestSampleList: a few hundred rows, a BOM and CRLF, every domain in it
// reserved, and the zone names nothing else either.
func TestSampleList(t *testing.T) {
	data, rows := sampleList()
	if !bytes.HasPrefix(data, []byte("\ufeffemail,")) || bytes.Count(data, []byte("\r\n")) != rows+1 {
		t.Errorf("want a BOM, a header and %d CRLF lines", rows)
	}
	if rows < 200 || rows > 500 {
		t.Errorf("%d rows, want a few hundred", rows)
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != rows+1 {
		t.Errorf("%d records, want %d", len(recs), rows+1)
	}
	for _, rec := range recs[1:] {
		email := strings.TrimSpace(rec[0])
		if i := strings.LastIndexByte(email, '@'); i >= 0 {
			if d := strings.TrimRight(email[i+1:], ">"); !reserved(d) {
				t.Errorf("row %q: %s is not a reserved name", rec, d)
			}
		}
	}
	for _, text := range append(slices.Clone(zone), message, config) {
		for _, name := range domainName.FindAllString(text, -1) {
			if name != "config.md" && !reserved(name) {
				t.Errorf("%q names %s, not a reserved name", text, name)
			}
		}
	}
}

func TestSetupRefusesAFullDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Setup(dir)
	var we *WorkspaceError
	if !errors.As(err, &we) || we.Problem != "is not empty" {
		t.Errorf("Setup of a full directory: %v, want a WorkspaceError", err)
	}
	_, err = Setup(filepath.Join(dir, "x"))
	if !errors.As(err, &we) || we.Problem != "is not a directory" {
		t.Errorf("Setup of a file: %v, want a WorkspaceError", err)
	}
}

// TestSteps: every step names the tour's database and settings, and its
// command line can be pasted into a shell.
func TestSteps(t *testing.T) {
	tour, err := Setup(filepath.Join(t.TempDir(), "it's here"))
	if err != nil {
		t.Fatal(err)
	}
	defer tour.Close()
	steps := tour.Steps()
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
		if !slices.Equal(s.Args[:4], []string{"--db", tour.DB, "--config", tour.Config}) {
			t.Errorf("step %s: %q does not start with the tour's --db and --config", s.Name, s.Args)
		}
	}
	if want := []string{"clean", "plan", "run", "status", "report", "report html"}; !slices.Equal(names, want) {
		t.Errorf("steps %q, want %q", names, want)
	}
	if got, want := steps[0].CommandLine(), "relayctl --db '"+strings.ReplaceAll(tour.DB, "'", `'\''`)+"'"; !strings.HasPrefix(got, want) {
		t.Errorf("command line %s, want it to start %s", got, want)
	}
	for _, f := range []string{tour.List, tour.Message, tour.Config} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
}
