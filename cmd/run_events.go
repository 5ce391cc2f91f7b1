package cmd

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/relayctl/relayctl/send"
)

// runEvents shows a run's progress: a bar on a terminal, log lines for
// job changes under cron, JSON lines with --json.
type runEvents struct {
	io     *IOStreams
	json   bool
	mu     sync.Mutex
	bar    *progressbar.ProgressBar
	counts map[string]int
	log_   *slog.Logger
}

func newRunEvents(io *IOStreams, asJSON bool) *runEvents {
	return &runEvents{io: io, json: asJSON, counts: map[string]int{}, log_: slog.New(slog.NewTextHandler(io.ErrOut, nil))}
}

func (e *runEvents) event(ev send.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[ev.Kind]++
	if e.json {
		writeJSON(e.io.Out, map[string]any{"event": ev.Kind, "email": ev.Email, "group": ev.Group, "reply": ev.Reply, "suppressed": ev.Suppress})
		return
	}
	if ev.Kind == "paused" {
		e.log_.Warn("provider paused", "provider", ev.Group, "for", ev.PausedFor, "reply", ev.Reply)
		return
	}
	if e.bar != nil {
		e.bar.Add(1)
		e.bar.Describe(fmt.Sprintf("sent %d deferred %d bounced %d", e.counts["sent"], e.counts["deferred"], e.counts["bounced"]))
	}
}

func (e *runEvents) log(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.json {
		writeJSON(e.io.Out, map[string]any{"event": "log", "message": msg})
		return
	}
	if e.bar != nil {
		e.bar.Finish()
		e.bar = nil
	}
	e.log_.Info(msg)
	var due int
	if n, err := fmt.Sscanf(msg[strings.Index(msg, ":")+1:], " %d due", &due); n == 1 && err == nil && e.io.Interactive() {
		e.bar = progressbar.NewOptions(due, progressbar.OptionSetWriter(e.io.ErrOut), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
}

func (e *runEvents) wait(what string, until time.Time) {
	e.log(fmt.Sprintf("waiting for %s until %s (%s)", what, until.Local().Format(time.RFC3339), time.Until(until).Round(time.Second)))
	if !e.io.Interactive() || e.json {
		return
	}
	// A countdown on a terminal: the bar fills as the wait passes, and
	// the next log line (the job starting) replaces it.
	total := time.Until(until)
	e.mu.Lock()
	bar := progressbar.NewOptions64(int64(total/time.Second)+1, progressbar.OptionSetWriter(e.io.ErrOut),
		progressbar.OptionSetDescription("next: "+what), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	e.bar = bar
	e.mu.Unlock()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for range t.C {
			e.mu.Lock()
			if e.bar != bar {
				e.mu.Unlock()
				return
			}
			bar.Set64(int64((total - time.Until(until)) / time.Second))
			e.mu.Unlock()
			if !time.Now().Before(until) {
				return
			}
		}
	}()
}

func (e *runEvents) finish() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.bar != nil {
		e.bar.Finish()
		e.bar = nil
	}
}
