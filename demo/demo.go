// Package demo owns relayctl's guided tour: a workspace holding a sample
// list with the dirt real exports have, a message template and settings;
// a capture SMTP server and a small DNS server on loopback that stand in
// for the recipients' mail hosts; and the command lines that take the list
// through clean, plan, run, status and report. It runs no command itself:
// cmd runs each step through the real commands, so what the tour shows is
// what they print.
package demo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relayctl/relayctl/sink"
)

// Campaign is the name the tour plans its campaign under.
const Campaign = "demo"

// Timeout bounds the whole tour; it takes a few seconds.
const Timeout = 2 * time.Minute

// Shaping of the tour's campaign: three jobs of at most PerJob recipients,
// Gap apart, so the waits between jobs show without being long.
const (
	PerJob = 100
	Gap    = 2 * time.Second
)

// WorkspaceError is a workspace the tour will not use: one that already
// holds files (the tour writes only where it cannot overwrite anything), or
// is not a directory.
type WorkspaceError struct {
	Dir     string
	Problem string
}

func (e *WorkspaceError) Error() string {
	return fmt.Sprintf("demo: workspace %s %s: give a new or empty directory", e.Dir, e.Problem)
}

// Tour is a prepared workspace with its servers running.
type Tour struct {
	Dir     string // the workspace
	List    string // the sample list
	Message string // the message template
	Config  string // the tour's relayctl.yaml
	DB      string // the tour's database
	Sink    string // where the capture server writes .eml files
	Report  string // the HTML report
	Rows    int    // data rows in the list

	DNS  *DNS
	SMTP *sink.Server

	created bool // Dir was made by the tour
}

// Step is one command of the tour.
type Step struct {
	Name    string   // the command: clean, plan...
	Heading string   // what the step shows, for the reader
	Args    []string // relayctl's arguments
}

// CommandLine is the step as it would be typed.
func (s Step) CommandLine() string {
	q := make([]string, len(s.Args))
	for i, a := range s.Args {
		q[i] = shellQuote(a)
	}
	return "relayctl " + strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Setup prepares the workspace dir (a new temporary directory when dir is
// ""), writes the sample files into it and starts the servers. Close
// stops them.
func Setup(dir string) (*Tour, error) {
	t := &Tour{}
	if err := t.makeDir(dir); err != nil {
		return nil, err
	}
	t.List = filepath.Join(t.Dir, "recipients.csv")
	t.Message = filepath.Join(t.Dir, "message.eml")
	t.Config = filepath.Join(t.Dir, "relayctl.yaml")
	t.DB = filepath.Join(t.Dir, "relayctl.db")
	t.Sink = filepath.Join(t.Dir, "sink")
	t.Report = filepath.Join(t.Dir, "report.html")
	if err := writeFiles(t); err != nil {
		return nil, err
	}
	var err error
	if t.DNS, err = StartDNS(zone); err != nil {
		return nil, err
	}
	if t.SMTP, err = sink.Listen("127.0.0.1:0", t.Sink); err != nil {
		t.DNS.Close()
		return nil, fmt.Errorf("demo: capture server: %w", err)
	}
	go t.SMTP.Serve()
	return t, nil
}

// makeDir makes the workspace, or checks that dir is one: empty or new.
func (t *Tour) makeDir(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "relayctl-demo-")
		if err != nil {
			return fmt.Errorf("demo: workspace: %w", err)
		}
		t.Dir, t.created = d, true
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("demo: workspace %s: %w", dir, err)
	}
	t.Dir = abs
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return &WorkspaceError{Dir: abs, Problem: "is not a directory"}
	}
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("demo: workspace: %w", err)
		}
		t.created = true
		return nil
	case err != nil:
		return fmt.Errorf("demo: workspace: %w", err)
	case len(entries) > 0:
		return &WorkspaceError{Dir: abs, Problem: "is not empty"}
	}
	return nil
}

// Close stops the servers; the workspace stays.
func (t *Tour) Close() error {
	return errors.Join(t.SMTP.Close(), t.DNS.Close())
}

// Remove deletes what the tour wrote: the workspace itself if the tour
// made it, otherwise everything in it.
func (t *Tour) Remove() error {
	if t.created {
		if err := os.RemoveAll(t.Dir); err != nil {
			return fmt.Errorf("demo: remove workspace: %w", err)
		}
		return nil
	}
	entries, err := os.ReadDir(t.Dir)
	if err != nil {
		return fmt.Errorf("demo: remove workspace: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(t.Dir, e.Name())); err != nil {
			return fmt.Errorf("demo: remove workspace: %w", err)
		}
	}
	return nil
}

// Steps are the tour's commands. Every one names the tour's database and
// relayctl.yaml, so neither ./relayctl.db nor ./relayctl.yaml is touched
// or read; run delivers directly, through the built-in relay, to the MX
// hosts the tour's DNS names (127.0.0.1), on the capture server's port
// instead of 25.
func (t *Tour) Steps() []Step {
	_, smtpPort, _ := net.SplitHostPort(t.SMTP.Addr)
	global := []string{"--db", t.DB, "--config", t.Config}
	step := func(name, heading string, args ...string) Step {
		return Step{Name: name, Heading: heading, Args: append(append([]string{}, global...), args...)}
	}
	return []Step{
		step("clean", "clean: check every address, ask the tour's DNS about every domain",
			"clean", t.List, "--resolver", t.DNS.Addr),
		step("plan", fmt.Sprintf("plan: store the campaign, jobs of at most %d recipients, %s apart", PerJob, Gap),
			"plan", t.List, "--message", t.Message, "--name", Campaign, "--resolver", t.DNS.Addr,
			"--per-job", fmt.Sprint(PerJob), "--gap", Gap.String()),
		step("run", "run: deliver through the built-in relay, straight to each domain's MX host (127.0.0.1, the capture server)",
			"run", Campaign, "--resolver", t.DNS.Addr, "--port", smtpPort),
		step("status", "status: every recipient's state, per job",
			"status", Campaign),
		step("report", "report: deliveries by provider and by job, and the bounces",
			"report", Campaign),
		step("report html", "report --format html: the same with charts, as one page",
			"report", Campaign, "--format", "html", "--out", t.Report),
	}
}

// Summary tells what the workspace holds now and how to look further.
func (t *Tour) Summary(w io.Writer, took time.Duration) error {
	emls, err := filepath.Glob(filepath.Join(t.Sink, "*.eml"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	base := strings.TrimSuffix(t.List, filepath.Ext(t.List))
	files := []struct{ path, what string }{
		{t.List, fmt.Sprintf("the sample list: %d rows, dirt included", t.Rows)},
		{base + ".clean.csv", "the rows clean kept, addresses normalised"},
		{base + ".rejects.csv", "the rows it rejected, each with reason and detail"},
		{base + ".warnings.csv", "kept rows worth a look (role accounts)"},
		{t.Message, "the message template"},
		{t.Config, "the tour's settings: via direct, EHLO name, List-Unsubscribe, a provider"},
		{t.DB, "the database: domain verdicts, the campaign, every recipient's state"},
		{t.Sink + string(filepath.Separator), fmt.Sprintf("%d messages as the MX host received them, one .eml each", len(emls))},
		{t.Report, "the delivery report: open it in a browser"},
	}
	fmt.Fprintf(w, "\nThe tour took %s. Everything is in %s:\n", took.Round(100*time.Millisecond), t.Dir)
	for _, f := range files {
		fmt.Fprintf(w, "  %-24s %s\n", strings.TrimPrefix(f.path, t.Dir+string(filepath.Separator)), f.what)
	}
	db := shellQuote(t.DB)
	first := "the first message"
	if len(emls) > 0 {
		first = shellQuote(emls[0])
	}
	fmt.Fprintf(w, `
Look further:
  relayctl --db %[1]s status %[2]s
  relayctl --db %[1]s report %[2]s --format csv
  relayctl --db %[1]s plan show %[2]s
  relayctl --db %[1]s --config %[3]s preview %[2]s
  cat %[4]s
  less %[5]s
Nothing left this machine. Remove the workspace with: rm -r %[6]s
`, db, Campaign, shellQuote(t.Config), shellQuote(base+".rejects.csv"), first, shellQuote(t.Dir))
	return nil
}
