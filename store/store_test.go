package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTemp(t *testing.T, name string) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "with space?and#100%.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddSuppression(ctx, Suppression{Value: "Jane@Example.com", Kind: SuppressAddress}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at its path: %v", err)
	}
	var versions int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("migrations/*.sql")
	if versions != len(files) {
		t.Errorf("schema_migrations has %d rows, want one per migration (%d)", versions, len(files))
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	n := 0
	s.EachSuppression(ctx, func(Suppression) error { n++; return nil })
	if n != 1 {
		t.Errorf("after reopen: %d suppressions, want 1", n)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v, want a 'newer' error", err)
	}
}

func TestOpenBadPaths(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Open(ctx, dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(directory) = %v, want an error naming it", err)
	}
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("this is not a database\n", 400)), 0o644)
	if _, err := Open(ctx, junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("Open(non-database) = %v, want an error naming it", err)
	}
}

func TestDomainCacheFreshness(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, "d.db")
	now := time.Now()
	err := s.PutDomains(ctx, []Domain{
		{Name: "fresh.test", Verdict: "ok", MX: []string{"mx1.fresh.test", "mx2.fresh.test"}, CheckedAt: now},
		{Name: "stale.test", Verdict: "no_domain", Detail: "NXDOMAIN", CheckedAt: now.Add(-48 * time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Domains(ctx, []string{"fresh.test", "stale.test", "unknown.test"}, now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("Domains = %v, want only fresh.test", got)
	}
	d := got["fresh.test"]
	if d.Verdict != "ok" || strings.Join(d.MX, ",") != "mx1.fresh.test,mx2.fresh.test" || d.CheckedAt.Unix() != now.Unix() {
		t.Errorf("fresh.test = %+v", d)
	}
	// A newer verdict replaces the old one.
	if err := s.PutDomains(ctx, []Domain{{Name: "stale.test", Verdict: "ok", CheckedAt: now}}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Domains(ctx, []string{"stale.test"}, now.Add(-time.Hour))
	if got["stale.test"].Verdict != "ok" {
		t.Errorf("after update: %+v", got)
	}
}

func TestSuppressions(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, "s.db")
	for _, sup := range []Suppression{
		{Value: "Bounced@Example.com", Kind: SuppressAddress, Reason: "550 5.1.1", Source: "spring"},
		{Value: "blocked.test", Kind: SuppressDomain, Reason: "asked"},
	} {
		if err := s.AddSuppression(ctx, sup); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddSuppression(ctx, Suppression{Value: "x.test", Kind: "bogus"}); err == nil {
		t.Error("AddSuppression accepted kind bogus")
	}
	var got []string
	s.EachSuppression(ctx, func(sup Suppression) error {
		got = append(got, sup.Kind+":"+sup.Value+":"+sup.Reason)
		return nil
	})
	want := "domain:blocked.test:asked address:bounced@example.com:550 5.1.1"
	if strings.Join(got, " ") != want {
		t.Errorf("suppressions = %q, want %q", strings.Join(got, " "), want)
	}
	ok, err := s.RemoveSuppression(ctx, "BOUNCED@example.com")
	if err != nil || !ok {
		t.Errorf("RemoveSuppression = %v, %v; want true", ok, err)
	}
	ok, _ = s.RemoveSuppression(ctx, "bounced@example.com")
	if ok {
		t.Error("second RemoveSuppression reported a removal")
	}
}
