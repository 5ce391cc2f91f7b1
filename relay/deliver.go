package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

// Deliverer delivers the queue with send's engine, the one `run` uses:
// direct or through an upstream, each provider under its limits and
// pace, 4xx retried on the policy's schedule, throttling providers
// paused. Senders are sent a notice (RFC 3464) for recipients that failed
// or, with WarnAfter, are still waiting.
type Deliverer struct {
	Store       *store.Store
	Opener      send.Opener
	Direct      bool
	Providers   *plan.Table
	Policy      send.Policy // MaxAge is the queue lifetime, from arrival
	WarnAfter   time.Duration
	Connections int
	// MX, if set, returns a domain's MX hosts, so that a domain hosted by
	// a provider (a company on Google Workspace) is shaped as that
	// provider, as `plan` groups a campaign's recipients. Without it, or
	// when it fails, the provider table's domain lists decide.
	MX       func(ctx context.Context, domain string) ([]string, error)
	Hostname string
	Log      *slog.Logger
	Now      func() time.Time
	// Batch is the most recipients a round takes (500 if 0); Poll is how
	// often an idle deliverer looks for work another process made due
	// (`relayctl queue retry`), 5s if 0.
	Batch int
	Poll  time.Duration

	wake   chan struct{}
	runner *send.Runner
	rounds sync.WaitGroup

	mu          sync.Mutex
	inflight    map[int64]store.QueueDue // the rounds' recipients, by id
	bodies      map[int64][]byte         // and their messages
	bodyRefs    map[int64]int            // in-flight recipients per message
	busyGroups  map[string]bool          // providers a round serves
	busyDomains map[string]bool          // and their domains seen
	finished    map[int64]bool           // messages rounds ended with
	groupCache  map[string]cachedGroup   // domain → provider, Run's own
	allotted    int                      // connections the rounds hold
	backoff     time.Duration            // after a failed round
	pausedUntil time.Time
}

// Wake tells the deliverer new mail is queued.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default: // already woken; or, before Init, no channel: nothing to wake
	}
}

// Init prepares the deliverer; call it before Run and Wake.
func (d *Deliverer) Init() {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Batch <= 0 {
		d.Batch = 500
	}
	if d.Connections <= 0 {
		d.Connections = 10
	}
	if d.Poll <= 0 {
		d.Poll = 5 * time.Second
	}
	if d.Providers == nil {
		d.Providers = plan.DefaultTable()
	}
	d.wake = make(chan struct{}, 1)
	d.inflight, d.bodies, d.bodyRefs = map[int64]store.QueueDue{}, map[int64][]byte{}, map[int64]int{}
	d.busyGroups, d.busyDomains, d.finished = map[string]bool{}, map[string]bool{}, map[int64]bool{}
	d.groupCache = map[string]cachedGroup{}
	d.runner = &send.Runner{Store: queueStore{d}, Opener: d.Opener, Composer: queueComposer{d}, Policy: d.Policy,
		Now: d.Now, Events: d.event, Direct: d.Direct}
}

// Run delivers until ctx ends. What was being sent when the last server
// stopped is sent again first: maybe twice, never lost.
//
// Deliveries go in rounds, several at once: a round takes the due
// recipients of providers no other round is serving, so one slow or
// unreachable destination holds up only its own mail, and a provider's
// limits hold across rounds. The first round leaves a fifth of the
// outgoing connections for others.
func (d *Deliverer) Run(ctx context.Context) error {
	if n, err := d.Store.RecoverQueue(ctx); err != nil {
		return err
	} else if n > 0 {
		d.Log.Warn("recovered", "recipients", n, "detail", "were being delivered when the last server stopped; sending again")
	}
	defer d.runner.CloseIdle()
	defer d.rounds.Wait()
	var nextSweep, lastLook time.Time
	for ctx.Err() == nil {
		// Notices and purging look at the messages rounds have finished
		// with; the whole queue only every sweepEvery (for delay warnings,
		// and what queue delete or another process changed). Scanning the
		// queue at each wake-up, that is at each message accepted, took
		// most of the CPU under load and held the write lock from the
		// clients' commits.
		var ids []int64 // none: the whole queue
		full := !d.Now().Before(nextSweep)
		if full {
			nextSweep = d.Now().Add(sweepEvery)
			d.takeFinished()
		} else {
			ids = d.takeFinished()
		}
		if full || len(ids) > 0 {
			if err := d.notify(ctx, ids...); err != nil && ctx.Err() == nil {
				d.Log.Error("notices", "error", err.Error())
			}
			if _, err := d.Store.PurgeQueue(ctx, ids...); err != nil && ctx.Err() == nil {
				d.Log.Error("purge", "error", err.Error())
			}
		}
		// While rounds run, every accepted message wakes the loop: look
		// for startable work at most every roundGap, not at each one.
		d.mu.Lock()
		busy := d.allotted > 0
		d.mu.Unlock()
		if wait := roundGap - time.Since(lastLook); busy && wait > 0 && !send.Sleep(ctx, wait) {
			break
		}
		lastLook = time.Now()
		started, err := d.startRound(ctx)
		if err != nil && ctx.Err() == nil {
			d.failed(err)
		}
		if started {
			continue
		}
		d.mu.Lock()
		busy = d.allotted > 0
		d.mu.Unlock()
		if !busy {
			// An upstream drops a connection idle for long: one kept open
			// until the next message would fail its first attempt.
			d.runner.CloseIdle()
		}
		d.idle(ctx)
	}
	return nil
}

// roundGap spaces the looks for work a new round could start while
// others run: new mail for an idle provider waits that much at most.
const roundGap = 100 * time.Millisecond

// sweepEvery is how often the whole queue is looked at for notices and
// finished messages.
const sweepEvery = 30 * time.Second

// takeFinished returns, and forgets, the messages whose recipients ended
// a round since the last call.
func (d *Deliverer) takeFinished() []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]int64, 0, len(d.finished))
	for id := range d.finished {
		ids = append(ids, id)
	}
	clear(d.finished)
	return ids
}

// failed pauses delivery after a misconfigured upstream (authentication,
// TLS) or a failing store: nothing is lost by waiting, the queue keeps
// filling; 30s, doubling to 15 minutes.
func (d *Deliverer) failed(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.backoff = min(max(2*d.backoff, 30*time.Second), 15*time.Minute)
	d.pausedUntil = d.Now().Add(d.backoff)
	d.Log.Error("delivery paused", "error", err.Error(), "retry_in", d.backoff.String())
}

// idle waits for new mail, a round's end, the next retry, or the poll
// interval.
func (d *Deliverer) idle(ctx context.Context) {
	wait := d.Poll
	if next, err := d.Store.NextQueueDue(ctx); err == nil && !next.IsZero() {
		wait = min(wait, max(next.Sub(d.Now()), 0))
	}
	if d.WarnAfter > 0 {
		wait = min(wait, time.Minute)
	}
	d.mu.Lock()
	if d.pausedUntil.After(d.Now()) {
		wait = max(wait, d.pausedUntil.Sub(d.Now()))
	}
	d.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-d.wake:
	case <-t.C:
	case <-ctx.Done():
	}
}

// startRound starts a round with what is due and free: recipients not in
// a round, of providers no round is serving. It reports whether it
// started one.
func (d *Deliverer) startRound(ctx context.Context) (bool, error) {
	d.mu.Lock()
	budget := d.Connections - d.allotted
	paused := d.pausedUntil.After(d.Now())
	var busyDomains []string
	for dom := range d.busyDomains {
		busyDomains = append(busyDomains, dom)
	}
	d.mu.Unlock()
	if budget < 1 || paused {
		return false, nil
	}
	due, err := d.Store.DueQueue(ctx, d.Now(), d.Batch, 64<<20, busyDomains...)
	if err != nil || len(due) == 0 {
		return false, err
	}
	r := &round{recipients: map[int64]store.QueueDue{}, groups: map[string]bool{}, domains: map[string]bool{}}
	job := send.Job{Limits: map[string]send.Limits{}, Pauses: map[string]send.Pause{},
		Default: send.Limits{Connections: d.Connections, PerConnection: 100}}
	var ids []int64
	groups := d.groups(ctx, due) // may ask DNS: not under d.mu
	d.mu.Lock()
	for _, q := range due {
		g := groups[q.Domain]
		if d.busyGroups[g] {
			continue // another round serves this provider
		}
		if len(ids) == 0 || ids[len(ids)-1] != q.MessageID {
			ids = append(ids, q.MessageID)
		}
		r.recipients[q.ID] = q
		r.groups[g], r.domains[q.Domain] = true, true
		if _, ok := job.Limits[g]; !ok {
			l := d.Providers.LimitsFor(g)
			job.Limits[g] = send.Limits{Connections: l.Connections, PerConnection: l.PerConnection,
				MaxAge: time.Duration(l.MaxConnectionAge), PerHour: l.PerHour}
		}
		job.Recipients = append(job.Recipients, send.Recipient{ID: q.ID, Email: q.Rcpt, Domain: q.Domain, Group: g,
			Attempts: q.Attempts, FirstAttempt: q.Received})
	}
	d.mu.Unlock()
	if len(job.Recipients) == 0 {
		return false, nil
	}
	bodies, err := d.Store.QueueBodies(ctx, ids)
	if err != nil {
		return false, err
	}
	pauses, err := d.Store.QueuePauses(ctx)
	if err != nil {
		return false, err
	}
	for g, p := range pauses {
		job.Pauses[g] = send.Pause{Group: g, Until: p.Until, Cooldown: p.Cooldown, Reason: p.Reason}
	}
	// The first round leaves a fifth of the connections for rounds that
	// may start while it runs; later rounds take what is left.
	job.Connections = min(budget, len(job.Recipients))
	if budget == d.Connections && d.Connections >= 2 {
		job.Connections = min(job.Connections, d.Connections-max(1, d.Connections/5))
	}
	r.connections = job.Connections

	d.mu.Lock()
	d.allotted += r.connections
	for id, q := range r.recipients {
		d.inflight[id] = q
		d.bodyRefs[q.MessageID]++
	}
	for id, b := range bodies {
		d.bodies[id] = b
	}
	for g := range r.groups {
		d.busyGroups[g] = true
	}
	for dom := range r.domains {
		d.busyDomains[dom] = true
	}
	d.mu.Unlock()
	d.rounds.Go(func() {
		_, err := d.runner.RunJob(ctx, job)
		d.endRound(r)
		if err != nil && ctx.Err() == nil {
			d.failed(err)
		} else if err == nil {
			d.mu.Lock()
			d.backoff = 0
			d.mu.Unlock()
		}
		d.Wake() // the loop may start what this round held back
	})
	return true, nil
}

// groupTTL is how long a domain's provider, found from its MX hosts, is
// remembered.
const groupTTL = time.Hour

type cachedGroup struct {
	group string
	until time.Time
}

// groups returns the provider group of each domain of due. Called from
// Run's loop only, which owns the cache.
func (d *Deliverer) groups(ctx context.Context, due []store.QueueDue) map[string]string {
	out := map[string]string{}
	for _, q := range due {
		if _, ok := out[q.Domain]; ok {
			continue
		}
		if c, ok := d.groupCache[q.Domain]; ok && d.Now().Before(c.until) {
			out[q.Domain] = c.group
			continue
		}
		var mx []string
		if d.MX != nil {
			mctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			mx, _ = d.MX(mctx, q.Domain) // a failure groups by the domain lists
			cancel()
		}
		g := d.Providers.Group(q.Domain, mx)
		out[q.Domain] = g
		d.groupCache[q.Domain] = cachedGroup{g, d.Now().Add(groupTTL)}
	}
	return out
}

// round is one RunJob's share of the queue.
type round struct {
	recipients  map[int64]store.QueueDue
	groups      map[string]bool
	domains     map[string]bool
	connections int
}

func (d *Deliverer) endRound(r *round) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.allotted -= r.connections
	for id, q := range r.recipients {
		delete(d.inflight, id)
		d.bodyRefs[q.MessageID]--
		d.finished[q.MessageID] = true
	}
	for id, n := range d.bodyRefs {
		if n <= 0 {
			delete(d.bodyRefs, id)
			delete(d.bodies, id)
		}
	}
	for g := range r.groups {
		delete(d.busyGroups, g)
	}
	for dom := range r.domains {
		delete(d.busyDomains, dom)
	}
}

// recipient returns an in-flight recipient, and its message.
func (d *Deliverer) recipient(id int64) (store.QueueDue, []byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q, ok := d.inflight[id]
	return q, d.bodies[q.MessageID], ok
}

// event logs a delivery attempt.
func (d *Deliverer) event(ev send.Event) {
	if ev.Kind == "paused" {
		d.Log.Warn("paused", "provider", ev.Group, "for", ev.PausedFor.String(), "reply", ev.Reply)
		return
	}
	q, _, _ := d.recipient(ev.ID)
	level := slog.LevelInfo
	if ev.Kind != "sent" {
		level = slog.LevelWarn
	}
	d.Log.Log(context.Background(), level, "attempt", "queue_id", q.MessageID, "client", q.Client, "user", q.User,
		"from", q.From, "to", q.Rcpt, "size", q.Size, "attempt", q.Attempts+1, "result", ev.Kind, "reply", ev.Reply)
}

// queueStore records the engine's updates in the queue.
type queueStore struct{ d *Deliverer }

func (s queueStore) Apply(ctx context.Context, us []send.Update) error {
	now := s.d.Now()
	out := make([]store.QueueUpdate, len(us))
	for i, u := range us {
		// A relay's recipients are not a campaign's list: a hard bounce
		// goes back to the sender as a notice, not on the suppression list.
		out[i] = store.QueueUpdate{ID: u.ID, State: u.State, Reply: u.Reply, NextAttempt: u.NextAttempt,
			Attempted: u.Attempted, At: now}
	}
	return s.d.Store.ApplyQueue(ctx, out)
}

func (s queueStore) Pause(ctx context.Context, p send.Pause) error {
	return s.d.Store.PauseQueueGroup(ctx, store.Pause{Group: p.Group, Until: p.Until, Cooldown: p.Cooldown, Reason: p.Reason})
}

// queueComposer hands the engine a queued message as received.
type queueComposer struct{ d *Deliverer }

func (c queueComposer) Compose(w io.Writer, r message.Recipient) (message.Envelope, error) {
	q, body, ok := c.d.recipient(r.ID)
	if !ok {
		return message.Envelope{}, fmt.Errorf("queued recipient %d is not in a round", r.ID)
	}
	_, err := w.Write(body)
	return message.Envelope{MailFrom: q.From, RcptTo: q.Rcpt}, err
}

// notify sends the notices senders are owed: a DSN per message for its
// failed recipients and those delayed past WarnAfter. The null sender
// (a DSN itself) is never sent one: no bounce loops.
func (d *Deliverer) notify(ctx context.Context, ids ...int64) error {
	now := d.Now()
	var warnBefore time.Time
	if d.WarnAfter > 0 {
		warnBefore = now.Add(-d.WarnAfter)
	}
	notices, err := d.Store.QueueNotices(ctx, warnBefore, ids...)
	if err != nil {
		return err
	}
	for _, n := range notices {
		var failed, delayed []int64
		dsn := DSN{ReportingMTA: d.Hostname, To: n.From, QueueID: n.MessageID, Arrival: n.Received, Date: now}
		for _, r := range n.Recipients {
			dr := DSNRecipient{Address: r.Rcpt, Reply: r.Reply, LastAttempt: r.LastAttempt}
			if r.Failed() {
				failed = append(failed, r.ID)
				dr.Action = "failed"
				// The engine's "gave up after 120h0m0s: " goes: Expired
				// says it, and the server's last reply is what remains.
				if rest, ok := strings.CutPrefix(r.Reply, "gave up after "); ok {
					dr.Expired = true
					if _, reply, ok := strings.Cut(rest, ": "); ok {
						dr.Reply = reply
					}
				}
			} else {
				delayed = append(delayed, r.ID)
				dr.Action, dr.RetryUntil = "delayed", n.Received.Add(d.Policy.MaxAge)
			}
			dsn.Recipients = append(dsn.Recipients, dr)
		}
		var q *store.Queued
		if n.From != "" {
			bodies, err := d.Store.QueueBodies(ctx, []int64{n.MessageID})
			if err != nil {
				return err
			}
			dsn.Headers = headerSection(bodies[n.MessageID])
			b, err := dsn.Bytes()
			if err != nil {
				return fmt.Errorf("notice for message %d: %w", n.MessageID, err)
			}
			q = &store.Queued{Received: now, Body: b, Recipients: []string{n.From}}
		}
		id, err := d.Store.Notified(ctx, q, failed, delayed)
		if err != nil {
			return err
		}
		if q != nil {
			kind := "failure"
			if len(failed) == 0 {
				kind = "delay"
			}
			d.Log.Info("notice", "queue_id", n.MessageID, "kind", kind, "to", n.From, "failed", len(failed),
				"delayed", len(delayed), "notice_id", id)
		}
	}
	return nil
}

// headerSection is a message's header, through the blank line.
func headerSection(body []byte) []byte {
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		return body[:i+4]
	}
	return body
}

// MXFrom adapts direct delivery's resolver to Deliverer.MX.
func MXFrom(r send.Resolver) func(ctx context.Context, domain string) ([]string, error) {
	return func(ctx context.Context, domain string) ([]string, error) {
		mxs, _, _, err := r.LookupMX(ctx, domain)
		hosts := make([]string, len(mxs))
		for i, m := range mxs {
			hosts[i] = m.Host
		}
		return hosts, err
	}
}
