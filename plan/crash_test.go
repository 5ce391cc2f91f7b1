package plan_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relayctl/relayctl/internal/clitest"
	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/store"
)

// TestRunCrashResume kills `relayctl run` with SIGKILL at random points of
// a 5,000-recipient campaign, resumes it each time, and checks what the
// receiving server got against what the store says: nobody lost, at most
// one repeat per connection per kill, and every repeat counted as a
// possible duplicate.
func TestRunCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relayctl and kills it mid-run; skipped with -short")
	}
	const (
		recipients  = 5000
		connections = 4
		kills       = 5
		name        = "crash"
	)
	dir := t.TempDir()
	bin := clitest.Build(t, dir)
	db := filepath.Join(dir, "relayctl.db")

	var b strings.Builder
	b.WriteString("email,first_name\n")
	domains := []string{"example.com", "example.net", "example.org", "a.example", "b.test"}
	want := make([]string, recipients)
	for i := range recipients {
		want[i] = fmt.Sprintf("user%d@%s", i, domains[i%len(domains)])
		fmt.Fprintf(&b, "%s,Name%d\n", want[i], i)
	}
	writeFile(t, filepath.Join(dir, "list.csv"), b.String())
	writeFile(t, filepath.Join(dir, "msg.eml"), "From: Club <news@example.org>\nSubject: Hi {{.first_name}}\n\nHello {{.first_name}}\n")
	relayctl(t, bin, dir, "--db", db, "plan", "list.csv", "--message", "msg.eml", "--no-mx", "--name", name,
		"--per-job", fmt.Sprint(recipients), "--connections", fmt.Sprint(connections), "--json")

	rcv := newReceiver(t)
	via := fmt.Sprintf("smtp://%s?tls=none", rcv.srv.Addr)
	rng := rand.New(rand.NewPCG(2026, 5))

	// What each kill left: the connections the server had accepted by
	// then (later ones are later runs'), and the store's view.
	var boundaries []int
	var snaps []snapshot
	var sendingTotal int64
	for k := range kills {
		runArgs := []string{"--db", db, "run", name, "--resume", "--via", via, "--json"}
		child := startRelayctl(t, bin, dir, fmt.Sprintf("run%d", k), runArgs...)
		target := rcv.count() + 1 + rng.IntN(800)
		if err := rcv.waitFor(target, child.exited, 20*time.Second); err != nil {
			child.process.Signal(syscall.SIGKILL)
			t.Fatalf("run %d: %v (stderr: %s)", k, err, child.stderr())
		}
		child.process.Signal(syscall.SIGKILL)
		var ee *exec.ExitError
		if err := <-child.exited; !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run %d: want it killed by SIGKILL, got %v", k, err)
		}
		boundaries = append(boundaries, rcv.srv.Stats().Connections)
		s := readSnapshot(t, db, name)
		// Run k counted, at its start, what kill k-1 left sending.
		if s.possibleDups != sendingTotal {
			t.Errorf("after kill %d: possible_dups %d, want %d (the recipients earlier kills left sending)", k, s.possibleDups, sendingTotal)
		}
		var fresh int
		for _, e := range s.sending {
			if k == 0 || snaps[k-1].stateOf(e) != store.StateSending {
				fresh++
			}
		}
		if fresh > connections {
			t.Errorf("kill %d left %d recipients newly sending, more than the %d connections", k, fresh, connections)
		}
		t.Logf("kill %d at %d messages received: %d sent, %d left sending (%d new)", k, rcv.count(), s.counts[store.StateSent], len(s.sending), fresh)
		sendingTotal += int64(len(s.sending))
		snaps = append(snaps, s)
	}

	final := startRelayctl(t, bin, dir, "final", "--db", db, "run", name, "--resume", "--via", via, "--json")
	select {
	case err := <-final.exited:
		if err != nil {
			t.Fatalf("final run: %v (stderr: %s)", err, final.stderr())
		}
	case <-time.After(40 * time.Second):
		final.kill()
		t.Fatalf("final run did not finish in 40s (stderr: %s)", final.stderr())
	}
	sum := final.summary(t)
	if sum.Status.State != plan.CampaignDone || sum.Status.Counts[store.StateSent] != recipients {
		t.Errorf("final run reported %s, %v; want done, all %d sent", sum.Status.State, sum.Status.Counts, recipients)
	}
	if want := int64(len(snaps[kills-1].sending)); sum.Resent != want {
		t.Errorf("final run reported %d resent, want %d (left sending by the last kill)", sum.Resent, want)
	}
	if sum.Status.PossibleDups != sendingTotal {
		t.Errorf("final run reported %d possible duplicates, want %d", sum.Status.PossibleDups, sendingTotal)
	}

	end := readSnapshot(t, db, name)
	if end.counts[store.StateSent] != recipients || end.campaign.State != plan.CampaignDone {
		t.Errorf("store after the final run: %v, state %s; want all %d sent, done", end.counts, end.campaign.State, recipients)
	}
	if end.possibleDups != sendingTotal || end.possibleDups != sum.Status.PossibleDups {
		t.Errorf("store: possible_dups %d; the runs reported %d, the kills left %d sending", end.possibleDups, sum.Status.PossibleDups, sendingTotal)
	}

	// Which run delivered each message: its connection's.
	runOf := func(conn int) int {
		for k, b := range boundaries {
			if conn <= b {
				return k
			}
		}
		return kills
	}
	runs := map[string][]int{}
	for _, m := range rcv.received() {
		k := runOf(m.conn)
		// Accepted by the server means marked sending before DATA: the kill
		// that ended its run must have found it sending or sent.
		if k < kills {
			if st := snaps[k].stateOf(m.to); st != store.StateSending && st != store.StateSent {
				t.Errorf("%s was delivered by run %d, but the store said %q after kill %d", m.to, k, st, k)
			}
		}
		runs[m.to] = append(runs[m.to], k)
	}
	dupsPerKill := make([]int, kills)
	var dups int64
	for _, rcpt := range want {
		rs := runs[rcpt]
		if len(rs) == 0 {
			t.Errorf("%s never received", rcpt)
			continue
		}
		slices.Sort(rs)
		for i := 1; i < len(rs); i++ {
			prev := rs[i-1]
			if rs[i] == prev {
				t.Errorf("%s delivered twice by run %d (runs: %v)", rcpt, prev, rs)
				continue
			}
			// A repeat is the previous delivery's run dying before it
			// recorded the 250.
			dupsPerKill[prev]++
			dups++
			if snaps[prev].stateOf(rcpt) != store.StateSending {
				t.Errorf("%s delivered by run %d and again by run %d, but kill %d left it %q, not sending",
					rcpt, prev, rs[i], prev, snaps[prev].stateOf(rcpt))
			}
		}
	}
	if len(runs) != recipients {
		t.Errorf("server received %d distinct recipients, want %d", len(runs), recipients)
	}
	for k, n := range dupsPerKill {
		if n > connections {
			t.Errorf("kill %d caused %d duplicates, more than the %d connections", k, n, connections)
		}
	}
	if dups > end.possibleDups {
		t.Errorf("%d messages duplicated, but only %d counted as possible duplicates", dups, end.possibleDups)
	}
	t.Logf("%d messages for %d recipients; duplicates per kill %v; possible_dups %d", len(rcv.received()), recipients, dupsPerKill, end.possibleDups)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// relayctl runs a command to completion (a minute at most) and fails the
// test if it fails.
func relayctl(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	c.Dir, c.Env = dir, clitest.Env()
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("relayctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// child is a relayctl process the test may kill.
type child struct {
	process          *os.Process
	exited           chan error
	stdout, errPath  string
	stdoutF, stderrF *os.File
}

func startRelayctl(t *testing.T, bin, dir, label string, args ...string) *child {
	t.Helper()
	ch := &child{exited: make(chan error, 1), stdout: filepath.Join(dir, label+".out"), errPath: filepath.Join(dir, label+".err")}
	var err error
	if ch.stdoutF, err = os.Create(ch.stdout); err != nil {
		t.Fatal(err)
	}
	if ch.stderrF, err = os.Create(ch.errPath); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(bin, args...)
	c.Dir, c.Env, c.Stdout, c.Stderr = dir, clitest.Env(), ch.stdoutF, ch.stderrF
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ch.process = c.Process
	go func() {
		err := c.Wait()
		ch.stdoutF.Close()
		ch.stderrF.Close()
		ch.exited <- err
	}()
	return ch
}

// kill stops a child the test gives up on, and reaps it.
func (c *child) kill() {
	c.process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *child) stderr() string {
	b, _ := os.ReadFile(c.errPath)
	return strings.TrimSpace(string(b))
}

// runSummary is the last line of `relayctl run --json`.
type runSummary struct {
	Event  string `json:"event"`
	Resent int64  `json:"resent"`
	Status struct {
		State        string           `json:"state"`
		Counts       map[string]int64 `json:"counts"`
		PossibleDups int64            `json:"possible_duplicates"`
	} `json:"status"`
}

func (c *child) summary(t *testing.T) runSummary {
	t.Helper()
	f, err := os.Open(c.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		last = sc.Text()
	}
	var s runSummary
	if err := json.Unmarshal([]byte(last), &s); err != nil || s.Event != "summary" {
		t.Fatalf("last line of run --json is not the summary: %q (%v)", last, err)
	}
	return s
}

// snapshot is the store's view of the campaign between runs.
type snapshot struct {
	campaign     *store.Campaign
	counts       map[string]int64
	possibleDups int64
	state        map[string]string // by address; sent unless due
	sending      []string
}

func readSnapshot(t *testing.T, db, name string) snapshot {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, jobs, _, err := st.Campaign(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := st.CampaignCounts(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{campaign: c, counts: counts.Total, possibleDups: c.PossibleDups, state: map[string]string{}}
	// Every recipient not due (pending, deferred or sending) is sent: no
	// bounces or failures come from this server.
	far := time.Now().Add(1000 * time.Hour)
	for _, j := range jobs {
		ds, _, err := st.DueRecipients(ctx, c.ID, j.Seq, far, store.Start, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			s.state[d.Email] = d.State
			if d.State == store.StateSending {
				s.sending = append(s.sending, d.Email)
			}
		}
	}
	due := int64(len(s.state))
	if want := counts.Total[store.StatePending] + counts.Total[store.StateDeferred] + counts.Total[store.StateSending]; due != want {
		t.Fatalf("store: %d recipients due, counts say %d", due, want)
	}
	if counts.Total[store.StateSent]+due != c.Recipients {
		t.Fatalf("store: %d sent + %d due of %d recipients: some bounced or failed (%v)", counts.Total[store.StateSent], due, c.Recipients, counts.Total)
	}
	return s
}

// stateOf is a snapshot's state for an address.
func (s snapshot) stateOf(email string) string {
	if st, ok := s.state[email]; ok {
		return st
	}
	return store.StateSent
}

// receiver is an smtptest server that notes, for each message, its
// recipient and connection, and wakes a waiting test.
type receiver struct {
	srv    *smtptest.Server
	mu     sync.Mutex
	msgs   []delivery
	notify chan struct{}
}

type delivery struct {
	to   string
	conn int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{srv: smtptest.Start(t, smtptest.Options{}), notify: make(chan struct{}, 1)}
	r.srv.SetHooks(smtptest.Hooks{Data: func(m smtptest.Message) error {
		r.mu.Lock()
		for _, to := range m.To {
			r.msgs = append(r.msgs, delivery{to: to, conn: m.Conn})
		}
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
		return nil
	}})
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *receiver) received() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// waitFor returns once n messages have arrived, or an error if the child
// exits first or the deadline passes.
func (r *receiver) waitFor(n int, exited <-chan error, within time.Duration) error {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for r.count() < n {
		select {
		case <-r.notify:
		case err := <-exited:
			return fmt.Errorf("exited (%v) before the server had %d messages (it has %d)", err, n, r.count())
		case <-deadline.C:
			return fmt.Errorf("server has %d messages after %s, want %d", r.count(), within, n)
		}
	}
	return nil
}
