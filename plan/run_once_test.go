package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

// offlineOpener stands in for the network in runs that must not touch
// it: every Open is recorded and fails the test. Direct delivery resolves
// MX hosts inside Open, so no call means no DNS query either.
type offlineOpener struct {
	t     *testing.T
	mu    sync.Mutex
	calls []string
}

func (o *offlineOpener) Open(ctx context.Context, domain string) (*send.Session, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, domain)
	o.t.Errorf("Open(%q): a run with nothing due opened a connection", domain)
	return nil, errors.New("offlineOpener: no network here")
}

func (o *offlineOpener) opened() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.calls...)
}

// idleOptions are a --once run that must find nothing to do: it records
// the log, and fails the test if it sends, waits or connects.
func idleOptions(t *testing.T, name string, o *offlineOpener, log *[]string) plan.RunOptions {
	opt := runOptions(name, o)
	opt.Once, opt.Resume = true, true
	opt.Log = func(msg string) { *log = append(*log, msg) }
	opt.Wait = func(what string, until time.Time) {
		t.Errorf("the run waited for %s until %s; --once never waits", what, until)
	}
	opt.Events = func(e send.Event) { t.Errorf("event %s for %s; nothing was due", e.Kind, e.Email) }
	return opt
}

// promptly is how long an idle --once run may take here; it takes a few
// milliseconds, but the machine may be busy. A run that waited for the
// next job would take an hour.
const promptly = 2 * time.Second

// TestRunOnceIdleBeforeStart: before the first job's start, --once opens
// nothing, says when job 1 is due, leaves every recipient pending and
// gives the lock back, by either transport.
func TestRunOnceIdleBeforeStart(t *testing.T) {
	start := time.Now().Add(time.Hour).Truncate(time.Second)
	st, name := planWith(t, 6, func(o *plan.Options) { o.PerJob, o.Gap, o.Start = 3, time.Minute, start })
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			o := &offlineOpener{t: t}
			var log []string
			opt := idleOptions(t, name, o, &log)
			opt.Direct = direct
			began := time.Now()
			sum, err := plan.Run(runCtx(t), st, opt)
			took := time.Since(began)
			if err != nil {
				t.Fatal(err)
			}
			if took > promptly {
				t.Errorf("Run took %s with nothing due", took)
			}
			if n := len(o.opened()); n != 0 {
				t.Errorf("%d Open calls, want none", n)
			}
			// An idle run does not count: the store says what it left.
			if counts := storeCounts(t, st, name); !sum.Idle || sum.Campaign.State != plan.CampaignWaiting || counts[store.StatePending] != 6 || sum.Resent != 0 {
				t.Errorf("idle %v, state %s, counts %v, resent %d; want idle, waiting, 6 pending, none resent",
					sum.Idle, sum.Campaign.State, counts, sum.Resent)
			}
			want := fmt.Sprintf("nothing due; next at %s (job 1)", start.UTC().Format(time.RFC3339))
			if len(log) != 1 || log[0] != want {
				t.Errorf("log %q, want just %q", log, want)
			}
		})
	}
	// Both runs gave the lock back: one that held it on would lock this
	// one out.
	var log []string
	opt := idleOptions(t, name, &offlineOpener{t: t}, &log)
	opt.Holder, opt.PID = "another", os.Getpid()+1
	if _, err := plan.Run(runCtx(t), st, opt); err != nil {
		t.Errorf("a third run: %v; the idle runs kept the lock", err)
	}
}

// TestRunOnceIdleDeferred: every job has had its pass and what is left is
// deferred until later, by a temporary refusal (the retry schedule) or a
// provider's throttling (its pause): --once opens nothing and says when
// the retries are due.
func TestRunOnceIdleDeferred(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reply  *smtp.SMTPError
		paused bool
	}{
		{"greylisted", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "Mailbox busy, try again later"}, false},
		{"throttled", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Try again later, closing connection."}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, name := planWith(t, 6, func(o *plan.Options) { o.PerJob = 3 })
			srv := smtptest.Start(t, smtptest.Options{})
			srv.SetHooks(smtptest.Hooks{Rcpt: func(string) error { return tc.reply }})
			slow := send.Policy{Retry: []time.Duration{time.Hour}, MaxAge: 48 * time.Hour, Cooldown: time.Hour}
			began := time.Now()
			first := runOptions(name, relay(t, srv))
			first.Once, first.Policy = true, slow
			sum, err := plan.Run(runCtx(t), st, first)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Counts.Total[store.StateDeferred] != 6 || sum.Campaign.State != plan.CampaignWaiting {
				t.Fatalf("first run: counts %v, state %s; want 6 deferred, waiting", sum.Counts.Total, sum.Campaign.State)
			}
			if (len(sum.Pauses) > 0) != tc.paused {
				t.Fatalf("first run: pauses %v, want some: %v", sum.Pauses, tc.paused)
			}
			conns := srv.Stats().Connections

			o := &offlineOpener{t: t}
			var log []string
			opt := idleOptions(t, name, o, &log)
			opt.Policy = slow
			idleBegan := time.Now()
			sum, err = plan.Run(runCtx(t), st, opt)
			took := time.Since(idleBegan)
			if err != nil {
				t.Fatal(err)
			}
			if took > promptly {
				t.Errorf("Run took %s with nothing due", took)
			}
			if n := len(o.opened()); n != 0 || srv.Stats().Connections != conns {
				t.Errorf("%d Open calls, %d new connections; want none", n, srv.Stats().Connections-conns)
			}
			// An idle run does not count: the store says what it left.
			if counts := storeCounts(t, st, name); !sum.Idle || sum.Campaign.State != plan.CampaignWaiting || counts[store.StateDeferred] != 6 || sum.Resent != 0 {
				t.Errorf("idle %v, state %s, counts %v, resent %d; want idle, waiting, 6 deferred, none resent",
					sum.Idle, sum.Campaign.State, counts, sum.Resent)
			}
			// The next attempt is an hour after the first, to the second.
			next := sum.NextDue
			if next.Before(began.Add(time.Hour).Truncate(time.Second)) || next.After(idleBegan.Add(time.Hour)) {
				t.Errorf("next due %s, want an hour after the first run (%s)", next, began)
			}
			want := fmt.Sprintf("nothing due; next at %s (retries)", next.UTC().Format(time.RFC3339))
			if len(log) != 1 || log[0] != want {
				t.Errorf("log %q, want just %q", log, want)
			}
		})
	}
}
