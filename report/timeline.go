package report

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/relayctl/relayctl/store"
)

// A timeline has between minBuckets and maxBuckets buckets whenever the
// campaign's span allows.
const (
	minBuckets = 10
	maxBuckets = 120
	// timelineGroups is how many providers a timeline stacks; the rest
	// are summed in one.
	timelineGroups = 8
)

// shorterBuckets and longerBuckets are the bucket widths tried when one a
// minute would give too few or too many, nearest to a minute first.
var (
	shorterBuckets = []time.Duration{10 * time.Second, time.Second}
	longerBuckets  = []time.Duration{5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}
)

// bucketCount is how many buckets of width w, aligned on multiples of w
// since the Unix epoch, span first to last.
func bucketCount(first, last time.Time, w time.Duration) int {
	ws := int64(w / time.Second)
	return int(floorDiv(last.Unix(), ws)-floorDiv(first.Unix(), ws)) + 1
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// BucketWidth picks a timeline's bucket from first to last: a minute when
// that gives 10 to 120 buckets; for a shorter campaign 10 seconds, or a
// second, whichever gives at least 10; for a longer one the shortest of 5,
// 10, 15, 30 minutes, 1, 2, 3, 6, 12 hours or a day that gives at most
// 120, and whole days beyond.
func BucketWidth(first, last time.Time) time.Duration {
	n := bucketCount(first, last, time.Minute)
	switch {
	case n >= minBuckets && n <= maxBuckets:
		return time.Minute
	case n < minBuckets:
		for _, w := range shorterBuckets {
			if bucketCount(first, last, w) >= minBuckets {
				return w
			}
		}
		return time.Second
	}
	for _, w := range longerBuckets {
		if bucketCount(first, last, w) <= maxBuckets {
			return w
		}
	}
	days := last.Sub(first)/(24*time.Hour)/(maxBuckets-1) + 1
	return days * 24 * time.Hour
}

// BucketUnit names a bucket width for an axis: "second", "10 seconds",
// "minute", "5 minutes", "hour", "day".
func BucketUnit(w time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return one
		}
		return strconv.FormatInt(n, 10) + " " + one + "s"
	}
	switch {
	case w%(24*time.Hour) == 0:
		return unit(int64(w/(24*time.Hour)), "day")
	case w%time.Hour == 0:
		return unit(int64(w/time.Hour), "hour")
	case w%time.Minute == 0:
		return unit(int64(w/time.Minute), "minute")
	}
	return unit(int64(w/time.Second), "second")
}

// Timeline is the messages sent per bucket of time, stacked by provider.
type Timeline struct {
	Origin time.Time     // the first bucket's start
	Width  time.Duration // each bucket's
	Groups []string      // providers, most sent first; the last may sum the rest
	Counts [][]int64     // [bucket][group]
}

// timeline counts the campaign's sent messages per bucket. SQLite counts
// them per bucket and provider; what is held is buckets × providers.
func (r *Report) timeline(ctx context.Context) (*Timeline, error) {
	tl := &Timeline{}
	if r.sentFirst.IsZero() {
		return tl, nil
	}
	tl.Width = BucketWidth(r.sentFirst, r.sentLast)
	ws := int64(tl.Width / time.Second)
	tl.Origin = time.Unix(floorDiv(r.sentFirst.Unix(), ws)*ws, 0)
	n := max(bucketCount(r.sentFirst, r.sentLast, tl.Width), minBuckets)
	sent := slices.Clone(r.Providers)
	sent = slices.DeleteFunc(sent, func(p Provider) bool { return p.Sent == 0 })
	slices.SortStableFunc(sent, func(a, b Provider) int { return cmp.Compare(b.Sent, a.Sent) })
	idx := map[string]int{}
	for i, p := range sent {
		if i == timelineGroups && len(sent) > timelineGroups+1 {
			tl.Groups = append(tl.Groups, "others ("+strconv.Itoa(len(sent)-timelineGroups)+")")
			break
		}
		idx[p.Name] = i
		tl.Groups = append(tl.Groups, p.Name)
	}
	tl.Counts = make([][]int64, n)
	for i := range tl.Counts {
		tl.Counts[i] = make([]int64, len(tl.Groups))
	}
	others := -1
	if len(tl.Groups) > 0 && len(idx) < len(tl.Groups) {
		others = len(tl.Groups) - 1
	}
	err := r.src.EachSentBucket(ctx, r.id, tl.Origin, tl.Width, func(b store.SentBucket) error {
		g, ok := idx[b.Group]
		if !ok { // a provider folded in, or one that sent since the summary was read
			if others < 0 {
				others = len(tl.Groups)
				tl.Groups = append(tl.Groups, "others")
				for i := range tl.Counts {
					tl.Counts[i] = append(tl.Counts[i], 0)
				}
			}
			g = others
		}
		if b.Index < 0 || b.Index >= 2*maxBuckets {
			return nil
		}
		for b.Index >= len(tl.Counts) { // sent since the summary was read
			tl.Counts = append(tl.Counts, make([]int64, len(tl.Groups)))
		}
		tl.Counts[b.Index][g] += b.N
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tl, nil
}
