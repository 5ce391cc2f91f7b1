package cmd

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relayctl/relayctl/demo"
	"github.com/relayctl/relayctl/store"
)

// TestDemo runs the whole tour, as a newcomer would, from a directory
// holding a relayctl.yaml that would break any command reading it and with
// RELAYCTL_DB pointing elsewhere: the tour must use neither.
func TestDemo(t *testing.T) {
	cwd := t.TempDir()
	t.Chdir(cwd)
	if err := os.WriteFile("relayctl.yaml", []byte("not: [valid"), 0o644); err != nil {
		t.Fatal(err)
	}
	userDB := filepath.Join(cwd, "user.db")
	t.Setenv("RELAYCTL_DB", userDB)
	t.Setenv("RELAYCTL_CONFIG", "")
	t.Setenv("RELAYCTL_RESOLVER", "192.0.2.1:53") // never asked

	dir := filepath.Join(t.TempDir(), "tour")
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"demo", "--dir", dir}, &IOStreams{Out: &out, ErrOut: &errOut})
	if code != ExitOK {
		t.Fatalf("demo exited %d; stderr:\n%s\nstdout:\n%s", code, errOut.String(), out.String())
	}
	stdout := out.String()
	for _, h := range []string{"==> 1/6 clean: ", "==> 2/6 plan: ", "==> 3/6 run: ", "==> 4/6 status: ",
		"==> 5/6 report: ", "==> 6/6 report --format html: ", "Everything is in " + dir + ":"} {
		if !strings.Contains(stdout, h) {
			t.Errorf("stdout lacks %q:\n%s", h, stdout)
		}
	}
	for _, f := range []string{"relayctl.db", "user.db"} {
		if _, err := os.Stat(filepath.Join(cwd, f)); !os.IsNotExist(err) {
			t.Errorf("the tour touched %s in the working directory (stat: %v)", f, err)
		}
	}

	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "relayctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, _, _, err := st.Campaign(ctx, demo.Campaign)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != "done" {
		t.Errorf("campaign state %q, want done", c.State)
	}
	counts, err := st.CampaignCounts(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	emls, err := filepath.Glob(filepath.Join(dir, "sink", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	kept := lines(t, filepath.Join(dir, "recipients.clean.csv")) - 1
	rejected := lines(t, filepath.Join(dir, "recipients.rejects.csv")) - 1
	switch {
	case c.Rejected == 0 || c.RowsRead != 300:
		t.Errorf("plan read %d rows and rejected %d: want 300, some rejected", c.RowsRead, c.Rejected)
	case c.Recipients != c.RowsRead-c.Rejected:
		t.Errorf("plan: %d recipients of %d rows with %d rejected", c.Recipients, c.RowsRead, c.Rejected)
	case int64(len(emls)) != c.Recipients:
		t.Errorf("%d messages captured, want the plan's %d recipients", len(emls), c.Recipients)
	case counts.Total["sent"] != c.Recipients:
		t.Errorf("%d sent, want %d", counts.Total["sent"], c.Recipients)
	case int64(kept) != c.Recipients || int64(rejected) != c.Rejected:
		t.Errorf("clean kept %d and rejected %d, plan %d and %d", kept, rejected, c.Recipients, c.Rejected)
	case len(counts.Jobs) != 3:
		t.Errorf("%d jobs, want 3", len(counts.Jobs))
	}

	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(html, []byte("<svg")) {
		t.Error("report.html has no <svg chart")
	}
}

func lines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDemoWorkspaceNotEmpty: the tour never writes over files.
func TestDemoWorkspaceNotEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := Run(context.Background(), []string{"demo", "--dir", dir}, &IOStreams{Out: &out, ErrOut: &errOut})
	if code != ExitUsage {
		t.Errorf("exit %d, want %d", code, ExitUsage)
	}
	if want := "relayctl: demo: workspace " + dir + " is not empty: give a new or empty directory\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut.String(), want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the workspace holds %d files, want the 1 it had", len(entries))
	}
}
