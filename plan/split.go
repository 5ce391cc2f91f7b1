package plan

import (
	"hash/fnv"
	"slices"
)

// Split divides a campaign's recipients into jobs so that every group
// (provider or domain) is spread evenly over all of them.
//
// Recipients are laid out group after group, in list order within a
// group, and dealt round-robin over the jobs. So every job holds
// ⌊N/J⌋ or ⌈N/J⌉ recipients, and every group with n recipients puts
// ⌊n/J⌋ or ⌈n/J⌉ in each job. Within a job, a group's recipients get
// evenly spaced slots in [0,1), offset by a phase drawn from the group's
// name; sending in slot order interleaves the groups instead of sending one
// provider's block after another's.
type Split struct {
	Jobs   int
	groups []string
	first  map[string]int64 // a group's first index in the global layout
	size   map[string]int64
	phase  map[string]float64
}

// NewSplit plans counts (recipients per group) into jobs of at most perJob.
func NewSplit(counts map[string]int64, perJob int) *Split {
	s := &Split{first: map[string]int64{}, size: map[string]int64{}, phase: map[string]float64{}}
	for g := range counts {
		s.groups = append(s.groups, g)
	}
	slices.Sort(s.groups)
	var total int64
	for _, g := range s.groups {
		s.first[g] = total
		s.size[g] = counts[g]
		s.phase[g] = phase(g)
		total += counts[g]
	}
	if total > 0 {
		s.Jobs = int((total + int64(perJob) - 1) / int64(perJob))
	}
	return s
}

// phase is a stable number in [0,1) drawn from a group's name.
func phase(group string) float64 {
	h := fnv.New64a()
	h.Write([]byte(group))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// Groups lists the groups in layout order.
func (s *Split) Groups() []string { return s.groups }

// Place returns the job (1-based) and the slot within it of the i-th
// recipient (0-based, in list order) of group.
func (s *Split) Place(group string, i int64) (job int, slot float64) {
	J := int64(s.Jobs)
	g := s.first[group] + i
	j := g % J
	r := s.firstIndexIn(group, j)
	k := (i - r) / J
	return int(j) + 1, (float64(k) + s.phase[group]) / float64(s.Count(group, int(j)+1))
}

// firstIndexIn is the index within group of its first recipient in job j
// (0-based).
func (s *Split) firstIndexIn(group string, j int64) int64 {
	J := int64(s.Jobs)
	return ((j-s.first[group])%J + J) % J
}

// Count returns how many recipients of group job (1-based) holds.
func (s *Split) Count(group string, job int) int64 {
	r := s.firstIndexIn(group, int64(job-1))
	n := s.size[group]
	if r >= n {
		return 0
	}
	return (n-r-1)/int64(s.Jobs) + 1
}

// JobSize returns how many recipients job (1-based) holds.
func (s *Split) JobSize(job int) int64 {
	var n int64
	for _, g := range s.groups {
		n += s.Count(g, job)
	}
	return n
}
