package send

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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

	queues := map[string]*queue{}
	var order []string
	for _, rc := range job.Recipients {
		q := queues[rc.Group]
		if q == nil {
			l, ok := job.Limits[rc.Group]
			if !ok {
				l = job.Default
			}
			q = &queue{group: rc.Group, limits: l, pause: job.Pauses[rc.Group]}
			queues[rc.Group] = q
			order = append(order, rc.Group)
		}
		q.items = append(q.items, rc)
	}
	st := &jobState{r: r, rec: rec, cancel: cancel, report: JobReport{BouncesByDomain: map[string]int{}},
		sem: make(chan struct{}, max(1, job.Connections))}
	var wg sync.WaitGroup
	for _, g := range order {
		q := queues[g]
		if q.pause.Until.After(r.Now()) {
			continue // resting: its recipients wait for a later pass
		}
		workers := min(max(1, q.limits.Connections), (len(q.items)+max(1, q.limits.PerConnection)-1)/max(1, q.limits.PerConnection))
		for range workers {
			wg.Go(func() { st.work(ctx, q) })
		}
	}
	wg.Wait()
	// A paused group's untouched recipients wait for the pause's end.
	for _, q := range queues {
		q.mu.Lock()
		if !q.pause.Until.After(r.Now()) {
			q.mu.Unlock()
			continue
		}
		for _, rc := range q.items {
			if err := rec.do(context.WithoutCancel(ctx), Update{ID: rc.ID, State: StateDeferred, NextAttempt: q.pause.Until}); err != nil {
				cancel(err)
			}
		}
		q.items = nil
		q.mu.Unlock()
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return st.report, cause
	}
	return st.report, ctx.Err()
}

// queue is one group's recipients, taken in order by its connections.
type queue struct {
	group  string
	limits Limits
	mu     sync.Mutex
	items  []Recipient
	paused bool
	pause  Pause
	next   time.Time // the hourly rate's next free slot
}

func (q *queue) take() (Recipient, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.paused || len(q.items) == 0 {
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

// slot returns when the next message may go, spacing them evenly by the
// hourly rate (no bursts).
func (q *queue) slot(now time.Time) time.Time {
	if q.limits.PerHour <= 0 {
		return now
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	at := now
	if q.next.After(now) {
		at = q.next
	}
	q.next = at.Add(time.Hour / time.Duration(q.limits.PerHour))
	return at
}

type jobState struct {
	r      *Runner
	rec    *recorder
	cancel context.CancelCauseFunc
	sem    chan struct{}
	mu     sync.Mutex
	report JobReport
}

// work is one connection's loop: take a recipient, deliver it, until the
// queue is empty or the group is paused.
func (st *jobState) work(ctx context.Context, q *queue) {
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
	defer closeSess(true)
	for ctx.Err() == nil {
		rc, ok := q.take()
		if !ok {
			return
		}
		if at := q.slot(st.r.Now()); at.After(st.r.Now()) {
			if !sleep(ctx, at.Sub(st.r.Now())) {
				return
			}
		}
		if sess != nil && (sess.Messages >= max(1, q.limits.PerConnection) ||
			q.limits.MaxAge > 0 && time.Since(sess.Opened) >= q.limits.MaxAge ||
			st.r.Direct && rc.Domain != sessDomain) {
			closeSess(true)
		}
		if sess == nil {
			select {
			case st.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			s, err := st.r.Opener.Open(ctx, rc.Domain)
			if err != nil {
				<-st.sem
				if ctx.Err() != nil {
					// The run is stopping: the failure is ours, not the
					// server's, and the recipient waits untouched.
					q.putBack(rc)
					return
				}
				st.outcome(ctx, q, rc, Classify(err), true)
				continue
			}
			sess, sessDomain = s, rc.Domain
			st.mu.Lock()
			st.report.Connections++
			st.mu.Unlock()
		}
		if err := st.deliver(ctx, q, sess, rc); err != nil {
			closeSess(false)
		}
	}
}

// deliver sends one recipient's message on sess. An error means the
// session is broken.
func (st *jobState) deliver(ctx context.Context, q *queue, sess *Session, rc Recipient) error {
	var buf bytes.Buffer
	env, err := st.r.Composer.Compose(&buf, message.Recipient{Email: rc.Email, Values: rc.Values})
	if err != nil {
		st.cancel(&FatalError{Msg: fmt.Sprintf("rendering the message for %s", rc.Email), Err: err})
		return nil
	}
	// Marked sending, durably, before DATA: a crash from here on leaves it
	// to be sent again, never lost.
	if err := st.rec.do(ctx, Update{ID: rc.ID, State: StateSending}); err != nil {
		st.cancel(err)
		return err
	}
	// A stop (Ctrl-C, SIGTERM) takes no new recipients but lets the
	// transaction under way finish: its outcome is then known, not guessed.
	outs, err := sess.Send(context.WithoutCancel(ctx), env.MailFrom, []string{env.RcptTo}, buf.Bytes())
	st.outcome(ctx, q, rc, outs[0], true)
	return err
}

// outcome records what happened to rc and acts on it for the group and
// the run.
func (st *jobState) outcome(ctx context.Context, q *queue, rc Recipient, o Outcome, attempted bool) {
	now := st.r.Now()
	u := Update{ID: rc.ID, Reply: o.Reply(), Attempted: attempted, Email: rc.Email}
	ev := Event{Email: rc.Email, Group: rc.Group, Reply: o.Reply()}
	first := rc.FirstAttempt
	if first.IsZero() {
		first = now
	}
	defer func() {
		if err := st.rec.do(context.WithoutCancel(ctx), u); err != nil {
			st.cancel(err)
		}
		if st.r.Events != nil && ev.Kind != "" {
			st.r.Events(ev)
		}
	}()
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
		p := st.pauseGroup(q, now, o.Reply())
		u.State, u.NextAttempt, ev.Kind = StateDeferred, p.Until, "deferred"
		st.report.Deferred++
	default: // Deferred, TooManyRecipients (one recipient a message)
		if now.Sub(first) >= st.r.Policy.MaxAge {
			u.State, ev.Kind = StateFailed, "failed"
			u.Reply = "gave up after " + st.r.Policy.MaxAge.String() + ": " + u.Reply
			st.report.Failed++
			return
		}
		u.State, ev.Kind = StateDeferred, "deferred"
		u.NextAttempt = now.Add(backoff(st.r.Policy.Retry, rc.Attempts))
		st.report.Deferred++
	}
}

// pauseGroup rests the group: its connections stop taking recipients,
// and the cooldown doubles on each new pause. Called with st.mu held.
func (st *jobState) pauseGroup(q *queue, now time.Time, reason string) Pause {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.paused {
		return q.pause
	}
	cd := st.r.Policy.Cooldown
	if q.pause.Cooldown > 0 {
		cd = 2 * q.pause.Cooldown
	}
	q.paused = true
	q.pause = Pause{Group: q.group, Until: now.Add(cd), Cooldown: cd, Reason: reason}
	st.report.Paused = append(st.report.Paused, q.pause)
	if err := st.r.Store.Pause(context.Background(), q.pause); err != nil {
		st.cancel(err)
	}
	if st.r.Events != nil {
		st.r.Events(Event{Kind: "paused", Group: q.group, Reply: reason, PausedFor: cd})
	}
	return q.pause
}

func backoff(schedule []time.Duration, attempts int) time.Duration {
	if len(schedule) == 0 {
		return 5 * time.Minute
	}
	return schedule[min(attempts, len(schedule)-1)]
}

func sleep(ctx context.Context, d time.Duration) bool {
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
// message.
type recorder struct {
	store Store
	reqs  chan recordReq
	done  chan struct{}
}

type recordReq struct {
	u   Update
	err chan error
}

func newRecorder(s Store) *recorder {
	r := &recorder{store: s, reqs: make(chan recordReq, 256), done: make(chan struct{})}
	go r.loop()
	return r
}

func (r *recorder) loop() {
	defer close(r.done)
	for req := range r.reqs {
		batch := []recordReq{req}
	more:
		for len(batch) < 512 {
			select {
			case q, ok := <-r.reqs:
				if !ok {
					break more
				}
				batch = append(batch, q)
			default:
				break more
			}
		}
		us := make([]Update, len(batch))
		for i, q := range batch {
			us[i] = q.u
		}
		err := r.store.Apply(context.Background(), us)
		for _, q := range batch {
			q.err <- err
		}
	}
}

// do records u and returns once it is committed.
func (r *recorder) do(ctx context.Context, u Update) error {
	req := recordReq{u: u, err: make(chan error, 1)}
	select {
	case r.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.err
}

func (r *recorder) close() {
	close(r.reqs)
	<-r.done
}
