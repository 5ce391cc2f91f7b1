// Package report builds a campaign's delivery report from the store: what
// each provider and each job sent, deferred, bounced and failed, how long
// it took and how fast it went, the bounce list, and every recipient's
// outcome; and renders it as tables for people, CSV and JSON for scripts,
// or one self-contained HTML page with charts.
//
// The summary is a few rows per provider and job, counted by SQLite; the
// bounces and recipients are streamed from the store as they are written,
// so the memory a report takes does not grow with the campaign's size.
package report

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relayctl/relayctl/store"
)

// Source is what a report reads from the database.
type Source interface {
	Campaign(ctx context.Context, name string) (*store.Campaign, []store.Job, []store.GroupLimits, error)
	JobTimes(ctx context.Context, campaignID int64) (map[int][2]time.Time, error)
	Tallies(ctx context.Context, campaignID int64, by store.TallyBy) ([]store.Tally, error)
	EachSentBucket(ctx context.Context, campaignID int64, origin time.Time, width time.Duration, fn func(store.SentBucket) error) error
	EachDelivery(ctx context.Context, campaignID int64, state string, fn func(store.Delivery) error) error
	BounceWidths(ctx context.Context, campaignID int64) (email, reply int, err error)
}

// Format is how a report is written.
type Format string

// The formats; their names are a public interface (--format).
const (
	Table Format = "table" // summary tables and the bounce list, for people
	CSV   Format = "csv"   // one row per recipient
	JSON  Format = "json"  // one object: summary, bounces, recipients
	HTML  Format = "html"  // one self-contained page with charts
)

// Formats lists every format.
var Formats = []Format{Table, CSV, JSON, HTML}

// ParseFormat checks a format's name.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Formats, f) {
		return f, nil
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown report format %q (want %s)", s, strings.Join(names, ", "))
}

// Tally is the outcome of a set of recipients: a provider's, a job's, or
// the whole campaign's.
type Tally struct {
	Recipients int64
	Pending    int64
	Sending    int64 // left sending by a run that died; sent again on --resume
	Sent       int64
	Deferred   int64
	Bounced    int64
	Failed     int64
	Suppressed int64
	Attempts   int64
	// First is the first attempt, Last the last change of state (zero if
	// nothing was attempted yet).
	First, Last time.Time
	// Duration is the time the deliveries took: for a provider or the
	// campaign, from First to Last; for a job, its run from start to end.
	Duration time.Duration
}

// add counts one store tally in.
func (t *Tally) add(s store.Tally) {
	t.Recipients += s.N
	t.Attempts += s.Attempts
	switch s.State {
	case store.StatePending:
		t.Pending += s.N
	case store.StateSending:
		t.Sending += s.N
	case store.StateSent:
		t.Sent += s.N
	case store.StateDeferred:
		t.Deferred += s.N
	case store.StateBounced:
		t.Bounced += s.N
	case store.StateFailed:
		t.Failed += s.N
	case store.StateSuppressed:
		t.Suppressed += s.N
	}
	for _, first := range []time.Time{s.FirstAttempt, s.FirstUpdate} {
		if !first.IsZero() && (t.First.IsZero() || first.Before(t.First)) {
			t.First = first
		}
	}
	if s.LastUpdate.After(t.Last) {
		t.Last = s.LastUpdate
	}
	if !t.First.IsZero() {
		t.Duration = t.Last.Sub(t.First)
	}
}

// merge adds another tally's counts and span.
func (t *Tally) merge(o Tally) {
	t.Recipients += o.Recipients
	t.Pending += o.Pending
	t.Sending += o.Sending
	t.Sent += o.Sent
	t.Deferred += o.Deferred
	t.Bounced += o.Bounced
	t.Failed += o.Failed
	t.Suppressed += o.Suppressed
	t.Attempts += o.Attempts
	if !o.First.IsZero() && (t.First.IsZero() || o.First.Before(t.First)) {
		t.First = o.First
	}
	if o.Last.After(t.Last) {
		t.Last = o.Last
	}
	if !t.First.IsZero() {
		t.Duration = t.Last.Sub(t.First)
	}
}

// Unfinished counts the recipients without a final outcome yet: pending,
// and left sending by a run that died.
func (t Tally) Unfinished() int64 { return t.Pending + t.Sending }

// RatePerMinute is the messages sent per minute of Duration. Times are
// recorded to the second, so a duration under one counts as one.
func (t Tally) RatePerMinute() float64 {
	if t.Sent == 0 {
		return 0
	}
	return float64(t.Sent) / max(t.Duration, time.Second).Minutes()
}

// Provider is one provider's (group's) tally.
type Provider struct {
	Name string
	Tally
}

// Job is one job's schedule and tally.
type Job struct {
	Seq       int
	State     string // pending, running, done
	NotBefore time.Time
	Started   time.Time // zero if not yet
	Finished  time.Time // zero if not yet
	Tally
}

// RatePerMinute is the messages the job sent per minute of its run; 0
// before it started.
func (j Job) RatePerMinute() float64 {
	if j.Started.IsZero() {
		return 0
	}
	return j.Tally.RatePerMinute()
}

// Report is a campaign's delivery report: the summary, read when it is
// loaded, and the way back to the store for the bounces and recipients,
// which are streamed as they are rendered.
type Report struct {
	Campaign  string
	State     string
	Detail    string
	Generated time.Time
	Total     Tally
	Providers []Provider // most recipients first
	Jobs      []Job      // in order

	src Source
	id  int64
	// sentFirst and sentLast span the sent recipients' last changes: the
	// timeline's.
	sentFirst, sentLast time.Time
}

// Load reads the summary of the named campaign. A campaign that does not
// exist is store.ErrNotFound, as the store said it.
func Load(ctx context.Context, src Source, name string, now time.Time) (*Report, error) {
	c, jobs, _, err := src.Campaign(ctx, name)
	if err != nil {
		return nil, err
	}
	r := &Report{Campaign: c.Name, State: c.State, Detail: c.StateDetail, Generated: now, src: src, id: c.ID}
	byGroup, err := src.Tallies(ctx, c.ID, store.ByGroup)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", name, err)
	}
	idx := map[string]int{}
	for _, t := range byGroup {
		i, ok := idx[t.Group]
		if !ok {
			i = len(r.Providers)
			idx[t.Group] = i
			r.Providers = append(r.Providers, Provider{Name: t.Group})
		}
		r.Providers[i].add(t)
		r.Total.add(t)
		if t.State == store.StateSent && !t.FirstUpdate.IsZero() {
			if r.sentFirst.IsZero() || t.FirstUpdate.Before(r.sentFirst) {
				r.sentFirst = t.FirstUpdate
			}
			if t.LastUpdate.After(r.sentLast) {
				r.sentLast = t.LastUpdate
			}
		}
	}
	slices.SortStableFunc(r.Providers, func(a, b Provider) int {
		return cmp.Or(cmp.Compare(b.Recipients, a.Recipients), strings.Compare(a.Name, b.Name))
	})
	byJob, err := src.Tallies(ctx, c.ID, store.ByJob)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", name, err)
	}
	times, err := src.JobTimes(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", name, err)
	}
	jobAt := map[int]int{}
	for _, j := range jobs {
		jobAt[j.Seq] = len(r.Jobs)
		r.Jobs = append(r.Jobs, Job{Seq: j.Seq, NotBefore: j.NotBefore, Started: times[j.Seq][0], Finished: times[j.Seq][1]})
	}
	for _, t := range byJob {
		i, ok := jobAt[t.Job]
		if !ok { // a recipient of a job the plan does not list: never, but keep it counted
			i = len(r.Jobs)
			jobAt[t.Job] = i
			r.Jobs = append(r.Jobs, Job{Seq: t.Job})
		}
		r.Jobs[i].add(t)
	}
	slices.SortFunc(r.Jobs, func(a, b Job) int { return a.Seq - b.Seq })
	for i := range r.Jobs {
		j := &r.Jobs[i]
		switch {
		case !j.Finished.IsZero():
			j.State = "done"
			if !j.Started.IsZero() {
				j.Duration = j.Finished.Sub(j.Started)
			}
		case !j.Started.IsZero():
			j.State = "running"
			j.Duration = max(now.Sub(j.Started), 0)
		default:
			j.State, j.Duration = "pending", 0
		}
	}
	return r, nil
}

// Render writes the report in format f.
func (r *Report) Render(ctx context.Context, w io.Writer, f Format) error {
	var err error
	switch f {
	case Table:
		err = r.renderTable(ctx, w)
	case CSV:
		err = r.renderCSV(ctx, w)
	case JSON:
		err = r.renderJSON(ctx, w)
	case HTML:
		err = r.renderHTML(ctx, w)
	default:
		_, err = ParseFormat(string(f))
	}
	if err != nil {
		return fmt.Errorf("report %s: %w", r.Campaign, err)
	}
	return nil
}

// folded returns the providers for a view people read: the n-1 biggest
// and the rest summed as "others (K)", when there are more than n.
func (r *Report) folded(n int) []Provider {
	if len(r.Providers) <= n {
		return r.Providers
	}
	out := slices.Clone(r.Providers[:n-1])
	rest := Provider{Name: "others (" + strconv.Itoa(len(r.Providers)-n+1) + ")"}
	for _, p := range r.Providers[n-1:] {
		rest.merge(p.Tally)
	}
	return append(out, rest)
}

// Reply is a server's reply split into its parts: "550 5.1.1 No such
// user" is code 550, enhanced code 5.1.1, text "No such user". A reply
// that is not one (a dropped connection) has only text.
type Reply struct {
	Code     int
	Enhanced string
	Text     string
}

// ParseReply splits a recorded reply.
func ParseReply(s string) Reply {
	s = strings.TrimSpace(s)
	if len(s) < 3 || s[0] < '2' || s[0] > '5' || !isDigit(s[1]) || !isDigit(s[2]) || len(s) > 3 && s[3] != ' ' && s[3] != '-' {
		return Reply{Text: s}
	}
	rep := Reply{Code: int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')}
	rest := strings.TrimSpace(s[min(len(s), 4):])
	tok, after, _ := strings.Cut(rest, " ")
	if isEnhanced(tok, s[0]) {
		rep.Enhanced, rest = tok, strings.TrimSpace(after)
	}
	rep.Text = rest
	return rep
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// isEnhanced reports whether tok is an RFC 3463 status code of class c:
// c.subject.detail, subject and detail up to three digits.
func isEnhanced(tok string, c byte) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || parts[0][0] != c {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for i := range len(p) {
			if !isDigit(p[i]) {
				return false
			}
		}
	}
	return true
}

// Bounce is a bounced recipient with the server's reply, parsed.
type Bounce struct {
	store.Delivery
	Parsed Reply
}

// eachBounce streams the bounced recipients in sending order.
func (r *Report) eachBounce(ctx context.Context, fn func(Bounce) error) error {
	return r.src.EachDelivery(ctx, r.id, store.StateBounced, func(d store.Delivery) error {
		return fn(Bounce{Delivery: d, Parsed: ParseReply(d.Reply)})
	})
}
