package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relayctl/relayctl/internal/clitest"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/store"
)

// TestRunSignalStops sends SIGTERM and SIGINT to a run mid-campaign: it
// stops taking recipients, lets the transactions under way finish,
// records every one of them, exits 143 or 130, and a resumed run sends
// the rest with nothing repeated.
func TestRunSignalStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds relayctl and signals it mid-run; skipped with -short")
	}
	dir := t.TempDir()
	bin := clitest.Build(t, dir)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			const recipients = 2000
			name := "sig" + fmt.Sprint(tc.code)
			db := filepath.Join(dir, name+".db")
			var b strings.Builder
			b.WriteString("email,first_name\n")
			for i := range recipients {
				fmt.Fprintf(&b, "user%d@d%d.example.test,Name%d\n", i, i%4, i)
			}
			writeFile(t, filepath.Join(dir, name+".csv"), b.String())
			writeFile(t, filepath.Join(dir, "msg.eml"), "From: Club <news@example.org>\nSubject: Hi {{.first_name}}\n\nHello {{.first_name}}\n")
			relayctl(t, bin, dir, "--db", db, "plan", name+".csv", "--message", "msg.eml", "--no-mx", "--name", name,
				"--per-job", fmt.Sprint(recipients), "--connections", "4")

			rcv := newReceiver(t)
			via := fmt.Sprintf("smtp://%s?tls=none", rcv.srv.Addr)
			child := startRelayctl(t, bin, dir, name, "--db", db, "run", name, "--via", via)
			if err := rcv.waitFor(300, child.exited, 20*time.Second); err != nil {
				child.kill()
				t.Fatalf("%v (stderr: %s)", err, child.stderr())
			}
			child.process.Signal(tc.sig)
			var err error
			select {
			case err = <-child.exited:
			case <-time.After(20 * time.Second):
				child.kill()
				t.Fatal("the run did not stop within 20 s of the signal")
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit: %v, want status %d (stderr: %s)", err, tc.code, child.stderr())
			}

			st, err := store.Open(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			c, _, _, err := st.Campaign(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			counts, err := st.CampaignCounts(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := int64(rcv.count())
			if c.State != plan.CampaignInterrupted {
				t.Errorf("state %q, want interrupted", c.State)
			}
			if counts.Total[store.StateSending] != 0 || counts.Total[store.StateSent] != got {
				t.Errorf("after the signal: %v; the server had %d messages: every one should be recorded sent, none left sending", counts.Total, got)
			}
			if got >= recipients {
				t.Fatalf("the run finished (%d messages) before the signal could stop it", got)
			}

			relayctl(t, bin, dir, "--db", db, "run", name, "--resume", "--via", via)
			seen := map[string]int{}
			for _, d := range rcv.received() {
				seen[d.to]++
			}
			if len(seen) != recipients {
				t.Errorf("%d recipients received mail after the resume, want %d", len(seen), recipients)
			}
			for to, n := range seen {
				if n != 1 {
					t.Errorf("%s received %d copies", to, n)
				}
			}
		})
	}
}
