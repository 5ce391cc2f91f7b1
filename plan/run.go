package plan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

// Campaign states a run writes.
const (
	CampaignRunning     = "running"
	CampaignWaiting     = "waiting"     // between jobs, or retries not yet due
	CampaignDone        = "done"        // every recipient has a final state
	CampaignInterrupted = "interrupted" // stopped by a signal; resume it
	CampaignStopped     = "stopped"     // a fatal reply: fix the sender, then --resume-stopped
	CampaignPaused      = "paused"      // the bounce-rate guard stopped it: clean the list, then --resume-stopped
	CampaignExpired     = "expired"     // --not-after passed before a job could start
	CampaignError       = "error"       // the last run ended on an error (store, I/O); the next one retries
)

// RunOptions configure a run.
type RunOptions struct {
	Campaign string
	Resume   bool
	// ResumeStopped also resumes a campaign that a fatal reply or the
	// bounce guard stopped: someone has fixed the cause. --resume alone
	// (the cron line) refuses one, so cron does not undo the guard.
	ResumeStopped bool
	// Once does what is due now and returns (cron); otherwise the run
	// waits for each job's start and each retry until the campaign is done.
	Once bool

	Opener send.Opener
	Direct bool
	Signer *message.Signer
	Policy send.Policy
	// MaxBounceRate pauses the campaign when a job's hard bounces exceed
	// this share of its attempts (0.05: 5%).
	MaxBounceRate float64

	Holder string // who holds the lock, for people reading it
	Host   string
	PID    int
	Alive  func(pid int) bool
	// Heartbeat is how often the lock is renewed (30s if zero); another
	// run takes it over after 2 minutes without one.
	Heartbeat time.Duration

	Now    func() time.Time
	Events func(send.Event)
	// Wait is told each time the run waits, and until when.
	Wait func(what string, until time.Time)
	// Log is told of each change of a job's state.
	Log func(msg string)
}

func (o RunOptions) log(format string, args ...any) {
	if o.Log != nil {
		o.Log(fmt.Sprintf(format, args...))
	}
}

// RunSummary is how a run left the campaign.
type RunSummary struct {
	Campaign *store.Campaign
	Counts   store.Counts
	Resent   int64 // recipients a dead run left sending, sent again
	NextDue  time.Time
	Pauses   map[string]store.Pause
	Times    map[int][2]time.Time // each job's start and end
	// Idle: a --once run found nothing due. Counts are then left empty:
	// counting a large campaign's recipients is the one costly thing an
	// idle cron tick would do, and nothing has changed since the last.
	Idle bool
}

// ErrProgress refuses to start a campaign that has progress without
// --resume.
var ErrProgress = errors.New("has progress")

// StoppedError refuses to resume a campaign stopped by a fatal reply or
// the bounce guard without RunOptions.ResumeStopped.
type StoppedError struct {
	Campaign, State, Detail string
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("campaign %q is %s: %s; fix that, then resume it with --resume-stopped", e.Campaign, e.State, e.Detail)
}

// BounceError is the bounce-rate guard's stop.
type BounceError struct{ Msg string }

func (e *BounceError) Error() string { return e.Msg }

// Run executes a campaign's jobs in order, each not before its start and a
// gap after the previous one ended, then retries the deferred until every
// recipient is sent, bounced or failed. Progress is each recipient's state,
// written after the server's reply, and nothing else.
func Run(ctx context.Context, st *store.Store, opt RunOptions) (*RunSummary, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	c, jobs, groups, err := st.Campaign(ctx, opt.Campaign)
	if err != nil {
		return nil, err
	}
	if opt.ResumeStopped {
		opt.Resume = true
	}
	if (c.State == CampaignStopped || c.State == CampaignPaused) && !opt.ResumeStopped {
		return nil, &StoppedError{Campaign: c.Name, State: c.State, Detail: c.StateDetail}
	}
	if !opt.Resume {
		// Only a fresh start needs the counts (a full scan of the
		// campaign's recipients): an idle cron run stays cheap.
		counts, err := st.CampaignCounts(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		started := counts.Total[store.StateSent] + counts.Total[store.StateBounced] + counts.Total[store.StateDeferred] +
			counts.Total[store.StateFailed] + counts.Total[store.StateSending]
		if started > 0 {
			return nil, fmt.Errorf("campaign %q %w: %d sent, %d deferred, %d bounced, %d failed of %d; continue it with --resume",
				c.Name, ErrProgress, counts.Total[store.StateSent], counts.Total[store.StateDeferred], counts.Total[store.StateBounced],
				counts.Total[store.StateFailed], c.Recipients)
		}
	}
	lock, err := st.AcquireLock(ctx, c.ID, opt.Holder, opt.Host, opt.PID, 2*time.Minute, opt.Alive)
	if err != nil {
		return nil, fmt.Errorf("campaign %q: %w", c.Name, err)
	}
	defer lock.Release(context.WithoutCancel(ctx))
	// A run that stalled (a suspended process, a frozen VM) past the
	// lock's staleness may find another run holding the campaign when it
	// wakes: the heartbeat then stops it, and it leaves the campaign's
	// state to the run that took over.
	ctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	beatCtx, stopBeat := context.WithCancel(ctx)
	defer stopBeat()
	go func() {
		t := time.NewTicker(cmp.Or(opt.Heartbeat, 30*time.Second))
		defer t.Stop()
		for {
			select {
			case <-beatCtx.Done():
				return
			case <-t.C:
				if err := lock.Heartbeat(beatCtx); errors.Is(err, store.ErrLockLost) {
					opt.log("campaign %s: %v; stopping", c.Name, err)
					lost(err)
					return
				}
			}
		}
	}()

	r := &runner{st: st, opt: opt, c: c, jobs: jobs, limits: map[string]send.Limits{}}
	for _, g := range groups {
		r.limits[g.Group] = send.Limits{Connections: g.Connections, PerConnection: g.PerConnection, MaxAge: g.MaxConnectionAge, PerHour: g.PerHour}
	}
	sum := &RunSummary{Campaign: c}
	// Only a run that died leaves recipients sending, and only it leaves
	// the campaign running; any other end records every outcome first.
	if c.State == CampaignRunning {
		if sum.Resent, err = st.CountResent(ctx, c.ID); err != nil {
			return nil, err
		}
		c.PossibleDups += sum.Resent
	}
	spec, err := MessageSpec(ctx, st, c, opt.Signer)
	if err != nil {
		return nil, err
	}
	comp, err := message.NewComposer(spec, opt.Now)
	if err != nil {
		return nil, fmt.Errorf("campaign %s: %w", c.Name, err)
	}
	r.sender = &send.Runner{Store: runStore{st: st, c: c}, Opener: opt.Opener, Composer: comp, Policy: opt.Policy,
		Now: opt.Now, Events: opt.Events, Direct: opt.Direct}

	runErr := r.run(ctx)
	if cause := context.Cause(ctx); errors.Is(cause, store.ErrLockLost) {
		return nil, fmt.Errorf("campaign %q: %w", c.Name, cause)
	}
	// Whatever happened, say where the campaign stands.
	state, detail := CampaignWaiting, ""
	var fe *send.FatalError
	var be *BounceError
	var expired *expiredError
	switch {
	case runErr == nil && r.done:
		state = CampaignDone
	case errors.As(runErr, &expired):
		state, detail, runErr = CampaignExpired, expired.Error(), nil
		opt.log("campaign %s expired: %s", c.Name, detail)
	case errors.As(runErr, &fe):
		state, detail = CampaignStopped, fe.Error()
	case errors.As(runErr, &be):
		state, detail = CampaignPaused, be.Error()
	case runErr != nil && ctx.Err() != nil:
		state = CampaignInterrupted
	case runErr != nil:
		state, detail = CampaignError, runErr.Error()
	}
	wctx := context.WithoutCancel(ctx)
	if err := st.SetCampaignState(wctx, c.ID, state, detail); err != nil && runErr == nil {
		runErr = err
	}
	c.State, c.StateDetail = state, detail
	if r.idle && runErr == nil {
		sum.Idle, sum.NextDue = true, r.next
	} else {
		if sum.Counts, err = st.CampaignCounts(wctx, c.ID); err != nil && runErr == nil {
			runErr = err
		}
		sum.NextDue, _ = st.NextDue(wctx, c.ID)
	}
	sum.Pauses, _ = st.Pauses(wctx, c.ID)
	sum.Times, _ = st.JobTimes(wctx, c.ID)
	return sum, runErr
}

type expiredError struct {
	job             int
	start, notAfter time.Time
}

func (e *expiredError) Error() string {
	return fmt.Sprintf("job %d could not start by --not-after %s (it would start %s): not sent late",
		e.job, e.notAfter.Format(time.RFC3339), e.start.Format(time.RFC3339))
}

type runner struct {
	st     *store.Store
	opt    RunOptions
	c      *store.Campaign
	jobs   []store.Job
	limits map[string]send.Limits
	sender *send.Runner
	done   bool
	worked bool      // a job was run
	idle   bool      // --once found nothing due, and did nothing
	next   time.Time // and this is when something is
}

func (r *runner) run(ctx context.Context) error {
	if err := r.st.SetCampaignState(ctx, r.c.ID, CampaignRunning, ""); err != nil {
		return err
	}
	var prevEnd time.Time
	for _, j := range r.jobs {
		times, err := r.st.JobTimes(ctx, r.c.ID)
		if err != nil {
			return err
		}
		t := times[j.Seq]
		if !t[1].IsZero() {
			prevEnd = t[1]
			continue // finished; its deferred are retried below
		}
		start := j.NotBefore
		if !prevEnd.IsZero() && prevEnd.Add(r.c.Gap).After(start) {
			start = prevEnd.Add(r.c.Gap)
		}
		if t[0].IsZero() {
			// The job starts at its time, or now if that has passed: after
			// an outage it must not go out late.
			if now := r.opt.Now(); now.After(start) {
				start = now
			}
			if !r.c.NotAfter.IsZero() && start.After(r.c.NotAfter) {
				return &expiredError{job: j.Seq, start: start, notAfter: r.c.NotAfter}
			}
			if now := r.opt.Now(); start.After(now) {
				if r.opt.Once {
					r.nothingDue(fmt.Sprintf("job %d", j.Seq), start)
					return nil
				}
				if !r.wait(ctx, fmt.Sprintf("job %d", j.Seq), start) {
					return ctx.Err()
				}
			}
			if err := r.st.SetJobState(ctx, r.c.ID, j.Seq, "running", r.opt.Now(), time.Time{}); err != nil {
				return err
			}
		}
		if err := r.runJob(ctx, j.Seq); err != nil {
			return err
		}
		end := r.opt.Now()
		if err := r.st.SetJobState(ctx, r.c.ID, j.Seq, "done", time.Time{}, end); err != nil {
			return err
		}
		prevEnd = end
	}
	// Every job has had its first pass: retry the deferred as they fall due.
	for {
		next, err := r.st.NextDue(ctx, r.c.ID)
		if err != nil {
			return err
		}
		if next.IsZero() {
			counts, err := r.st.CampaignCounts(ctx, r.c.ID)
			if err != nil {
				return err
			}
			r.done = counts.Total[store.StatePending]+counts.Total[store.StateSending]+counts.Total[store.StateDeferred] == 0
			return nil
		}
		if next.After(r.opt.Now()) {
			if r.opt.Once {
				r.nothingDue("retries", next)
				return nil
			}
			if !r.wait(ctx, "retries", next) {
				return ctx.Err()
			}
		}
		for _, j := range r.jobs {
			if err := r.runJob(ctx, j.Seq); err != nil {
				return err
			}
		}
	}
}

// nothingDue is --once's line when it stops short of what is next: cron
// sees when the next run will have work.
func (r *runner) nothingDue(what string, next time.Time) {
	r.idle, r.next = !r.worked, next
	r.opt.log("nothing due; next at %s (%s)", next.UTC().Format(time.RFC3339), what)
}

func (r *runner) wait(ctx context.Context, what string, until time.Time) bool {
	if r.opt.Wait != nil {
		r.opt.Wait(what, until)
	}
	return send.Sleep(ctx, time.Until(until))
}

// chunk is how many recipients a run holds in memory at once: a job is
// sent a chunk at a time, so memory does not grow with the job.
const chunk = 2000

// runJob delivers what of job seq is due now, a chunk at a time.
func (r *runner) runJob(ctx context.Context, seq int) error {
	r.worked = true
	// The chunks share their upstream connections; the job's gap does not.
	defer r.sender.CloseIdle()
	var total send.JobReport
	total.BouncesByDomain = map[string]int{}
	due, suppressed := 0, 0
	// An address or domain suppressed since the plan (a bounce in an
	// earlier job, an unsubscribe, suppress add) is not sent to.
	supp, err := listclean.LoadSuppressions(ctx, r.st)
	if err != nil {
		return err
	}
	defer func() {
		if suppressed > 0 {
			r.opt.log("job %d: %d recipients not sent, suppressed since the plan", seq, suppressed)
		}
	}()
	// The next chunk is read while this one is sent.
	loads := make(chan loaded, 1)
	pending := false
	load := func(cur store.Cursor) {
		pending = true
		go func() { loads <- r.load(ctx, seq, cur, supp) }()
	}
	defer func() {
		if pending {
			<-loads
		}
	}()
	load(store.Start)
	for {
		c := <-loads
		pending = false
		ds, recips, drop, err := c.due, c.recips, c.drop, c.err
		if err != nil || len(ds) == 0 {
			if err == nil && due > 0 {
				r.logJob(seq, total)
			}
			return err
		}
		if len(ds) == chunk {
			load(c.next)
		}
		if due == 0 {
			n, err := r.st.CountDue(ctx, r.c.ID, seq, r.opt.Now())
			if err != nil {
				return err
			}
			r.opt.log("job %d: %d due", seq, max(n, len(ds)))
		}
		due += len(ds)
		if len(drop) > 0 {
			if err := r.st.Apply(ctx, r.c.Name, drop); err != nil {
				return err
			}
			suppressed += len(drop)
		}
		pauses, err := r.st.Pauses(ctx, r.c.ID)
		if err != nil {
			return err
		}
		sp := map[string]send.Pause{}
		for g, p := range pauses {
			sp[g] = send.Pause{Group: g, Until: p.Until, Cooldown: p.Cooldown, Reason: p.Reason}
		}
		def := send.Limits{Connections: r.c.Conns, PerConnection: 100}
		rep, err := r.sender.RunJob(ctx, send.Job{Seq: seq, Recipients: recips, Limits: r.limits, Default: def,
			Connections: r.c.Conns, Pauses: sp})
		total.Add(rep)
		if err != nil {
			r.logJob(seq, total)
			return err
		}
		if n := total.Attempted(); n > 0 && r.opt.MaxBounceRate > 0 && float64(total.HardBounces)/float64(n) > r.opt.MaxBounceRate {
			r.logJob(seq, total)
			return &BounceError{Msg: fmt.Sprintf("job %d: %d of %d attempts hard-bounced (%.1f%%, over --max-bounce-rate %.1f%%); worst domains: %s; clean the list, then resume",
				seq, total.HardBounces, n, 100*float64(total.HardBounces)/float64(n), 100*r.opt.MaxBounceRate, worst(total.BouncesByDomain, 5))}
		}
		if len(ds) < chunk {
			r.logJob(seq, total)
			return nil
		}
	}
}

// loaded is a chunk of a job read from the store: the recipients to
// send, and the updates for those suppressed since the plan.
type loaded struct {
	due    []store.Due
	recips []send.Recipient
	drop   []store.Update
	next   store.Cursor
	err    error
}

// load reads the chunk of job seq after cur.
func (r *runner) load(ctx context.Context, seq int, cur store.Cursor, supp *listclean.Suppressions) loaded {
	ds, next, err := r.st.DueRecipients(ctx, r.c.ID, seq, r.opt.Now(), cur, chunk)
	if err != nil {
		return loaded{err: err}
	}
	c := loaded{due: ds, next: next, recips: make([]send.Recipient, 0, len(ds))}
	for _, d := range ds {
		local := d.Email[:max(0, strings.LastIndexByte(d.Email, '@'))]
		if why, ok := supp.Match(listclean.Address{Local: local, Domain: d.Domain}); ok {
			c.drop = append(c.drop, store.Update{ID: d.ID, State: store.StateSuppressed, Reply: why})
			continue
		}
		v, err := Values(store.Recipient{Row: d.Row, Fields: d.Fields})
		if err != nil {
			return loaded{err: err}
		}
		c.recips = append(c.recips, send.Recipient{ID: d.ID, Email: d.Email, Domain: d.Domain, Group: d.Group, Values: v,
			Attempts: d.Attempts, FirstAttempt: d.FirstAttemptAt})
	}
	return c
}

func (r *runner) logJob(seq int, rep send.JobReport) {
	r.opt.log("job %d: %d sent, %d deferred, %d bounced, %d failed over %d connections", seq, rep.Sent, rep.Deferred, rep.Bounced, rep.Failed, rep.Connections)
	for _, p := range rep.Paused {
		r.opt.log("provider %s paused until %s: %s", p.Group, p.Until.Format(time.RFC3339), p.Reason)
	}
}

func worst(m map[string]int, most int) string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(a, b kv) int {
		if a.v != b.v {
			return b.v - a.v
		}
		return strings.Compare(a.k, b.k)
	})
	var parts []string
	for i, x := range l {
		if i == most {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", x.k, x.v))
	}
	return strings.Join(parts, ", ")
}

// runStore adapts the store to what send needs.
type runStore struct {
	st *store.Store
	c  *store.Campaign
}

func (s runStore) Apply(ctx context.Context, us []send.Update) error {
	out := make([]store.Update, len(us))
	for i, u := range us {
		out[i] = store.Update{ID: u.ID, State: u.State, Reply: u.Reply, NextAttempt: u.NextAttempt, Attempted: u.Attempted,
			Suppress: u.Suppress, Email: u.Email, Reason: u.Reply}
	}
	return s.st.Apply(ctx, s.c.Name, out)
}

func (s runStore) Pause(ctx context.Context, p send.Pause) error {
	return s.st.PauseGroup(ctx, s.c.ID, store.Pause{Group: p.Group, Until: p.Until, Cooldown: p.Cooldown, Reason: p.Reason})
}

// MXResolver lets direct delivery ask the same DNS server as clean.
type MXResolver struct{ R *listclean.Resolver }

// LookupMX implements send.Resolver.
func (m MXResolver) LookupMX(ctx context.Context, domain string) ([]send.MX, bool, bool, error) {
	d := m.R.CheckDomain(ctx, domain)
	switch d.Verdict {
	case listclean.DomainNullMX:
		return nil, false, true, nil
	case listclean.DomainOK:
		if len(d.MX) == 0 {
			return nil, true, false, nil
		}
		out := make([]send.MX, len(d.MX))
		for i, h := range d.MX {
			out[i] = send.MX{Host: h, Pref: d.Prefs[i]}
		}
		return out, false, false, nil
	}
	return nil, false, false, fmt.Errorf("%s: %s", d.Verdict, d.Detail)
}

// LookupAddrs implements send.Resolver.
func (m MXResolver) LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	return m.R.Addrs(ctx, host)
}

// ChoiceError says why no campaign could be picked for the caller.
type ChoiceError struct{ Msg string }

func (e *ChoiceError) Error() string { return e.Msg }

// CampaignLister lists campaigns, newest first.
type CampaignLister interface {
	Campaigns(ctx context.Context) ([]*store.Campaign, error)
}

// Pick names the campaign a command acts on when none is named: the one
// not done or expired ("relayctl run --resume" from cron); with newest,
// the newest campaign when every one is finished (status).
func Pick(ctx context.Context, st CampaignLister, newest bool) (string, error) {
	cs, err := st.Campaigns(ctx)
	if err != nil {
		return "", err
	}
	var open []string
	for _, c := range cs {
		if c.State != CampaignDone && c.State != CampaignExpired {
			open = append(open, c.Name)
		}
	}
	switch {
	case len(open) == 1:
		return open[0], nil
	case len(open) > 1:
		return "", &ChoiceError{Msg: fmt.Sprintf("%d unfinished campaigns (%s): name one", len(open), strings.Join(open, ", "))}
	case newest && len(cs) > 0:
		return cs[0].Name, nil
	}
	return "", &ChoiceError{Msg: "no unfinished campaign (relayctl plans lists them)"}
}
