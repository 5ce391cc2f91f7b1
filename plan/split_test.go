package plan_test

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/relayctl/relayctl/plan"
)

// checkSplit checks every promise Split makes for counts and perJob: the
// number of jobs, job sizes, each group's ⌊n/J⌋ or ⌈n/J⌉ share of every
// job, and that placing every recipient of every group puts each in
// exactly one (job, slot), with the counts Count announced.
func checkSplit(t *testing.T, counts map[string]int64, perJob int) *plan.Split {
	t.Helper()
	s := plan.NewSplit(counts, perJob)
	var total int64
	for _, n := range counts {
		total += n
	}
	wantJobs := int((total + int64(perJob) - 1) / int64(perJob))
	if s.Jobs != wantJobs {
		t.Fatalf("%d recipients, perJob %d: %d jobs, want ⌈N/perJob⌉ = %d", total, perJob, s.Jobs, wantJobs)
	}
	if total == 0 {
		return s
	}
	J := int64(s.Jobs)

	if got, want := len(s.Groups()), len(counts); got != want {
		t.Fatalf("Groups() has %d groups, want %d", got, want)
	}
	if !slices.IsSorted(s.Groups()) {
		t.Errorf("Groups() not in layout (sorted) order: %q", s.Groups())
	}

	var sum int64
	for j := 1; j <= s.Jobs; j++ {
		size := s.JobSize(j)
		if size > int64(perJob) {
			t.Fatalf("job %d holds %d, more than perJob %d", j, size, perJob)
		}
		if lo, hi := total/J, (total+J-1)/J; size < lo || size > hi {
			t.Fatalf("job %d holds %d, want ⌊N/J⌋ = %d or ⌈N/J⌉ = %d", j, size, lo, hi)
		}
		sum += size
	}
	if sum != total {
		t.Fatalf("job sizes sum to %d, want %d", sum, total)
	}

	for g, n := range counts {
		lo, hi := n/J, (n+J-1)/J
		perJobCount := make([]int64, s.Jobs+1)
		var gsum int64
		for j := 1; j <= s.Jobs; j++ {
			c := s.Count(g, j)
			if c < lo || c > hi {
				t.Fatalf("group %s (%d) in job %d of %d: Count %d, want %d or %d", g, n, j, s.Jobs, c, lo, hi)
			}
			gsum += c
		}
		if gsum != n {
			t.Fatalf("group %s: Count over all jobs sums to %d, want %d", g, gsum, n)
		}
		// Place every recipient of the group. Within a job, a group's
		// recipients arrive in list order, so their slots must rise
		// strictly: a repeated slot would be two recipients in one place.
		last := make([]float64, s.Jobs+1)
		for j := range last {
			last[j] = -1
		}
		for i := range n {
			job, slot := s.Place(g, i)
			if job < 1 || job > s.Jobs {
				t.Fatalf("group %s recipient %d: job %d, want 1..%d", g, i, job, s.Jobs)
			}
			if !(slot >= 0 && slot < 1) {
				t.Fatalf("group %s recipient %d: slot %v, want in [0,1)", g, i, slot)
			}
			if slot <= last[job] {
				t.Fatalf("group %s recipient %d: slot %v in job %d, not after the previous %v", g, i, slot, job, last[job])
			}
			last[job] = slot
			perJobCount[job]++
		}
		for j := 1; j <= s.Jobs; j++ {
			if perJobCount[j] != s.Count(g, j) {
				t.Fatalf("group %s: Place put %d in job %d, Count says %d", g, perJobCount[j], j, s.Count(g, j))
			}
		}
	}
	return s
}

// TestSplitAcceptance is the example the plan command was specified with:
// 15,000 recipients, 800 of them at one provider, in jobs of 1,000.
func TestSplitAcceptance(t *testing.T) {
	counts := map[string]int64{
		"microsoft":   800,
		"google":      6100,
		"yahoo":       2300,
		"apple":       901,
		"example.com": 1,
		"example.org": 4898,
	}
	s := checkSplit(t, counts, 1000)
	if s.Jobs != 15 {
		t.Fatalf("%d jobs, want 15", s.Jobs)
	}
	for j := 1; j <= s.Jobs; j++ {
		if n := s.JobSize(j); n != 1000 {
			t.Errorf("job %d holds %d, want 1000", j, n)
		}
		if n := s.Count("microsoft", j); n != 53 && n != 54 {
			t.Errorf("job %d holds %d microsoft recipients, want 53 or 54", j, n)
		}
	}
	// 800 = 15·53 + 5: five jobs take one more.
	var with54 int
	for j := 1; j <= s.Jobs; j++ {
		if s.Count("microsoft", j) == 54 {
			with54++
		}
	}
	if with54 != 5 {
		t.Errorf("%d jobs hold 54 microsoft recipients, want 5", with54)
	}
}

func TestSplitEdges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		counts map[string]int64
		perJob int
		jobs   int
	}{
		{"empty", map[string]int64{}, 10, 0},
		{"only empty groups", map[string]int64{"a.example": 0, "google": 0}, 10, 0},
		{"one recipient", map[string]int64{"google": 1}, 1000, 1},
		{"exactly full", map[string]int64{"google": 500, "yahoo": 500}, 1000, 1},
		{"one over", map[string]int64{"google": 500, "yahoo": 501}, 1000, 2},
		{"perJob 1", map[string]int64{"google": 7, "yahoo": 3, "x.example": 0}, 1, 10},
		{"group smaller than jobs", map[string]int64{"google": 95, "apple": 3}, 10, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := checkSplit(t, tc.counts, tc.perJob)
			if s.Jobs != tc.jobs {
				t.Errorf("%d jobs, want %d", s.Jobs, tc.jobs)
			}
		})
	}
}

// TestSplitProperties checks the split's promises on random mixes of
// groups: a few large providers and a long tail of small domains.
func TestSplitProperties(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		groups := 1 + rng.IntN(200)
		counts := make(map[string]int64, groups)
		for g := range groups {
			// Skewed: most groups are small, a few are large, some empty.
			u := rng.Float64()
			n := int64(5000 * u * u * u)
			if rng.IntN(20) == 0 {
				n = 0
			}
			counts[fmt.Sprintf("d%03d.example", g)] = n
		}
		perJob := 1 + rng.IntN(3000)
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			checkSplit(t, counts, perJob)
		})
	}
}

// TestSplitInterleaves sorts one job's recipients the way they are sent,
// by (slot, group), and checks that no provider sends a long run.
//
// A group with a recipients in the job has slots (k+φ)/a for k = 0..a-1:
// spaced exactly 1/a apart. Between two consecutive slots of the smaller
// group b (1/b apart), a closed interval of length 1/b holds at most
// ⌊a/b⌋+1 ≤ ⌈a/b⌉+1 slots of a; the stretches before b's first slot and
// after its last are shorter than 1/b. The "+1" covers a slot of a equal
// to one of b's, which the group tie-break may put on either side.
// Singletons hold one slot and can only break runs. So the bound is
// ⌈ratio⌉+1 for the larger group, and 2 for the smaller one (ratio ≥ 1).
func TestSplitInterleaves(t *testing.T) {
	for _, tc := range []struct {
		big, small int64
		singletons int
		perJob     int
	}{
		{6000, 800, 50, 1000},
		{5000, 5000, 10, 1000},
		{9000, 300, 200, 1000},
		{3000, 2999, 0, 700},
		{1200, 37, 5, 300},
	} {
		t.Run(fmt.Sprintf("%d-%d-%d", tc.big, tc.small, tc.singletons), func(t *testing.T) {
			counts := map[string]int64{"google": tc.big, "microsoft": tc.small}
			for i := range tc.singletons {
				counts[fmt.Sprintf("s%03d.example", i)] = 1
			}
			s := plan.NewSplit(counts, tc.perJob)
			type placed struct {
				group string
				slot  float64
			}
			jobs := make([][]placed, s.Jobs+1)
			for g, n := range counts {
				for i := range n {
					j, slot := s.Place(g, i)
					jobs[j] = append(jobs[j], placed{g, slot})
				}
			}
			for j := 1; j <= s.Jobs; j++ {
				a, b := s.Count("google", j), s.Count("microsoft", j)
				if a == 0 || b == 0 {
					t.Fatalf("job %d lacks a large group: google %d, microsoft %d", j, a, b)
				}
				ratio := float64(max(a, b)) / float64(min(a, b))
				limit := map[string]int{"google": 2, "microsoft": 2}
				larger := "google"
				if b > a {
					larger = "microsoft"
				}
				limit[larger] = int(math.Ceil(ratio)) + 1

				slices.SortFunc(jobs[j], func(x, y placed) int {
					return cmp.Or(cmp.Compare(x.slot, y.slot), cmp.Compare(x.group, y.group))
				})
				run := 0
				for i, p := range jobs[j] {
					if i > 0 && jobs[j][i-1].group == p.group {
						run++
					} else {
						run = 1
					}
					lim, ok := limit[p.group]
					if !ok {
						lim = 1
					}
					if run > lim {
						t.Fatalf("job %d (google %d, microsoft %d): %d %s recipients in a row at position %d, want at most %d",
							j, a, b, run, p.group, i, lim)
					}
				}
			}
		})
	}
}
