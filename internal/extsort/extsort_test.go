package extsort

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

type rec struct{ key, val int64 }

var recFormat = Format[rec]{
	Compare: func(a, b rec) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.val, b.val)
	},
	Size: func(rec) int { return 16 },
	Append: func(b []byte, r rec) []byte {
		return binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(b, uint64(r.key)), uint64(r.val))
	},
	Read: func(r *bufio.Reader) (rec, error) {
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return rec{}, err
		}
		return rec{int64(binary.LittleEndian.Uint64(b[:])), int64(binary.LittleEndian.Uint64(b[8:]))}, nil
	},
}

func drain(t *testing.T, s *Sorter[rec]) []rec {
	t.Helper()
	it, err := s.Sorted()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []rec
	for {
		r, ok, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

// The same records come out sorted whether they fit in memory, spill to a
// few runs, or to so many (2,500) that merging them takes several levels.
func TestSortsInMemoryAndSpilled(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var in []rec
	for i := range 5000 {
		in = append(in, rec{rng.Int64N(500), int64(i)})
	}
	want := slices.Clone(in)
	slices.SortFunc(want, recFormat.Compare)
	for _, limit := range []int{1 << 30, 4096, 32} {
		dir := t.TempDir()
		s := New(dir, limit, recFormat)
		for _, r := range in {
			if err := s.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		got := drain(t, s)
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: output differs from a plain sort (%d records, want %d)", limit, len(got), len(want))
		}
		wantRuns := 0
		if limit < 1<<30 {
			wantRuns = 5000 * 16 / limit
		}
		if s.Runs() < wantRuns {
			t.Errorf("limit %d: %d runs, want at least %d", limit, s.Runs(), wantRuns)
		}
		s.RemoveRuns()
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("limit %d: %d files left after RemoveRuns", limit, len(left))
		}
	}
}

func TestEmpty(t *testing.T) {
	if got := drain(t, New(t.TempDir(), 64, recFormat)); len(got) != 0 {
		t.Errorf("empty sorter yielded %v", got)
	}
}

// A run that cannot be written is an error from Add or Sorted, not a
// silent loss of records.
func TestSpillError(t *testing.T) {
	s := New("/nonexistent/relayctl-extsort", 32, recFormat)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = s.Add(rec{int64(i), 0})
	}
	if err == nil {
		_, err = s.Sorted()
	}
	if err == nil {
		t.Fatal("no error though run files cannot be created")
	}
}
