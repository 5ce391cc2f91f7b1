package cmd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relayctl/relayctl/internal/smtptest"
)

// TestRunStoppedCampaignExitCodes is the cron contract for a campaign a
// fatal reply stopped: the run that meets the refusal exits 3; every
// --resume after it exits 3 again at once, sends nothing and names
// --resume-stopped; --resume-stopped, once the password is right, sends
// the campaign and exits 0.
func TestRunStoppedCampaignExitCodes(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Users: map[string]string{"postmaster": cliPassword}})
	dir := t.TempDir()
	db := filepath.Join(dir, "relayctl.db")
	list := filepath.Join(dir, "list.csv")
	msg := filepath.Join(dir, "msg.eml")
	if err := os.WriteFile(list, []byte("email,first_name\nann@example.com,Ann\nbob@example.org,Bob\ncy@example.net,Cy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(msg, []byte("From: Club <news@example.org>\nSubject: Hello {{.first_name}}\n\nDear {{.first_name}},\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(password string, args ...string) (int, string, string) {
		t.Helper()
		t.Setenv("RELAYCTL_SMTP_PASSWORD", password)
		var out, errOut bytes.Buffer
		code := Run(context.Background(), append([]string{"--db", db, "--config", filepath.Join(dir, "none.yaml")}, args...),
			&IOStreams{Out: &out, ErrOut: &errOut})
		return code, out.String(), errOut.String()
	}
	if err := os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run("", "plan", list, "--message", msg, "--no-mx", "--name", "agm"); code != ExitOK {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	via := fmt.Sprintf("smtp://postmaster@127.0.0.1:%d?tls=none", srv.Port)

	code, _, errOut := run("wrong", "run", "agm", "--via", via)
	if code != ExitStopped || !strings.Contains(errOut, "535") {
		t.Fatalf("a refused login: exit %d, stderr %q; want 3 naming the 535", code, errOut)
	}
	// The cron line, even with the password fixed: still stopped.
	code, _, errOut = run(cliPassword, "run", "--resume", "--once", "--via", via)
	if code != ExitStopped || !strings.Contains(errOut, "--resume-stopped") {
		t.Fatalf("--resume of a stopped campaign: exit %d, stderr %q; want 3 naming --resume-stopped", code, errOut)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent while stopped", n)
	}
	code, out, errOut := run(cliPassword, "run", "agm", "--resume-stopped", "--via", via)
	if code != ExitOK || len(srv.Messages()) != 3 || !strings.Contains(out, "Campaign agm: done") {
		t.Fatalf("--resume-stopped: exit %d, %d messages, stderr %q\n%s", code, len(srv.Messages()), errOut, out)
	}
}
