package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/internal/clitest"
	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/store"
)

// TestDeliverSurvivesSIGKILL relays 1,000 messages through `relayctl
// serve` while the destination holds every delivery, kills the server
// with SIGKILL the moment the last 250 is read, restarts it on the same
// database, and checks that the destination gets every message: nothing
// acknowledged is lost, and the only repeats are the deliveries under way
// at the kill.
func TestDeliverSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relayctl and kills it; skipped with -short")
	}
	const (
		messages    = 1000
		clients     = 4
		connections = 4 // the relay's outgoing
	)
	dir := t.TempDir()
	bin := clitest.Build(t, dir)
	db := filepath.Join(dir, "relayctl.db")

	dest := smtptest.Start(t, smtptest.Options{})
	rcv := dlNewReceiver(t, dest)

	// What each message is: its Message-ID, and its one recipient.
	rcptOf := map[string]string{}
	ids := make([]string, messages)
	for i := range ids {
		ids[i] = fmt.Sprintf("<crash-%04d@example.com>", i)
		rcptOf[ids[i]] = fmt.Sprintf("user%d@%s", i, []string{"example.net", "example.org"}[i%2])
	}

	first, addr := dlStartServe(t, bin, dir, "first", db, dest.Port, connections)
	var acked atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			cl, err := smtp.Dial(addr)
			if err != nil {
				t.Errorf("client %d: %v", c, err)
				return
			}
			defer cl.Close()
			for i := c; i < messages; i += clients {
				body := fmt.Sprintf("Subject: Crash %d\r\nFrom: App <app@example.com>\r\nMessage-ID: %s\r\n\r\nMessage %d.\r\n", i, ids[i], i)
				if err := dlSend(cl, "app@example.com", []string{rcptOf[ids[i]]}, body); err != nil {
					t.Errorf("client %d, message %d: %v", c, i, err)
					return
				}
				if acked.Add(1) == messages {
					first.process.Signal(syscall.SIGKILL) // at once: every message has its 250
				}
			}
		})
	}
	wg.Wait()
	if acked.Load() != messages {
		first.kill()
		t.Fatalf("%d of %d messages acknowledged (stderr: %s)", acked.Load(), messages, first.stderr())
	}
	var ee *exec.ExitError
	if err := first.wait(10 * time.Second); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("want the server killed by SIGKILL, got %v (stderr: %s)", err, first.stderr())
	}

	// Nothing could be delivered (the destination holds each DATA): all
	// 1,000 are in the queue, and at most one per connection is marked
	// sending.
	queued, sending := dlQueueAtKill(t, db)
	if queued != messages {
		t.Errorf("%d messages queued at the kill, want all %d", queued, messages)
	}
	if sending > connections {
		t.Errorf("%d recipients sending at the kill, more than the %d connections", sending, connections)
	}
	t.Logf("killed after the 250 for message %d: %d queued, %d sending, %d deliveries held by the destination", messages, queued, sending, rcv.held.Load())

	// The held deliveries now complete: the killed server never learned
	// of it, so they are the duplicates to come.
	rcv.release()
	start := time.Now()
	second, _ := dlStartServe(t, bin, dir, "second", db, dest.Port, connections)
	if err := rcv.waitAll(ids, second.exited, 60*time.Second); err != nil {
		second.kill()
		t.Fatalf("after the restart: %v (stderr: %s)", err, second.stderr())
	}
	drained := time.Since(start)

	// The relay purges what it delivered.
	eventually(t, 20*time.Second, "relayctl queue list --json to print []", func() bool {
		return dlQueueList(t, bin, dir, db) == 0
	}, second.stderr)

	got := rcv.received()
	dups := 0
	for _, id := range ids {
		ms := got[id]
		dups += len(ms) - 1
		for _, m := range ms {
			if m.From != "app@example.com" || len(m.To) != 1 || m.To[0] != rcptOf[id] {
				t.Errorf("%s arrived from %q to %v, want from app@example.com to %s", id, m.From, m.To, rcptOf[id])
			}
		}
	}
	if len(got) != messages {
		t.Errorf("destination received %d distinct messages, want %d (and no notices)", len(got), messages)
	}
	// A delivery reaches DATA only once marked sending: a repeat is one of
	// those.
	if dups > sending {
		t.Errorf("%d messages duplicated; only %d were sending at the kill", dups, sending)
	}
	t.Logf("restart delivered all %d in %s; %d duplicates (the deliveries under way at the kill)", messages, drained.Round(time.Millisecond), dups)

	// Recovery is logged when there is something to recover.
	if rec := dlLogLines(t, second.stderr(), "recovered"); sending > 0 && (len(rec) != 1 || rec[0]["recipients"] != float64(sending)) ||
		sending == 0 && len(rec) != 0 {
		t.Errorf("restarted server logged recovery %v, want it for the %d recipients left sending", rec, sending)
	}

	second.process.Signal(syscall.SIGTERM)
	if err := second.wait(40 * time.Second); err != nil {
		t.Errorf("after SIGTERM: %v, want exit status 0 (stderr: %s)", err, second.stderr())
	}
}

// dlReceiver holds each DATA until released, then keeps the messages by
// Message-ID.
type dlReceiver struct {
	gate    chan struct{}
	once    sync.Once
	held    atomic.Int64 // deliveries that waited at the gate
	mu      sync.Mutex
	byID    map[string][]smtptest.Message
	arrived chan struct{}
}

func dlNewReceiver(t *testing.T, dest *smtptest.Server) *dlReceiver {
	r := &dlReceiver{gate: make(chan struct{}), byID: map[string][]smtptest.Message{}, arrived: make(chan struct{}, 1)}
	// Registered after the server's own cleanup, so it runs first: a hook
	// still held would keep the server from stopping.
	t.Cleanup(r.release)
	dest.SetHooks(smtptest.Hooks{Data: func(m smtptest.Message) error {
		select {
		case <-r.gate:
		default:
			r.held.Add(1)
			<-r.gate
		}
		e, err := message.Read(bytes.NewReader(m.Data))
		if err != nil {
			t.Errorf("destination received an unreadable message: %v", err)
			return nil
		}
		r.mu.Lock()
		id := e.Header.Get("Message-ID")
		r.byID[id] = append(r.byID[id], m)
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
		return nil
	}})
	return r
}

func (r *dlReceiver) release() { r.once.Do(func() { close(r.gate) }) }

func (r *dlReceiver) received() map[string][]smtptest.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]smtptest.Message, len(r.byID))
	for k, v := range r.byID {
		out[k] = append([]smtptest.Message(nil), v...)
	}
	return out
}

// waitAll returns once every id has arrived, or an error if the server
// exits first or the time is up.
func (r *dlReceiver) waitAll(ids []string, exited <-chan error, within time.Duration) error {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	missing := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		n := 0
		for _, id := range ids {
			if len(r.byID[id]) == 0 {
				n++
			}
		}
		return n
	}
	for {
		n := missing()
		if n == 0 {
			return nil
		}
		select {
		case <-r.arrived:
		case err := <-exited:
			return fmt.Errorf("server exited (%v) with %d messages undelivered", err, n)
		case <-deadline.C:
			return fmt.Errorf("%d of %d messages still undelivered after %s", n, len(ids), within)
		}
	}
}

// dlChild is a relayctl process.
type dlChild struct {
	process *os.Process
	exited  chan error // gets Wait's error, once
	errPath string
}

// wait returns the process's exit, killing it if it takes longer than
// within.
func (c *dlChild) wait(within time.Duration) error {
	select {
	case err := <-c.exited:
		return err
	case <-time.After(within):
		c.kill()
		return fmt.Errorf("still running after %s", within)
	}
}

func (c *dlChild) kill() {
	c.process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *dlChild) stderr() string {
	b, _ := os.ReadFile(c.errPath)
	return strings.TrimSpace(string(b))
}

// dlStartServe starts `relayctl serve` on a free loopback port,
// delivering to 127.0.0.1:destPort, and returns once it answers SMTP,
// with its address. The process is killed when the test ends, if still
// running.
func dlStartServe(t *testing.T, bin, dir, label, db string, destPort, connections int) (*dlChild, string) {
	t.Helper()
	for try := 0; ; try++ {
		a := dlFreeAddr(t)
		c := &dlChild{exited: make(chan error, 1), errPath: filepath.Join(dir, fmt.Sprintf("%s-%d.err", label, try))}
		errFile, err := os.Create(c.errPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--db", db, "serve", "--listen", a, "--allow-ip", "127.0.0.1",
			"--via", fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", destPort), "--hostname", "relay.test",
			"--messages-per-minute", "0", "--recipients-per-hour", "0", "--connections", fmt.Sprint(connections),
			"--log-format", "json")
		cmd.Dir, cmd.Env, cmd.Stderr = dir, clitest.Env(), errFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.process = cmd.Process
		go func() {
			err := cmd.Wait()
			errFile.Close()
			c.exited <- err
		}()
		t.Cleanup(func() { c.process.Signal(syscall.SIGKILL) }) // ErrProcessDone if it has exited
		err = dlAwaitSMTP(a, c.exited, 20*time.Second)
		if err == nil {
			return c, a
		}
		// Another process may have taken the free port meanwhile.
		if try < 2 && strings.Contains(c.stderr(), "address already in use") {
			continue
		}
		t.Fatalf("relayctl serve on %s: %v (stderr: %s)", a, err, c.stderr())
	}
}

// dlFreeAddr returns a loopback address with a port free a moment ago.
func dlFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// dlAwaitSMTP returns once addr greets an SMTP client, or an error if the
// process exits first or within passes. The exit, if any, is put back for
// the caller.
func dlAwaitSMTP(addr string, exited chan error, within time.Duration) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := smtp.Dial(addr); err == nil {
			c.Quit()
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("no SMTP greeting within %s: %v", within, err)
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited: %v", err)
		case <-tick.C:
		}
	}
}

// dlQueueAtKill reads the queue a killed server left: how many messages,
// and how many recipients it was sending.
func dlQueueAtKill(t *testing.T, db string) (queued, sending int) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, q := range dlQueued(t, st) {
		queued++
		_, rs, _, err := st.QueuedMessage(ctx, q.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.State == store.StateSending {
				sending++
			}
		}
	}
	return queued, sending
}

// dlQueueList runs `relayctl queue list --json` and returns how many
// messages it lists.
func dlQueueList(t *testing.T, bin, dir, db string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--db", db, "queue", "list", "--json")
	cmd.Dir, cmd.Env = dir, clitest.Env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("relayctl queue list --json: %v\n%s", err, stderr.String())
	}
	var list []json.RawMessage
	if err := json.Unmarshal(out, &list); err != nil || list == nil {
		t.Fatalf("relayctl queue list --json printed %q, want a JSON array (%v)", out, err)
	}
	return len(list)
}

// dlLogLines returns the JSON log lines of a server's standard error
// whose msg is msg.
func dlLogLines(t *testing.T, stderr, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(stderr) {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}
