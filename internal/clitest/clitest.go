// Package clitest runs the relayctl binary in tests that need a real
// process: to kill it with SIGKILL, or to send it SIGTERM.
package clitest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Build builds relayctl into dir and returns its path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building relayctl: %v", err)
	}
	bin := filepath.Join(dir, "relayctl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, "github.com/relayctl/relayctl").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Env is the test's environment without RELAYCTL_ settings, which would
// change what the commands do.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAYCTL_") {
			env = append(env, kv)
		}
	}
	return env
}
