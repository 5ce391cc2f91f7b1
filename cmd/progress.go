package cmd

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows how far a long command has got: a bar on a terminal, one
// log line per finished stage otherwise (cron mails stderr).
type progress struct {
	io      *IOStreams
	bar     *progressbar.ProgressBar
	stage   string
	started time.Time
	log     *slog.Logger
	enabled bool
}

var stageNames = map[string]string{"scan": "reading list", "dns": "checking domains", "rows": "checking rows"}

func newProgress(io *IOStreams, enabled bool) *progress {
	return &progress{io: io, enabled: enabled, log: slog.New(slog.NewTextHandler(io.ErrOut, nil))}
}

// update is called with each stage's progress; stages arrive in order.
func (p *progress) update(stage string, done, total int64) {
	if !p.enabled {
		return
	}
	if stage != p.stage {
		p.finishStage()
		p.stage, p.started = stage, time.Now()
		if p.io.Interactive() {
			p.bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(p.io.ErrOut),
				progressbar.OptionSetDescription(fmt.Sprintf("%-16s", stageNames[stage])),
				progressbar.OptionShowBytes(stage != "dns"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish())
		}
	}
	if p.bar != nil {
		p.bar.Set64(done)
	}
}

func (p *progress) finishStage() {
	if p.stage == "" {
		return
	}
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
		return
	}
	if !p.io.Interactive() {
		p.log.Info(stageNames[p.stage]+" done", "took", time.Since(p.started).Round(time.Millisecond))
	}
}

func (p *progress) done() {
	if p.enabled {
		p.finishStage()
		p.stage = ""
	}
}
