package relay_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relayctl/relayctl/relay"
)

// Python's smtplib, as applications use it, submits through STARTTLS and
// login: testdata/smtplib_client.py.
func TestPythonSmtplibSubmits(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 not found: CI runs this test with Python's smtplib")
		}
		t.Skip("python3 not found")
	}
	t.Parallel()
	cfg, pool, caPEM := svConfig(t)
	r := svStart(t, cfg, pool)
	r.addUsers(t)
	_, port, err := net.SplitHostPort(r.listen(t, relay.Submission))
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, user, password string
	}{
		// smtplib prefers CRAM-MD5, which alice may use.
		{"CRAM-MD5 user", "alice", svAlicePassword},
		// bob may not: smtplib's CRAM-MD5 fails, and it falls back to PLAIN.
		{"password-only user", "bob", svBobPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			before := len(r.queue(t))
			from := tc.user + "@example.com"
			cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "smtplib_client.py"))
			cmd.Env = append(os.Environ(),
				"RELAY_HOST=127.0.0.1", "RELAY_PORT="+port, "RELAY_CA="+ca,
				"RELAY_USER="+tc.user, "RELAY_PASSWORD="+tc.password,
				"RELAY_FROM="+from, "RELAY_TO=carol@example.net")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("smtplib_client.py: %v\n%s", err, out)
			}
			q := r.queue(t)
			if len(q) != before+1 {
				t.Fatalf("queue holds %d messages, want %d", len(q), before+1)
			}
			e, rcpts, body := r.queued(t, q[len(q)-1].ID)
			if e.User != tc.user || e.From != from || len(rcpts) != 1 || rcpts[0] != "carol@example.net" {
				t.Errorf("queued user %q from %q to %v, want %s, %s, [carol@example.net]", e.User, e.From, rcpts, tc.user, from)
			}
			if !bytes.HasPrefix(body, []byte("Received: from python.test ([127.0.0.1])\r\n\tby relay.test (relayctl) with ESMTPSA;")) {
				t.Errorf("body does not begin with the Received field:\n%q", body)
			}
			if !bytes.HasSuffix(body, []byte("\r\nSent by Python's smtplib.\r\n.A line that starts with a dot.\r\n")) {
				t.Errorf("body does not end with the message, dots unstuffed:\n%q", body)
			}
		})
	}
}
