package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
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
	Hostname    string
	Log         *slog.Logger
	Now         func() time.Time
	// Batch is the most recipients a round takes (500 if 0); Poll is how
	// often an idle deliverer looks for work another process made due
	// (`relayctl queue retry`), 5s if 0.
	Batch int
	Poll  time.Duration

	wake   chan struct{}
	runner *send.Runner
	round  map[int64]store.QueueDue // this round's recipients, by id
	bodies map[int64][]byte         // and their messages
}

// Wake tells the deliverer new mail is queued.
func (d *Deliverer) Wake() {
	select {
	case d.wakeCh() <- struct{}{}:
	default:
	}
}

func (d *Deliverer) wakeCh() chan struct{} {
	if d.wake == nil {
		panic("relay: Deliverer.Init not called")
	}
	return d.wake
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
	if d.Poll <= 0 {
		d.Poll = 5 * time.Second
	}
	if d.Providers == nil {
		d.Providers = plan.DefaultTable()
	}
	d.wake = make(chan struct{}, 1)
	d.runner = &send.Runner{Store: queueStore{d}, Opener: d.Opener, Composer: queueComposer{d}, Policy: d.Policy,
		Now: d.Now, Events: d.event, Direct: d.Direct}
}

// Run delivers until ctx ends. What was being sent when the last server
// stopped is sent again first: maybe twice, never lost.
func (d *Deliverer) Run(ctx context.Context) error {
	if n, err := d.Store.RecoverQueue(ctx); err != nil {
		return err
	} else if n > 0 {
		d.Log.Warn("recovered", "recipients", n, "detail", "were being delivered when the last server stopped; sending again")
	}
	pause := time.Duration(0)
	for ctx.Err() == nil {
		if err := d.notify(ctx); err != nil && ctx.Err() == nil {
			d.Log.Error("notices", "error", err.Error())
		}
		if _, err := d.Store.PurgeQueue(ctx); err != nil && ctx.Err() == nil {
			d.Log.Error("purge", "error", err.Error())
		}
		n, err := d.deliverRound(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			// A misconfigured upstream (authentication, TLS) or a failing
			// store: nothing is lost by waiting; the queue keeps filling.
			pause = min(max(2*pause, 30*time.Second), 15*time.Minute)
			d.Log.Error("delivery paused", "error", err.Error(), "retry_in", pause.String())
			send.Sleep(ctx, pause)
			continue
		}
		pause = 0
		if n > 0 {
			continue
		}
		// An upstream drops a connection idle for long: one kept open
		// until the next message would fail its first attempt.
		d.runner.CloseIdle()
		d.idle(ctx)
	}
	d.runner.CloseIdle()
	return nil
}

// idle waits for new mail, the next retry, or the poll interval.
func (d *Deliverer) idle(ctx context.Context) {
	wait := d.Poll
	if next, err := d.Store.NextQueueDue(ctx); err == nil && !next.IsZero() {
		wait = min(wait, max(next.Sub(d.Now()), 0))
	}
	if d.WarnAfter > 0 {
		wait = min(wait, time.Minute)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-d.wake:
	case <-t.C:
	case <-ctx.Done():
	}
}

// deliverRound sends what is due, up to a batch; it returns how many
// recipients it took.
func (d *Deliverer) deliverRound(ctx context.Context) (int, error) {
	due, err := d.Store.DueQueue(ctx, d.Now(), d.Batch, 64<<20)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	var ids []int64
	d.round = make(map[int64]store.QueueDue, len(due))
	job := send.Job{Limits: map[string]send.Limits{}, Connections: d.Connections, Pauses: map[string]send.Pause{},
		Default: send.Limits{Connections: d.Connections, PerConnection: 100}}
	for _, q := range due {
		if len(ids) == 0 || ids[len(ids)-1] != q.MessageID {
			ids = append(ids, q.MessageID)
		}
		d.round[q.ID] = q
		g := d.Providers.Group(q.Domain, nil)
		if _, ok := job.Limits[g]; !ok {
			l := d.Providers.LimitsFor(g)
			job.Limits[g] = send.Limits{Connections: l.Connections, PerConnection: l.PerConnection,
				MaxAge: time.Duration(l.MaxConnectionAge), PerHour: l.PerHour}
		}
		job.Recipients = append(job.Recipients, send.Recipient{ID: q.ID, Email: q.Rcpt, Domain: q.Domain, Group: g,
			Attempts: q.Attempts, FirstAttempt: q.Received})
	}
	if d.bodies, err = d.Store.QueueBodies(ctx, ids); err != nil {
		return 0, err
	}
	pauses, err := d.Store.QueuePauses(ctx)
	if err != nil {
		return 0, err
	}
	for g, p := range pauses {
		job.Pauses[g] = send.Pause{Group: g, Until: p.Until, Cooldown: p.Cooldown, Reason: p.Reason}
	}
	_, err = d.runner.RunJob(ctx, job)
	d.round, d.bodies = nil, nil
	if err != nil && ctx.Err() == nil {
		return len(due), err
	}
	return len(due), nil
}

// event logs a delivery attempt.
func (d *Deliverer) event(ev send.Event) {
	if ev.Kind == "paused" {
		d.Log.Warn("paused", "provider", ev.Group, "for", ev.PausedFor.String(), "reply", ev.Reply)
		return
	}
	q := d.round[ev.ID]
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
	q, ok := c.d.round[r.ID]
	if !ok {
		return message.Envelope{}, fmt.Errorf("queued recipient %d is not in this round", r.ID)
	}
	_, err := w.Write(c.d.bodies[q.MessageID])
	return message.Envelope{MailFrom: q.From, RcptTo: q.Rcpt}, err
}

// notify sends the notices senders are owed: a DSN per message for its
// failed recipients and those delayed past WarnAfter. The null sender
// (a DSN itself) is never sent one: no bounce loops.
func (d *Deliverer) notify(ctx context.Context) error {
	now := d.Now()
	var warnBefore time.Time
	if d.WarnAfter > 0 {
		warnBefore = now.Add(-d.WarnAfter)
	}
	notices, err := d.Store.QueueNotices(ctx, warnBefore)
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

// ErrNoWay is returned when the deliverer has no way to deliver.
var ErrNoWay = errors.New("no upstream and no resolver")
