package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func listSuppressions(t *testing.T, s *Store, kind string) []Suppression {
	t.Helper()
	var got []Suppression
	if err := s.EachSuppressionOfKind(context.Background(), kind, func(sup Suppression) error {
		got = append(got, sup)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestUpdateSuppressionsAddsAndUpdates(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, "u.db")
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.AddSuppression(ctx, Suppression{Value: "kept@example.com", Kind: SuppressAddress, Reason: "550 5.1.1", Source: "spring", CreatedAt: old}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sup   Suppression
		added bool
	}{
		{Suppression{Value: "New@Example.com", Kind: SuppressAddress, Reason: "asked", Source: "import"}, true},
		{Suppression{Value: "blocked.test", Kind: SuppressDomain}, true}, // source "test"
		// An update without reason or source keeps the old ones.
		{Suppression{Value: "KEPT@example.com", Kind: SuppressAddress}, false},
		// The same value twice in one transaction: the second is an update.
		{Suppression{Value: "blocked.test", Kind: SuppressDomain, Reason: "complaints"}, false},
	}
	err := s.UpdateSuppressions(ctx, "test", func(put SuppressionPut) error {
		for _, tt := range tests {
			added, err := put(tt.sup)
			if err != nil {
				return err
			}
			if added != tt.added {
				t.Errorf("put(%s) added = %v, want %v", tt.sup.Value, added, tt.added)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Suppression{}
	for _, sup := range listSuppressions(t, s, "") {
		got[sup.Value] = sup
	}
	if len(got) != 3 {
		t.Fatalf("got %d suppressions, want 3: %v", len(got), got)
	}
	if k := got["kept@example.com"]; k.Reason != "550 5.1.1" || k.Source != "spring" || !k.CreatedAt.Equal(old) {
		t.Errorf("updated entry = %+v, want reason, source and created_at kept", k)
	}
	if d := got["blocked.test"]; d.Kind != SuppressDomain || d.Reason != "complaints" || d.Source != "test" {
		t.Errorf("domain entry = %+v, want kind domain, reason complaints, the default source", d)
	}
	if n := got["new@example.com"]; n.Source != "import" || n.CreatedAt.IsZero() {
		t.Errorf("new entry = %+v, want source import and a created_at", n)
	}
}

func TestUpdateSuppressionsRollsBack(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, "r.db")
	stop := errors.New("stop")
	err := s.UpdateSuppressions(ctx, "", func(put SuppressionPut) error {
		if _, err := put(Suppression{Value: "a@example.com", Kind: SuppressAddress}); err != nil {
			return err
		}
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("UpdateSuppressions = %v, want fn's own error", err)
	}
	if got := listSuppressions(t, s, ""); len(got) != 0 {
		t.Errorf("after a failed update: %v, want nothing written", got)
	}
	err = s.UpdateSuppressions(ctx, "", func(put SuppressionPut) error {
		_, err := put(Suppression{Value: "x.test", Kind: "bogus"})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("put of kind bogus = %v, want an error naming it", err)
	}
}

func TestEachSuppressionOfKind(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, "k.db")
	for _, sup := range []Suppression{
		{Value: "b@example.com", Kind: SuppressAddress},
		{Value: "a.test", Kind: SuppressDomain},
		{Value: "a@example.com", Kind: SuppressAddress},
	} {
		if err := s.AddSuppression(ctx, sup); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ kind, want string }{
		{"", "a.test a@example.com b@example.com"},
		{SuppressAddress, "a@example.com b@example.com"},
		{SuppressDomain, "a.test"},
	} {
		var vs []string
		for _, sup := range listSuppressions(t, s, tt.kind) {
			vs = append(vs, sup.Value)
		}
		if got := strings.Join(vs, " "); got != tt.want {
			t.Errorf("kind %q: %q, want %q", tt.kind, got, tt.want)
		}
	}
	if err := s.EachSuppressionOfKind(ctx, "bogus", func(Suppression) error { return nil }); err == nil {
		t.Error("EachSuppressionOfKind accepted kind bogus")
	}
}
