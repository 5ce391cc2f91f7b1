package send

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relayctl/relayctl/message"
)

// Recipient states a run writes (the store's names).
const (
	StatePending  = "pending"
	StateSending  = "sending"
	StateSent     = "sent"
	StateDeferred = "deferred"
	StateBounced  = "bounced"
	StateFailed   = "failed"
)

// Recipient is one due delivery.
type Recipient struct {
	ID           int64
	Email        string
	Domain       string
	Group        string
	Values       map[string]string
	Attempts     int
	FirstAttempt time.Time // zero before the first attempt
}

// Update changes one recipient's state.
type Update struct {
	ID          int64
	State       string
	Reply       string
	NextAttempt time.Time
	Attempted   bool
	Suppress    bool // a hard bounce: the address goes on the suppression list
	Email       string
}

// Limits shape the traffic to one group.
type Limits struct {
	Connections   int
	PerConnection int
	MaxAge        time.Duration // of one connection
	PerHour       int           // 0: none
}

// Pause is a group resting after it throttled the sender.
type Pause struct {
	Group    string
	Until    time.Time
	Cooldown time.Duration
	Reason   string
}

// Store is what a run needs from the database.
type Store interface {
	// Apply records updates durably, as one commit.
	Apply(ctx context.Context, updates []Update) error
	// Pause records a group's pause.
	Pause(ctx context.Context, p Pause) error
}

// Opener opens sessions (a *Dialer, or a test's).
type Opener interface {
	Open(ctx context.Context, domain string) (*Session, error)
}

// Composer renders a recipient's message (a *message.Composer).
type Composer interface {
	Compose(w io.Writer, r message.Recipient) (message.Envelope, error)
}

// Policy is how a run treats failures.
type Policy struct {
	// Retry is the backoff schedule: the wait after the first, second...
	// failed attempt; the last entry repeats.
	Retry []time.Duration
	// MaxAge: a recipient still failing this long after its first attempt
	// has failed for good.
	MaxAge time.Duration
	// Cooldown is a throttled group's first pause; it doubles each time.
	Cooldown time.Duration
}

// DefaultPolicy: 5m, 10m, 20m, 40m, then hourly; give up after 48 hours;
// pause a throttling provider 30 minutes, doubling.
var DefaultPolicy = Policy{
	Retry:    []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour},
	MaxAge:   48 * time.Hour,
	Cooldown: 30 * time.Minute,
}

// Event is something a run reports as it happens.
type Event struct {
	Kind      string // "sent", "deferred", "bounced", "failed", "paused", "connect-failed"
	ID        int64  // the recipient's (Recipient.ID); 0 for a group's events
	Email     string
	Group     string
	Reply     string
	Suppress  bool
	PausedFor time.Duration
}

// Job is one job's deliveries and the limits to send them under.
type Job struct {
	Seq         int
	Recipients  []Recipient // due, in sending order
	Limits      map[string]Limits
	Default     Limits // for a group without limits of its own
	Connections int    // in total
	Pauses      map[string]Pause
}

// Runner runs jobs.
type Runner struct {
	Store    Store
	Opener   Opener
	Composer Composer
	Policy   Policy
	Now      func() time.Time
	// Events, if set, is called for each event, from several goroutines.
	Events func(Event)
	// Direct: sessions go to each domain's MX hosts, so one serves one
	// domain; with an upstream a session serves any domain.
	Direct bool

	paceMu sync.Mutex
	pace   map[string]time.Time // each group's next free slot, across jobs

	idleMu sync.Mutex
	idle   []*Session // upstream sessions between one chunk and the next
}

// park keeps an upstream session open for the next RunJob.
func (r *Runner) park(s *Session) {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	r.idle = append(r.idle, s)
}

// unpark returns a parked session, or nil.
func (r *Runner) unpark() *Session {
	r.idleMu.Lock()
	defer r.idleMu.Unlock()
	if len(r.idle) == 0 {
		return nil
	}
	s := r.idle[len(r.idle)-1]
	r.idle = r.idle[:len(r.idle)-1]
	return s
}

// CloseIdle closes, politely, the sessions kept open between the chunks
// of a job: a job sent in several RunJob calls uses its connections
// throughout, as if sent in one. Call it when a job ends.
func (r *Runner) CloseIdle() {
	r.idleMu.Lock()
	idle := r.idle
	r.idle = nil
	r.idleMu.Unlock()
	for _, s := range idle {
		s.Close()
	}
}

// slot returns when group's next message may go, spacing them evenly by
// its hourly rate (no bursts), across every job and chunk of the run.
func (r *Runner) slot(group string, perHour int, now time.Time) time.Time {
	if perHour <= 0 {
		return now
	}
	r.paceMu.Lock()
	defer r.paceMu.Unlock()
	if r.pace == nil {
		r.pace = map[string]time.Time{}
	}
	at := now
	if next := r.pace[group]; next.After(now) {
		at = next
	}
	r.pace[group] = at.Add(time.Hour / time.Duration(perHour))
	return at
}

// JobReport is what a job did.
type JobReport struct {
	Sent, Deferred, Bounced, Failed int
	HardBounces                     int
	BouncesByDomain                 map[string]int
	Paused                          []Pause
	Connections                     int
}

// Attempted is how many deliveries got a verdict.
func (r JobReport) Attempted() int { return r.Sent + r.Deferred + r.Bounced + r.Failed }

// Add adds o's counts to r.
func (r *JobReport) Add(o JobReport) {
	r.Sent += o.Sent
	r.Deferred += o.Deferred
	r.Bounced += o.Bounced
	r.Failed += o.Failed
	r.HardBounces += o.HardBounces
	r.Connections += o.Connections
	r.Paused = append(r.Paused, o.Paused...)
	if r.BouncesByDomain == nil {
		r.BouncesByDomain = map[string]int{}
	}
	for d, n := range o.BouncesByDomain {
		r.BouncesByDomain[d] += n
	}
}

// RunJob delivers the job's recipients, each group over at most its
// connection limit and the job over at most its total, each connection
// carrying at most the group's messages per connection, paced to the
// group's hourly rate. It returns a *FatalError when the sender itself is
// misconfigured (the run must stop) and ctx's error when cancelled; either
// way every recipient's state is recorded as far as it got.
func (r *Runner) RunJob(ctx context.Context, job Job) (JobReport, error) {
	if r.Now == nil {
		r.Now = time.Now
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rec := newRecorder(r.Store)
	defer rec.close()

	st := &jobState{r: r, rec: rec, cancel: cancel, report: JobReport{BouncesByDomain: map[string]int{}},
		sem: make(chan struct{}, max(1, job.Connections)), groups: map[string]*group{}}
	var order []string
	queues := map[string]*queue{}
	shared := &queue{}
	for _, rc := range job.Recipients {
		g := st.groups[rc.Group]
		if g == nil {
			l, ok := job.Limits[rc.Group]
			if !ok {
				l = job.Default
			}
			g = &group{name: rc.Group, limits: l, pause: job.Pauses[rc.Group]}
			g.paused = g.pause.Until.After(r.Now())
			st.groups[rc.Group] = g
			queues[rc.Group] = &queue{}
			order = append(order, rc.Group)
		}
		queues[rc.Group].items = append(queues[rc.Group].items, rc)
		shared.items = append(shared.items, rc)
	}
	for name, g := range st.groups {
		n := max(1, g.limits.Connections)
		if r.Direct {
			// A group's connections are its own: it needs no more of them
			// than its recipients fill, so a small domain gets its mail
			// one message at a time.
			perConn := max(1, g.limits.PerConnection)
			n = min(n, (len(queues[name].items)+perConn-1)/perConn)
		}
		// With an upstream the connections are shared and this caps the
		// group's deliveries under way at once.
		g.inflight = make(chan struct{}, n)
	}
	var wg sync.WaitGroup
	if r.Direct {
		// A session serves one domain's MX hosts: each group has its own
		// queue and connections.
		for _, name := range order {
			g, q := st.groups[name], queues[name]
			if g.paused {
				continue
			}
			for range cap(g.inflight) {
				wg.Go(func() { st.work(ctx, q) })
			}
		}
	} else {
		// An upstream takes any domain on any session: the connections
		// share one queue in sending order, each group held to its own
		// number of deliveries at once.
		queues = map[string]*queue{"": shared}
		for range min(max(1, job.Connections), len(shared.items)) {
			wg.Go(func() { st.work(ctx, shared) })
		}
	}
	wg.Wait()
	// A paused group's untouched recipients wait for the pause's end.
	for _, g := range st.groups {
		if !g.pause.Until.After(r.Now()) {
			continue
		}
		var wait []Recipient
		for _, q := range queues {
			q.mu.Lock()
			rest := q.items[:0:0]
			for _, rc := range q.items {
				if rc.Group == g.name {
					wait = append(wait, rc)
				} else {
					rest = append(rest, rc)
				}
			}
			q.items = rest
			q.mu.Unlock()
		}
		for _, rc := range append(g.skipped, wait...) {
			if err := rec.do(context.WithoutCancel(ctx), Update{ID: rc.ID, State: StateDeferred, NextAttempt: g.pause.Until}); err != nil {
				cancel(err)
			}
		}
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return st.report, cause
	}
	return st.report, ctx.Err()
}

// group is one provider's (or domain's) share of a job: its limits and
// whether it is paused.
type group struct {
	name     string
	limits   Limits
	inflight chan struct{} // deliveries under way, at most its connections
	mu       sync.Mutex
	paused   bool
	pause    Pause
	skipped  []Recipient // taken from a shared queue while paused
}

func (g *group) isPaused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

func (g *group) skip(rc Recipient) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.skipped = append(g.skipped, rc)
}

// queue is recipients in sending order, taken by connections.
type queue struct {
	mu    sync.Mutex
	items []Recipient
}

func (q *queue) take() (Recipient, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return Recipient{}, false
	}
	r := q.items[0]
	q.items = q.items[1:]
	return r, true
}

// putBack returns a recipient to the front of the queue.
func (q *queue) putBack(r Recipient) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append([]Recipient{r}, q.items...)
}

type jobState struct {
	groups map[string]*group
	r      *Runner
	rec    *recorder
	cancel context.CancelCauseFunc
	sem    chan struct{}
	mu     sync.Mutex
	report JobReport
	// unreachable holds the destinations (a domain, or "" for the
	// upstream) this job failed to connect to, how, and until when: for
	// deadFor, their other recipients are deferred without a connection
	// attempt each, as a mail server marks a dead destination, instead of
	// every one of them waiting out its own connect timeout.
	unreachable map[string]deadDestination
}

type deadDestination struct {
	o     Outcome
	until time.Time
}

// deadFor is how long a destination that failed to connect is left alone
// within a job; then one connection tries again.
const deadFor = time.Minute

// destination is the key of rc's connections: its domain, or "" when an
// upstream takes every domain.
func (st *jobState) destination(rc Recipient) string {
	if st.r.Direct {
		return rc.Domain
	}
	return ""
}

func (st *jobState) deadOutcome(rc Recipient) (Outcome, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	d, ok := st.unreachable[st.destination(rc)]
	return d.o, ok && st.r.Now().Before(d.until)
}

// work is one connection's loop: take a recipient, deliver it, until the
// queue is empty or the group is paused.
func (st *jobState) work(ctx context.Context, q *queue) {
	st.rec.active.Add(1)
	defer st.rec.active.Add(-1)
	l := &ledger{st: st}
	defer l.flush(context.WithoutCancel(ctx))
	var sess *Session
	var sessDomain string
	closeSess := func(polite bool) {
		if sess == nil {
			return
		}
		if polite {
			sess.Close()
		} else {
			sess.Abort()
		}
		sess = nil
		<-st.sem
	}
	defer func() {
		// A healthy upstream session waits for the job's next chunk.
		if sess != nil && ctx.Err() == nil && !st.r.Direct {
			st.r.park(sess)
			sess = nil
			<-st.sem
			return
		}
		closeSess(true)
	}()
	for ctx.Err() == nil {
		rc, ok := q.take()
		if !ok {
			return
		}
		g := st.groups[rc.Group]
		if g.isPaused() {
			if st.r.Direct {
				q.putBack(rc) // the whole queue is this group's: it waits
				return
			}
			g.skip(rc)
			continue
		}
		if at := st.r.slot(g.name, g.limits.PerHour, st.r.Now()); at.After(st.r.Now()) {
			l.flush(ctx) // nothing waits unrecorded while we pace
			if !Sleep(ctx, at.Sub(st.r.Now())) {
				q.putBack(rc)
				return
			}
		}
		if !st.r.Direct {
			select {
			case g.inflight <- struct{}{}:
			case <-ctx.Done():
				q.putBack(rc)
				return
			}
			if g.isPaused() { // paused while we waited our turn
				g.release(false)
				g.skip(rc)
				continue
			}
		}
		if sess != nil && (sess.Messages >= max(1, g.limits.PerConnection) ||
			g.limits.MaxAge > 0 && time.Since(sess.Opened) >= g.limits.MaxAge ||
			st.r.Direct && rc.Domain != sessDomain) {
			closeSess(true)
		}
		if sess == nil {
			if o, dead := st.deadOutcome(rc); dead {
				l.add(st.outcome(g, rc, o, false))
				g.release(st.r.Direct)
				continue
			}
			l.flush(ctx) // nothing waits unrecorded while a connection opens
			select {
			case st.sem <- struct{}{}:
			case <-ctx.Done():
				g.release(st.r.Direct)
				q.putBack(rc)
				return
			}
			if s := st.r.unpark(); s != nil {
				if s.Messages < max(1, g.limits.PerConnection) && (g.limits.MaxAge <= 0 || time.Since(s.Opened) < g.limits.MaxAge) {
					sess, sessDomain = s, rc.Domain
				} else {
					s.Close()
				}
			}
		}
		if sess == nil {
			s, err := st.r.Opener.Open(ctx, rc.Domain)
			if err != nil {
				<-st.sem
				if ctx.Err() != nil {
					// The run is stopping: the failure is ours, not the
					// server's, and the recipient waits untouched.
					g.release(st.r.Direct)
					q.putBack(rc)
					return
				}
				o := Classify(err)
				if o.Kind == Deferred {
					st.mu.Lock()
					if st.unreachable == nil {
						st.unreachable = map[string]deadDestination{}
					}
					dead := o
					dead.Text = "not tried: an earlier connection failed: " + o.Text
					if o.Code != 0 {
						dead.Text = "not tried: an earlier connection was refused: " + o.Reply()
						dead.Code, dead.Enhanced = 0, ""
					}
					st.unreachable[st.destination(rc)] = deadDestination{dead, st.r.Now().Add(deadFor)}
					st.mu.Unlock()
				}
				l.add(st.outcome(g, rc, o, true))
				g.release(st.r.Direct)
				continue
			}
			sess, sessDomain = s, rc.Domain
			st.mu.Lock()
			st.report.Connections++
			st.mu.Unlock()
		}
		err := st.deliver(ctx, l, g, sess, rc)
		g.release(st.r.Direct)
		if err != nil {
			closeSess(false)
		}
	}
}

// release ends a delivery counted against the group's connections.
func (g *group) release(direct bool) {
	if !direct {
		<-g.inflight
	}
}

// ledger holds one connection's outcomes until its next write: the
// previous message's outcome and the next one's "sending" mark go to the
// store in one commit.
type ledger struct {
	st  *jobState
	buf bytes.Buffer // the message being sent, reused
	ups []Update
	evs []Event
}

func (l *ledger) add(u Update, ev Event) {
	l.ups = append(l.ups, u)
	if ev.Kind != "" {
		l.evs = append(l.evs, ev)
	}
}

// flush records what the ledger holds, and more, durably; then reports
// the events.
func (l *ledger) flush(ctx context.Context, more ...Update) error {
	return l.start(ctx, more...)()
}

// start sends what the ledger holds, and more, to be committed, and
// returns the wait for the commit, which reports the events. The wait
// may be called more than once.
func (l *ledger) start(ctx context.Context, more ...Update) (wait func() error) {
	ups := append(l.ups, more...)
	if len(ups) == 0 {
		return func() error { return nil }
	}
	req, err := l.st.rec.start(ctx, ups)
	if err != nil {
		// Stopping before the commit was queued: the outcomes the ledger
		// holds wait for its last flush; the new marks are dropped, and
		// with them the delivery they were for.
		l.st.cancel(err)
		return func() error { return err }
	}
	evs := l.evs
	l.ups, l.evs = l.ups[:0:0], l.evs[:0:0] // req and evs keep the old ones
	waited, result := false, error(nil)
	return func() error {
		if waited {
			return result
		}
		waited, result = true, req()
		if result != nil {
			l.st.cancel(result)
			return result
		}
		if l.st.r.Events != nil {
			for _, ev := range evs {
				l.st.r.Events(ev)
			}
		}
		return nil
	}
}

// deliver sends one recipient's message on sess. An error means the
// session is broken.
func (st *jobState) deliver(ctx context.Context, l *ledger, g *group, sess *Session, rc Recipient) error {
	buf := &l.buf
	buf.Reset()
	env, err := st.r.Composer.Compose(buf, message.Recipient{ID: rc.ID, Email: rc.Email, Values: rc.Values})
	if err != nil {
		st.cancel(&FatalError{Msg: fmt.Sprintf("rendering the message for %s", rc.Email), Err: err})
		return nil
	}
	// Marked sending, durably, before DATA: a crash from here on leaves it
	// to be sent again, never lost. The commit runs while MAIL and RCPT
	// make their round trips; DATA waits for it.
	committed := l.start(ctx, Update{ID: rc.ID, State: StateSending})
	// A stop (Ctrl-C, SIGTERM) takes no new recipients but lets the
	// transaction under way finish: its outcome is then known, not guessed.
	outs, err := sess.SendWhenReady(context.WithoutCancel(ctx), env.MailFrom, []string{env.RcptTo}, buf.Bytes(), committed)
	if cerr := committed(); cerr != nil {
		return cerr // the store failed: the run stops, nothing more recorded
	}
	l.add(st.outcome(g, rc, outs[0], true))
	return err
}

// outcome decides what happened to rc, acts on it for the group and the
// run, and returns the update to record and the event to report.
func (st *jobState) outcome(g *group, rc Recipient, o Outcome, attempted bool) (u Update, ev Event) {
	now := st.r.Now()
	u = Update{ID: rc.ID, Reply: o.Reply(), Attempted: attempted, Email: rc.Email}
	ev = Event{ID: rc.ID, Email: rc.Email, Group: rc.Group, Reply: o.Reply()}
	first := rc.FirstAttempt
	if first.IsZero() {
		first = now
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	switch o.Kind {
	case Sent:
		u.State, ev.Kind = StateSent, "sent"
		st.report.Sent++
	case Bounced:
		u.State, ev.Kind = StateBounced, "bounced"
		u.Suppress, ev.Suppress = o.Suppress, o.Suppress
		st.report.Bounced++
		if o.Suppress {
			st.report.HardBounces++
			st.report.BouncesByDomain[rc.Domain]++
		}
	case Fatal:
		// Not the recipient's fault: it waits, untouched, for a fixed run.
		u = Update{ID: rc.ID, State: StatePending}
		st.cancel(&FatalError{Msg: o.Fix() + " (server said: " + o.Reply() + ")"})
	case Throttled:
		p := st.pauseGroup(g, now, o.Reply())
		u.State, u.NextAttempt, ev.Kind = StateDeferred, p.Until, "deferred"
		st.report.Deferred++
	default: // Deferred, TooManyRecipients (one recipient a message)
		if now.Sub(first) >= st.r.Policy.MaxAge {
			u.State, ev.Kind = StateFailed, "failed"
			u.Reply = "gave up after " + st.r.Policy.MaxAge.String() + ": " + u.Reply
			ev.Reply = u.Reply
			st.report.Failed++
			return u, ev
		}
		u.State, ev.Kind = StateDeferred, "deferred"
		u.NextAttempt = now.Add(backoff(st.r.Policy.Retry, rc.Attempts))
		st.report.Deferred++
	}
	return u, ev
}

// pauseGroup rests the group: its connections stop taking its
// recipients, and the cooldown doubles on each new pause. Called with
// st.mu held.
func (st *jobState) pauseGroup(g *group, now time.Time, reason string) Pause {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		return g.pause
	}
	cd := st.r.Policy.Cooldown
	if g.pause.Cooldown > 0 {
		cd = 2 * g.pause.Cooldown
	}
	g.paused = true
	g.pause = Pause{Group: g.name, Until: now.Add(cd), Cooldown: cd, Reason: reason}
	st.report.Paused = append(st.report.Paused, g.pause)
	if err := st.r.Store.Pause(context.Background(), g.pause); err != nil {
		st.cancel(err)
	}
	if st.r.Events != nil {
		st.r.Events(Event{Kind: "paused", Group: g.name, Reply: reason, PausedFor: cd})
	}
	return g.pause
}

func backoff(schedule []time.Duration, attempts int) time.Duration {
	if len(schedule) == 0 {
		return 5 * time.Minute
	}
	return schedule[min(attempts, len(schedule)-1)]
}

// Sleep waits for d, or less if ctx ends first; it reports whether the
// whole wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// recorder writes updates from every connection through one goroutine,
// many to a commit: durability within milliseconds without one commit per
// message. Connections add their writes to the gathering batch without
// waking the recorder; it wakes once per batch, when every connection has
// a write in it or commitWindow after the first.
type recorder struct {
	store  Store
	active atomic.Int32 // connections that may be waiting on a commit

	mu     sync.Mutex
	cur    *batch
	closed bool
	kick   chan struct{} // commit now: the batch is full, or closing
	timer  *time.Timer   // commitWindow after a batch's first write
	done   chan struct{}
}

// commitWindow is how long the recorder gathers writes into one commit,
// at most: it commits at once when every connection is waiting on it. A
// connection's sending mark is committed while its MAIL and RCPT make
// their round trips, which hides a window this long; fewer, larger
// commits cost less CPU (bench/run.sh's 20k run: 100 µs 2.07 s, 250 µs
// 1.96 s, 400 µs 1.94 s, 1 ms 2.08 s, medians of 5).
const commitWindow = 300 * time.Microsecond

// batch is writes committed together.
type batch struct {
	us     []Update
	writes int           // how many connections' writes it holds
	done   chan struct{} // closed once committed; err is then set
	err    error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

func newRecorder(s Store) *recorder {
	r := &recorder{store: s, cur: newBatch(), kick: make(chan struct{}, 1), timer: time.NewTimer(time.Hour), done: make(chan struct{})}
	r.timer.Stop()
	go r.loop()
	return r
}

func (r *recorder) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.kick:
		case <-r.timer.C:
		}
		r.mu.Lock()
		b, closed := r.cur, r.closed
		take := len(b.us) > 0 // an empty batch stays to gather
		if take {
			r.cur = newBatch()
		}
		r.timer.Stop()
		r.mu.Unlock()
		if take {
			b.err = r.store.Apply(context.Background(), b.us)
			close(b.done)
		}
		if closed {
			return
		}
	}
}

// do records us and returns once they are committed.
func (r *recorder) do(ctx context.Context, us ...Update) error {
	wait, err := r.start(ctx, slices.Clone(us))
	if err != nil {
		return err
	}
	return wait()
}

// start adds us to the next commit and returns the wait for it; an error
// means ctx ended first and nothing was added. The recorder owns us from
// here.
func (r *recorder) start(ctx context.Context, us []Update) (wait func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	b := r.cur
	b.us = append(b.us, us...)
	b.writes++
	if b.writes == 1 {
		r.timer.Reset(commitWindow)
	}
	if b.writes >= int(r.active.Load()) {
		select { // every connection is waiting on this commit
		case r.kick <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
	return func() error {
		<-b.done
		return b.err
	}, nil
}

func (r *recorder) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	<-r.done
}
