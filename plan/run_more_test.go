package plan_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

// fastPolicy retries at once (next attempts are stored to the second) and
// pauses a throttling group for longer than any test runs.
var fastPolicy = send.Policy{Retry: []time.Duration{10 * time.Millisecond}, MaxAge: time.Hour, Cooldown: time.Hour}

// relay returns a dialer for srv as a plaintext upstream.
func relay(t *testing.T, srv *smtptest.Server) *send.Dialer {
	t.Helper()
	up, err := send.ParseUpstream(fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	return &send.Dialer{HELO: "relay.example.org", Timeouts: send.Timeouts{Dial: 5 * time.Second, Command: 10 * time.Second, Final: 10 * time.Second}, Upstream: up}
}

func runOptions(name string, o send.Opener) plan.RunOptions {
	return plan.RunOptions{Campaign: name, Opener: o, Policy: fastPolicy, Holder: "test", Host: "h", PID: os.Getpid()}
}

// runCtx bounds a run that should finish by itself.
func runCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// planWith plans n recipients like planSmall (user<i>@d<i%3>.example.test),
// with mod adjusting the options first.
func planWith(t *testing.T, n int, mod func(*plan.Options)) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("email,first_name\n")
	for i := range n {
		fmt.Fprintf(&b, "user%d@d%d.example.test,Name%d\n", i, i%3, i)
	}
	list := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tpl, err := message.ParseTemplate("From: Club <news@example.org>\nSubject: Hi {{.first_name}}\n\nHello {{.first_name}}\n")
	if err != nil {
		t.Fatal(err)
	}
	opt := plan.Options{Clean: listclean.Options{Input: list}, Name: "c", Template: tpl,
		PerJob: n, Start: time.Now(), Connections: 4, PerConnection: 100, PerMessage: 1}
	mod(&opt)
	if _, err := plan.Plan(context.Background(), st, opt); err != nil {
		t.Fatal(err)
	}
	return st, "c"
}

// recipients returns each recipient's state and job, by address.
func recipients(t *testing.T, st *store.Store, name string) (state map[string]string, job map[string]int) {
	t.Helper()
	ctx := context.Background()
	c, _, _, err := st.Campaign(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	state, job = map[string]string{}, map[string]int{}
	err = st.EachRecipient(ctx, c.ID, func(r store.Recipient, s string) error {
		state[r.Email], job[r.Email] = s, r.Job
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state, job
}

// received counts the messages the server took, by recipient.
func received(srv *smtptest.Server) map[string]int {
	out := map[string]int{}
	for _, m := range srv.Messages() {
		for _, to := range m.To {
			out[to]++
		}
	}
	return out
}

// rcptCounter counts RCPT commands by address and refuses with reply
// where refuse says so.
type rcptCounter struct {
	mu     sync.Mutex
	n      map[string]int
	refuse func(to string, attempt int) error
}

func (c *rcptCounter) hook(to string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[to]++
	if c.refuse != nil {
		return c.refuse(to, c.n[to])
	}
	return nil
}

func (c *rcptCounter) count(to string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[to]
}

func (c *rcptCounter) countDomain(domain string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for to, k := range c.n {
		if strings.HasSuffix(to, "@"+domain) {
			n += k
		}
	}
	return n
}

func TestRunRetriesDeferred(t *testing.T) {
	st, name := planSmall(t, 9, 9, 0)
	srv := smtptest.Start(t, smtptest.Options{})
	const grey = "user1@d1.example.test"
	rc := &rcptCounter{refuse: func(to string, attempt int) error {
		if to == grey && attempt == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Greylisted, please try again later"}
		}
		return nil
	}}
	srv.SetHooks(smtptest.Hooks{Rcpt: rc.hook})
	sum, err := plan.Run(runCtx(t), st, runOptions(name, relay(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != 9 || sum.Campaign.State != plan.CampaignDone {
		t.Errorf("counts %v, state %s; want 9 sent, done", sum.Counts.Total, sum.Campaign.State)
	}
	if n := rc.count(grey); n != 2 {
		t.Errorf("%s: %d RCPTs, want 2 (refused, then retried)", grey, n)
	}
	got := received(srv)
	if len(got) != 9 {
		t.Errorf("server got messages for %d recipients, want 9", len(got))
	}
	for to, n := range got {
		if n != 1 {
			t.Errorf("%s got %d messages", to, n)
		}
	}
}

func TestRunHardBounceSuppressed(t *testing.T) {
	st, name := planSmall(t, 9, 9, 0)
	srv := smtptest.Start(t, smtptest.Options{})
	const gone = "user4@d1.example.test"
	srv.SetHooks(smtptest.Hooks{Rcpt: func(to string) error {
		if to == gone {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
		}
		return nil
	}})
	opt := runOptions(name, relay(t, srv))
	opt.MaxBounceRate = 0.5
	sum, err := plan.Run(runCtx(t), st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != 8 || sum.Counts.Total[store.StateBounced] != 1 || sum.Campaign.State != plan.CampaignDone {
		t.Errorf("counts %v, state %s; want 8 sent, 1 bounced, done", sum.Counts.Total, sum.Campaign.State)
	}
	if state, _ := recipients(t, st, name); state[gone] != store.StateBounced {
		t.Errorf("%s is %s, want bounced", gone, state[gone])
	}
	var sups []store.Suppression
	st.EachSuppression(context.Background(), func(s store.Suppression) error {
		sups = append(sups, s)
		return nil
	})
	if len(sups) != 1 || sups[0].Value != gone || sups[0].Kind != store.SuppressAddress {
		t.Fatalf("suppressions %+v, want %s alone", sups, gone)
	}
	if !strings.Contains(sups[0].Reason, "5.1.1") || sups[0].Source != name {
		t.Errorf("suppression reason %q, source %q", sups[0].Reason, sups[0].Source)
	}
}

func TestRunThrottledGroupPaused(t *testing.T) {
	st, name := planSmall(t, 30, 30, 0)
	srv := smtptest.Start(t, smtptest.Options{})
	const throttled = "d1.example.test"
	rc := &rcptCounter{refuse: func(to string, _ int) error {
		if strings.HasSuffix(to, "@"+throttled) {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Try again later, closing connection."}
		}
		return nil
	}}
	srv.SetHooks(smtptest.Hooks{Rcpt: rc.hook})
	opt := runOptions(name, relay(t, srv))
	opt.Once = true // the pause lasts an hour
	start := time.Now()
	sum, err := plan.Run(runCtx(t), st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Campaign.State != plan.CampaignWaiting {
		t.Errorf("state %s, want waiting", sum.Campaign.State)
	}
	p, ok := sum.Pauses[throttled]
	if !ok || len(sum.Pauses) != 1 {
		t.Fatalf("pauses %+v, want %s alone", sum.Pauses, throttled)
	}
	if p.Until.Before(start.Add(59*time.Minute)) || p.Cooldown != time.Hour || !strings.Contains(p.Reason, "421 4.7.0") {
		t.Errorf("pause %+v, want an hour for 421 4.7.0", p)
	}
	// The group pauses at the first throttle: no RCPT to it starts after
	// that; those already under way (at most its 4 connections' worth)
	// meet the throttle too.
	met := rc.countDomain(throttled)
	if met < 1 || met > 4 {
		t.Errorf("%d RCPTs to %s, want 1 to 4: the group pauses at the first throttle", met, throttled)
	}
	state, _ := recipients(t, st, name)
	for to, s := range state {
		want := store.StateSent
		if strings.HasSuffix(to, "@"+throttled) {
			want = store.StateDeferred
		}
		if s != want {
			t.Errorf("%s is %s, want %s", to, s, want)
		}
	}
	if got := received(srv); len(got) != 20 {
		t.Errorf("server got messages for %d recipients, want the other domains' 20", len(got))
	}
	// The throttled group's recipients wait for the pause's end; only
	// those that met the throttle count an attempt.
	c, _, _, err := st.Campaign(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if due := dueAt(t, st, c.ID, start.Add(30*time.Minute)); len(due) != 0 {
		t.Errorf("%d recipients due during the pause", len(due))
	}
	due := dueAt(t, st, c.ID, start.Add(2*time.Hour))
	attempts := 0
	for _, d := range due {
		attempts += d.Attempts
	}
	if len(due) != 10 || attempts != met {
		t.Errorf("after the pause: %d due with %d attempts between them, want 10 due, %d attempts", len(due), attempts, met)
	}
}

func dueAt(t *testing.T, st *store.Store, campaignID int64, at time.Time) []store.Due {
	t.Helper()
	out, _, err := st.DueRecipients(context.Background(), campaignID, 1, at, store.Start, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunWrongPassword(t *testing.T) {
	st, name := planSmall(t, 9, 9, 0)
	srv := smtptest.Start(t, smtptest.Options{Users: map[string]string{"postmaster": "s3cret"}})
	d := relay(t, srv)
	d.Upstream.Username, d.Upstream.Password = "postmaster", "wrong"
	sum, err := plan.Run(runCtx(t), st, runOptions(name, d))
	var fe *send.FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v, want a *send.FatalError", err)
	}
	if sum == nil {
		t.Fatal("no summary")
	}
	if sum.Campaign.State != plan.CampaignStopped {
		t.Errorf("state %s, want stopped", sum.Campaign.State)
	}
	for _, s := range []string{store.StateFailed, store.StateBounced, store.StateSent, store.StateSending} {
		if n := sum.Counts.Total[s]; n != 0 {
			t.Errorf("%d recipients %s, want none: the sender's fault is not theirs", n, s)
		}
	}
	if len(srv.Messages()) != 0 {
		t.Error("a message went through")
	}

	// The cron line (--resume) leaves a stopped campaign alone, with the
	// reason; with the password fixed, --resume-stopped sends it.
	d.Upstream.Password = "s3cret"
	opt := runOptions(name, d)
	opt.Resume = true
	var se *plan.StoppedError
	if _, err := plan.Run(runCtx(t), st, opt); !errors.As(err, &se) || !strings.Contains(err.Error(), "535 5.7.8") {
		t.Fatalf("--resume on a stopped campaign: %v, want a *plan.StoppedError naming the refusal", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("--resume sent a stopped campaign's messages")
	}
	opt.ResumeStopped = true
	sum, err = plan.Run(runCtx(t), st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Campaign.State != plan.CampaignDone || len(srv.Messages()) != 9 {
		t.Errorf("after --resume-stopped: %s, %d messages; want done, 9", sum.Campaign.State, len(srv.Messages()))
	}
}

// routeOpener opens each domain's sessions with its own opener.
type routeOpener map[string]send.Opener

func (r routeOpener) Open(ctx context.Context, domain string) (*send.Session, error) {
	return r[domain].Open(ctx, domain)
}

// gatedOpener opens once gate is closed.
type gatedOpener struct {
	gate <-chan struct{}
	send.Opener
}

func (g gatedOpener) Open(ctx context.Context, domain string) (*send.Session, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Opener.Open(ctx, domain)
}

// silentServer accepts connections and never greets; ready closes once it
// holds n of them.
func silentServer(t *testing.T, n int) (addr string, ready <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			if len(conns) == n {
				close(ch)
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), ch
}

// TestRunFatalLeavesConnectingUntouched: when one connection meets a fatal
// refusal while others are still connecting, the run stops, and the
// recipients those others had taken are not charged an attempt or
// deferred with the run's own cancellation as their reply: nothing was
// said to them.
func TestRunFatalLeavesConnectingUntouched(t *testing.T) {
	st, name := planSmall(t, 9, 9, 0) // d0, d1, d2: one connection each
	auth := smtptest.Start(t, smtptest.Options{Users: map[string]string{"postmaster": "s3cret"}})
	bad := relay(t, auth)
	bad.Upstream.Username, bad.Upstream.Password = "postmaster", "wrong"
	silentAddr, connecting := silentServer(t, 2)
	up, err := send.ParseUpstream("smtp://" + silentAddr + "?tls=none")
	if err != nil {
		t.Fatal(err)
	}
	slow := &send.Dialer{HELO: "relay.example.org", Timeouts: send.Timeouts{Dial: 5 * time.Second, Command: time.Minute, Final: time.Minute}, Upstream: up}
	// d1's and d2's connections wait for a greeting; then d0's meets the
	// wrong password.
	opener := routeOpener{"d0.example.test": gatedOpener{connecting, bad}, "d1.example.test": slow, "d2.example.test": slow}
	var mu sync.Mutex
	var events []send.Event
	opt := runOptions(name, opener)
	opt.Events = func(e send.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	sum, err := plan.Run(runCtx(t), st, opt)
	var fe *send.FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v, want a *send.FatalError", err)
	}
	if n := sum.Counts.Total[store.StatePending]; n != 9 {
		t.Errorf("counts %v, want all 9 pending", sum.Counts.Total)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range events {
		t.Errorf("event %s for %s: %q", e.Kind, e.Email, e.Reply)
	}
}

func TestRunConnectionLimits(t *testing.T) {
	st, name := planWith(t, 30, func(o *plan.Options) { o.PerConnection, o.Connections = 3, 2 })
	srv := smtptest.Start(t, smtptest.Options{})
	// Each connection's first and last message: the client holds the
	// connection open throughout, so overlapping spans are connections
	// open at once, exactly.
	var mu sync.Mutex
	span := map[int][2]time.Time{}
	srv.SetHooks(smtptest.Hooks{Data: func(m smtptest.Message) error {
		mu.Lock()
		defer mu.Unlock()
		s, ok := span[m.Conn]
		if !ok {
			s[0] = time.Now()
		}
		s[1] = time.Now()
		span[m.Conn] = s
		return nil
	}})
	sum, err := plan.Run(runCtx(t), st, runOptions(name, relay(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != 30 {
		t.Errorf("counts %v, want 30 sent", sum.Counts.Total)
	}
	stats := srv.Stats()
	for conn, n := range stats.PerConnection {
		if n > 3 {
			t.Errorf("connection %d carried %d messages, over --per-connection 3", conn, n)
		}
	}
	if stats.Connections < 10 {
		t.Errorf("%d connections for 30 messages at 3 a connection", stats.Connections)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := maxOverlap(span); n > 2 {
		t.Errorf("%d connections carrying messages at once, over --connections 2", n)
	}
	// smtptest counts a connection open until go-smtp's Logout, which
	// comes after the 221 reply to QUIT: the client may already have
	// opened the next one, so the server may count one more than the
	// client ever holds (seen with GOMAXPROCS=1).
	if stats.MaxConcurrent > 2+1 {
		t.Errorf("%d connections open at once, over --connections 2", stats.MaxConcurrent)
	}
}

// maxOverlap returns how many of the spans overlap at the most.
func maxOverlap(spans map[int][2]time.Time) int {
	most := 0
	for _, s := range spans {
		n := 0
		for _, o := range spans {
			if !o[0].After(s[0]) && !o[1].Before(s[0]) {
				n++ // o is open when s starts
			}
		}
		most = max(most, n)
	}
	return most
}

func TestRunJobGap(t *testing.T) {
	st, name := planSmall(t, 6, 3, time.Second)
	srv := smtptest.Start(t, smtptest.Options{})
	var mu sync.Mutex
	at := map[string]time.Time{}
	srv.SetHooks(smtptest.Hooks{Data: func(m smtptest.Message) error {
		mu.Lock()
		defer mu.Unlock()
		at[m.To[0]] = time.Now()
		return nil
	}})
	sum, err := plan.Run(runCtx(t), st, runOptions(name, relay(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != 6 || sum.Campaign.State != plan.CampaignDone {
		t.Fatalf("counts %v, state %s", sum.Counts.Total, sum.Campaign.State)
	}
	_, job := recipients(t, st, name)
	var lastOf1, firstOf2 time.Time
	mu.Lock()
	defer mu.Unlock()
	for to, tm := range at {
		switch job[to] {
		case 1:
			if tm.After(lastOf1) {
				lastOf1 = tm
			}
		case 2:
			if firstOf2.IsZero() || tm.Before(firstOf2) {
				firstOf2 = tm
			}
		}
	}
	if lastOf1.IsZero() || firstOf2.IsZero() {
		t.Fatalf("messages %v by job %v: want both jobs", at, job)
	}
	if gap := firstOf2.Sub(lastOf1); gap < time.Second {
		t.Errorf("job 2 started %s after job 1's last message, want at least the 1s gap", gap)
	}
}

func TestRunProgressNeedsResume(t *testing.T) {
	st, name := planSmall(t, 6, 3, time.Hour)
	srv := smtptest.Start(t, smtptest.Options{})
	d := relay(t, srv)
	opt := runOptions(name, d)
	opt.Once = true
	sum, err := plan.Run(runCtx(t), st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != 3 || sum.Campaign.State != plan.CampaignWaiting {
		t.Fatalf("first run: counts %v, state %s; want job 1's 3 sent, waiting", sum.Counts.Total, sum.Campaign.State)
	}

	if _, err := plan.Run(runCtx(t), st, opt); !errors.Is(err, plan.ErrProgress) {
		t.Fatalf("second run without Resume: %v, want ErrProgress", err)
	}
	if n := len(srv.Messages()); n != 3 {
		t.Fatalf("server got %d messages after the refused run, want 3", n)
	}

	// Resume, two hours on: job 2 is due.
	opt.Resume, opt.Once = true, false
	opt.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	sum, err = plan.Run(runCtx(t), st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != 6 || sum.Campaign.State != plan.CampaignDone || sum.Resent != 0 {
		t.Errorf("resumed: counts %v, state %s, resent %d; want 6 sent, done, none resent", sum.Counts.Total, sum.Campaign.State, sum.Resent)
	}
	got := received(srv)
	if len(got) != 6 {
		t.Errorf("server got messages for %d recipients, want 6", len(got))
	}
	for to, n := range got {
		if n != 1 {
			t.Errorf("%s got %d messages", to, n)
		}
	}
}

func TestRunOnceBeforeStart(t *testing.T) {
	st, name := planWith(t, 6, func(o *plan.Options) { o.Start = time.Now().Add(time.Hour) })
	srv := smtptest.Start(t, smtptest.Options{})
	opt := runOptions(name, relay(t, srv))
	opt.Once = true
	sum, err := plan.Run(runCtx(t), st, opt)
	if err != nil {
		t.Fatal(err)
	}
	if counts := storeCounts(t, st, name); !sum.Idle || counts[store.StatePending] != 6 || sum.Campaign.State != plan.CampaignWaiting {
		t.Errorf("idle %v, counts %v, state %s; want idle, 6 pending, waiting", sum.Idle, counts, sum.Campaign.State)
	}
	if n := srv.Stats().Connections; n != 0 {
		t.Errorf("%d connections before the first job's start", n)
	}
}

// TestRunNotAfterExpires: job 2 cannot start (a gap after job 1) by
// --not-after, which has passed: it expires, never sent late.
func TestRunNotAfterExpires(t *testing.T) {
	base := time.Now()
	st, name := planWith(t, 6, func(o *plan.Options) {
		o.PerJob, o.Gap = 3, 90*time.Minute
		o.Start, o.NotAfter = base.Add(-2*time.Hour), base.Add(-29*time.Minute)
	})
	srv := smtptest.Start(t, smtptest.Options{})
	sum, err := plan.Run(runCtx(t), st, runOptions(name, relay(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Campaign.State != plan.CampaignExpired || !strings.Contains(sum.Campaign.StateDetail, "not-after") {
		t.Errorf("state %s (%s), want expired", sum.Campaign.State, sum.Campaign.StateDetail)
	}
	state, job := recipients(t, st, name)
	got := received(srv)
	for to, s := range state {
		if job[to] == 2 && (s != store.StatePending || got[to] != 0) {
			t.Errorf("job 2's %s is %s with %d messages, want pending and unsent", to, s, got[to])
		}
	}
}

// TestRunNotAfterPassedBeforeFirstJob: a run that begins after
// --not-after sends nothing, even though the job's planned start was
// before it ("jobs that cannot start by then are never sent late").
func TestRunNotAfterPassedBeforeFirstJob(t *testing.T) {
	base := time.Now()
	st, name := planWith(t, 6, func(o *plan.Options) {
		o.Start, o.NotAfter = base.Add(-2*time.Hour), base.Add(-time.Hour)
	})
	srv := smtptest.Start(t, smtptest.Options{})
	sum, err := plan.Run(runCtx(t), st, runOptions(name, relay(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Campaign.State != plan.CampaignExpired {
		t.Errorf("state %s, want expired", sum.Campaign.State)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages sent an hour after --not-after", n)
	}
}

// TestRunConnectionsSpanChunks: a job longer than the chunk a run holds
// in memory keeps its upstream connections from one chunk to the next,
// still within the per-connection limit, and closes them when it ends.
func TestRunConnectionsSpanChunks(t *testing.T) {
	const n, perConn = 2600, 1000 // two chunks
	st, name := planWith(t, n, func(o *plan.Options) {
		o.PerConnection, o.Connections = perConn, 2
		tab, err := plan.DefaultTable().Override(&plan.Table{Default: plan.Limits{PerConnection: perConn}})
		if err != nil {
			t.Fatal(err)
		}
		o.Table = tab
	})
	srv := smtptest.Start(t, smtptest.Options{})
	sum, err := plan.Run(runCtx(t), st, runOptions(name, relay(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Counts.Total[store.StateSent] != n {
		t.Fatalf("counts %v, want %d sent", sum.Counts.Total, n)
	}
	stats := srv.Stats()
	for conn, k := range stats.PerConnection {
		if k > perConn {
			t.Errorf("connection %d carried %d messages, over --per-connection %d", conn, k, perConn)
		}
	}
	// 2,600 at 1,000 a connection: 3 connections, or 4 if the two
	// connections' shares end unevenly; closing at the chunk's end would
	// take at least 4, one more per connection at each chunk.
	if stats.Connections > 4 {
		t.Errorf("%d connections for %d messages at %d a connection", stats.Connections, n, perConn)
	}
	// The server sees a connection end just after its QUIT's reply.
	for deadline := time.Now().Add(5 * time.Second); srv.Stats().Open != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after the run", srv.Stats().Open)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunSkipsSuppressedSincePlan: an address or a domain put on the
// suppression list after the plan (an unsubscribe, a bounce in another
// campaign) is not sent to; the recipient ends suppressed, with why.
func TestRunSkipsSuppressedSincePlan(t *testing.T) {
	st, name := planSmall(t, 9, 9, 0) // user<i>@d<i%3>.example.test
	ctx := context.Background()
	for _, sup := range []store.Suppression{
		{Value: "user0@d0.example.test", Kind: store.SuppressAddress, Reason: "unsubscribed"},
		{Value: "d2.example.test", Kind: store.SuppressDomain, Reason: "closed down"},
	} {
		if err := st.AddSuppression(ctx, sup); err != nil {
			t.Fatal(err)
		}
	}
	srv := smtptest.Start(t, smtptest.Options{})
	sum, err := plan.Run(runCtx(t), st, runOptions(name, relay(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.Counts.Total[store.StateSuppressed]; got != 4 {
		t.Errorf("%d suppressed, want 4 (user0, and d2's three)", got)
	}
	if got := sum.Counts.Total[store.StateSent]; got != 5 {
		t.Errorf("%d sent, want 5", got)
	}
	got := received(srv)
	for to := range got {
		if to == "user0@d0.example.test" || strings.HasSuffix(to, "@d2.example.test") {
			t.Errorf("%s received a message after being suppressed", to)
		}
	}
	state, _ := recipients(t, st, name)
	if state["user0@d0.example.test"] != store.StateSuppressed || state["user2@d2.example.test"] != store.StateSuppressed {
		t.Errorf("states %v", state)
	}
}

// TestRunStopsWhenLockTakenOver: a run that stalled long enough for
// another to take its lock over stops at its next heartbeat, and leaves
// the campaign's state to the run that holds the lock now.
func TestRunStopsWhenLockTakenOver(t *testing.T) {
	st, name := planSmall(t, 200, 200, 0)
	srv := smtptest.Start(t, smtptest.Options{})
	c, _, _, err := st.Campaign(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	took := make(chan struct{})
	var once sync.Once
	srv.SetHooks(smtptest.Hooks{Data: func(smtptest.Message) error {
		// Another run, finding the lock stale, takes it over while this
		// one is sending; this run goes on until its heartbeat notices.
		once.Do(func() {
			if _, err := st.AcquireLock(context.Background(), c.ID, "other run", "elsewhere", 1, 0, nil); err != nil {
				t.Error(err)
			}
			close(took)
		})
		<-took
		time.Sleep(5 * time.Millisecond) // a slow server: the heartbeat comes before the job ends
		return nil
	}})
	opt := runOptions(name, relay(t, srv))
	opt.Heartbeat = 20 * time.Millisecond
	_, err = plan.Run(runCtx(t), st, opt)
	if !errors.Is(err, store.ErrLockLost) || !errors.Is(err, store.ErrLocked) {
		t.Fatalf("error %v, want the lock lost (an ErrLocked)", err)
	}
	if n := len(srv.Messages()); n >= 200 {
		t.Errorf("%d messages: the run went on to the end after losing its lock", n)
	}
	c, _, _, err = st.Campaign(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if c.State == plan.CampaignInterrupted || c.State == plan.CampaignDone {
		t.Errorf("campaign state %s: the run that lost the lock wrote it", c.State)
	}
	// What it sent is recorded: nothing the server got is left pending.
	state, _ := recipients(t, st, name)
	for to, n := range received(srv) {
		if n > 0 && state[to] != store.StateSent {
			t.Errorf("%s received but %s", to, state[to])
		}
	}
}

// storeCounts is the campaign's recipients by state, from the store.
func storeCounts(t *testing.T, st *store.Store, name string) map[string]int64 {
	t.Helper()
	c, _, _, err := st.Campaign(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := st.CampaignCounts(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return counts.Total
}

// TestRunUnreachableDestinationTriedOnce: a domain whose server cannot be
// reached is tried once a job, not once per recipient (each would wait
// out its own connect timeout); its recipients are deferred, and the
// other domains are delivered.
func TestRunUnreachableDestinationTriedOnce(t *testing.T) {
	st, name := planWith(t, 30, func(o *plan.Options) {})
	srv := smtptest.Start(t, smtptest.Options{})
	// d0's "server" accepts and hangs up at once: the greeting never comes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	accepted := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	dead := &send.Dialer{HELO: "relay.example.org", Timeouts: send.Timeouts{Dial: 5 * time.Second, Command: 10 * time.Second, Final: 10 * time.Second},
		Upstream: &send.Upstream{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Mode: send.TLSNone}}
	live := relay(t, srv)
	opt := runOptions(name, routeOpener{"d0.example.test": dead, "d1.example.test": live, "d2.example.test": live})
	opt.Direct = true
	opt.Once = true
	opt.Policy.Retry = []time.Duration{time.Hour} // one pass: --once stops with d0 deferred
	if _, err := plan.Run(runCtx(t), st, opt); err != nil {
		t.Fatal(err)
	}
	state, _ := recipients(t, st, name)
	for email, s := range state {
		want := store.StateSent
		if strings.HasSuffix(email, "@d0.example.test") {
			want = store.StateDeferred
		}
		if s != want {
			t.Errorf("%s: %s, want %s", email, s, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if accepted != 1 {
		t.Errorf("the unreachable domain's server got %d connections for its 10 recipients, want 1", accepted)
	}
	if got := len(srv.Messages()); got != 20 {
		t.Errorf("the other domains got %d messages, want 20", got)
	}
}
