package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

// planSmall plans n recipients at example.test domains into a fresh store,
// in jobs of perJob, gap apart.
func planSmall(t *testing.T, n, perJob int, gap time.Duration) (*store.Store, string) {
	t.Helper()
	return planWith(t, n, func(o *plan.Options) { o.PerJob, o.Gap = perJob, gap })
}

func TestRunUpstreamSmoke(t *testing.T) {
	st, name := planSmall(t, 50, 20, 0)
	srv := smtptest.Start(t, smtptest.Options{})
	up, err := send.ParseUpstream(fmt.Sprintf("smtp://%s?tls=none", srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	d := &send.Dialer{HELO: "relay.example.org", Timeouts: send.DefaultTimeouts, Upstream: up}
	sum, err := plan.Run(context.Background(), st, plan.RunOptions{Campaign: name, Opener: d, Policy: send.DefaultPolicy,
		MaxBounceRate: 0.05, Holder: "test", Host: "h", PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Messages()); got != 50 {
		t.Errorf("server got %d messages, want 50", got)
	}
	if sum.Counts.Total[store.StateSent] != 50 || sum.Campaign.State != plan.CampaignDone {
		t.Errorf("summary: %v, state %s", sum.Counts.Total, sum.Campaign.State)
	}
	for _, h := range srv.Stats().HELOs {
		if h != "relay.example.org" {
			t.Errorf("EHLO %q, want relay.example.org", h)
		}
	}
}

// A live run's lock keeps a second run out; a dead holder's is taken over.
func TestRunLock(t *testing.T) {
	st, name := planSmall(t, 3, 3, 0)
	ctx := context.Background()
	c, _, _, err := st.Campaign(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	alive := func(pid int) bool { return pid == 4242 }
	if _, err := st.AcquireLock(ctx, c.ID, "other run", "h", 4242, time.Hour, alive); err != nil {
		t.Fatal(err)
	}
	srv := smtptest.Start(t, smtptest.Options{})
	up, _ := send.ParseUpstream(fmt.Sprintf("smtp://%s?tls=none", srv.Addr))
	opt := plan.RunOptions{Campaign: name, Opener: &send.Dialer{HELO: "relay.example.org", Timeouts: send.DefaultTimeouts, Upstream: up},
		Policy: send.DefaultPolicy, Holder: "test", Host: "h", PID: 1, Alive: alive}
	if _, err := plan.Run(ctx, st, opt); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second run: %v, want ErrLocked", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("the locked-out run sent %d messages", n)
	}
	// The holder dies: its lock is taken over.
	opt.Alive = func(int) bool { return false }
	sum, err := plan.Run(ctx, st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != 3 {
		t.Errorf("after takeover: %v", sum.Counts.Total)
	}
}

// A connection dropped in the middle of DATA defers the recipient (the
// server never said 250), and the retry delivers it: nobody is lost.
func TestRunDroppedMidDataResent(t *testing.T) {
	st, name := planSmall(t, 9, 9, 0)
	srv := smtptest.Start(t, smtptest.Options{})
	const victim = "user4@d1.example.test"
	var mu sync.Mutex
	dropped := 0
	srv.SetHooks(smtptest.Hooks{Data: func(m smtptest.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.To[0] == victim && dropped == 0 {
			dropped++
			return smtptest.ErrDrop
		}
		return nil
	}})
	up, err := send.ParseUpstream(fmt.Sprintf("smtp://%s?tls=none", srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var events []send.Event
	opt := plan.RunOptions{Campaign: name, Opener: &send.Dialer{HELO: "relay.example.org", Timeouts: send.DefaultTimeouts, Upstream: up},
		Policy: send.Policy{Retry: []time.Duration{10 * time.Millisecond}, MaxAge: time.Hour, Cooldown: time.Hour},
		Holder: "test", Host: "h", PID: os.Getpid(),
		Events: func(e send.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }}
	sum, err := plan.Run(ctx, st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != 9 || sum.Campaign.State != plan.CampaignDone {
		t.Errorf("counts %v, state %s; want 9 sent, done", sum.Counts.Total, sum.Campaign.State)
	}
	deferred := 0
	for _, e := range events {
		if e.Email == victim && e.Kind == "deferred" {
			deferred++
			if !strings.Contains(e.Reply, "connection") && !strings.Contains(e.Reply, "EOF") {
				t.Errorf("deferral reply %q does not say the connection dropped", e.Reply)
			}
		}
	}
	if deferred != 1 || dropped != 1 {
		t.Errorf("%s deferred %d times, dropped %d; want 1 and 1", victim, deferred, dropped)
	}
	kept := 0
	for _, m := range srv.Messages() {
		if m.To[0] == victim {
			kept++
		}
	}
	if kept != 1 {
		t.Errorf("%s delivered %d times after the drop, want once", victim, kept)
	}
}

// Pick chooses the one unfinished campaign, refuses to guess among
// several, and for status falls back to the newest.
func TestPick(t *testing.T) {
	ctx := context.Background()
	st, name := planSmall(t, 3, 3, 0)
	if got, err := plan.Pick(ctx, st, false); err != nil || got != name {
		t.Errorf("one planned campaign: %q, %v", got, err)
	}
	c, _, _, _ := st.Campaign(ctx, name)
	st.SetCampaignState(ctx, c.ID, plan.CampaignDone, "")
	var ce *plan.ChoiceError
	if _, err := plan.Pick(ctx, st, false); !errors.As(err, &ce) {
		t.Errorf("every campaign done, run: %v, want a ChoiceError", err)
	}
	if got, err := plan.Pick(ctx, st, true); err != nil || got != name {
		t.Errorf("every campaign done, status: %q, %v; want the newest", got, err)
	}
	tpl, _ := message.ParseTemplate("From: a@example.org\nSubject: x\n\nx\n")
	for _, n := range []string{"one", "two"} {
		_, err := plan.Plan(ctx, st, plan.Options{Clean: listclean.Options{Input: c.ListPath}, Name: n, Template: tpl,
			PerJob: 10, Start: time.Now(), Connections: 1, PerConnection: 1, PerMessage: 1})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := plan.Pick(ctx, st, true); !errors.As(err, &ce) || !strings.Contains(err.Error(), "2 unfinished") {
		t.Errorf("two unfinished: %v, want a ChoiceError naming them", err)
	}
}
