package report

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// tableProviders is how many provider rows a table for people shows; the
// smallest providers beyond are summed in one row.
const tableProviders = 15

var tallyHeader = []any{"RECIPIENTS", "SENT", "DEFERRED", "BOUNCED", "FAILED", "SUPPRESSED", "PENDING", "DURATION", "RATE"}

func tallyCells(t Tally) []string {
	return []string{itoa(t.Recipients), itoa(t.Sent), itoa(t.Deferred), itoa(t.Bounced), itoa(t.Failed),
		itoa(t.Suppressed), itoa(t.Unfinished()), duration(t), rate(t.Sent, t.RatePerMinute())}
}

// jobCells are a job's tally cells; a job not yet started has neither
// duration nor rate.
func jobCells(j Job) []string {
	c := tallyCells(j.Tally)
	if j.Started.IsZero() {
		c[len(c)-2], c[len(c)-1] = "-", "-"
	}
	return c
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// duration shows a tally's duration to the second, "-" before anything
// was attempted.
func duration(t Tally) string {
	if t.First.IsZero() && t.Duration == 0 {
		return "-"
	}
	return t.Duration.Round(time.Second).String()
}

// rate shows messages per second when there are more than 60 a minute,
// per minute otherwise; a decimal only under a hundred.
func rate(sent int64, perMin float64) string {
	r, unit := perMin, "/min"
	if sent == 0 {
		return "-"
	}
	if r >= 60 {
		r, unit = r/60, "/s"
	}
	prec := 1
	if r >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(r, 'f', prec, 64) + unit
}

// newTable starts a table for people, as cmd's tables are.
func newTable(w io.Writer, headers ...any) *tablewriter.Table {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	t.Header(headers...)
	return t
}

func (r *Report) renderTable(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "Campaign %s: %s", r.Campaign, r.State)
	if r.Detail != "" {
		fmt.Fprintf(w, " (%s)", r.Detail)
	}
	t := r.Total
	fmt.Fprintf(w, "\n%d recipients: %d sent, %d deferred, %d bounced, %d failed, %d suppressed, %d pending\n",
		t.Recipients, t.Sent, t.Deferred, t.Bounced, t.Failed, t.Suppressed, t.Unfinished())
	if !t.First.IsZero() {
		fmt.Fprintf(w, "first attempt %s, last change %s: %s, %s; %d attempts\n",
			t.First.UTC().Format(time.RFC3339), t.Last.UTC().Format(time.RFC3339), duration(t), rate(t.Sent, t.RatePerMinute()), t.Attempts)
	}
	if t.Sending > 0 {
		fmt.Fprintf(w, "pending includes %d left sending by a run that died (relayctl run --resume sends them again)\n", t.Sending)
	}

	fmt.Fprintln(w, "\nBy provider")
	pt := newTable(w, append([]any{"PROVIDER"}, tallyHeader...)...)
	for _, p := range r.folded(tableProviders) {
		if err := pt.Append(append([]string{p.Name}, tallyCells(p.Tally)...)); err != nil {
			return err
		}
	}
	if err := pt.Append(append([]string{"all"}, tallyCells(r.Total)...)); err != nil {
		return err
	}
	if err := pt.Render(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nBy job")
	jt := newTable(w, append([]any{"JOB", "STATE"}, tallyHeader...)...)
	for _, j := range r.Jobs {
		if err := jt.Append(append([]string{strconv.Itoa(j.Seq), j.State}, jobCells(j)...)); err != nil {
			return err
		}
	}
	if err := jt.Render(); err != nil {
		return err
	}
	return r.renderBounceTable(ctx, w)
}

// renderBounceTable streams the bounce list into a table whose widths are
// known beforehand, so that no bounce is held in memory.
func (r *Report) renderBounceTable(ctx context.Context, w io.Writer) error {
	if r.Total.Bounced == 0 {
		fmt.Fprintln(w, "\nNo bounces.")
		return nil
	}
	fmt.Fprintf(w, "\nBounces (%d)\n", r.Total.Bounced)
	emailW, replyW, err := r.src.BounceWidths(ctx, r.id)
	if err != nil {
		return err
	}
	provW := len("PROVIDER")
	for _, p := range r.Providers {
		if p.Bounced > 0 {
			provW = max(provW, len(p.Name))
		}
	}
	jobW := len("JOB")
	for _, j := range r.Jobs {
		jobW = max(jobW, len(strconv.Itoa(j.Seq)))
	}
	// A cell's width counts a space either side; long replies wrap.
	widths := tw.NewMapper[int, int]().
		Set(0, min(max(emailW, len("EMAIL")), 60)+2).
		Set(1, jobW+2).
		Set(2, min(provW, 30)+2).
		Set(3, len("550 5.1.1")+2).
		Set(4, min(max(replyW, len("REPLY")), 60)+2)
	bt := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithStreaming(tw.StreamConfig{Enable: true}), tablewriter.WithColumnWidths(widths))
	if err := bt.Start(); err != nil {
		return err
	}
	bt.Header("EMAIL", "JOB", "PROVIDER", "CODE", "REPLY")
	err = r.eachBounce(ctx, func(b Bounce) error {
		code := ""
		if b.Parsed.Code != 0 {
			code = strconv.Itoa(b.Parsed.Code)
		}
		if b.Parsed.Enhanced != "" {
			code += " " + b.Parsed.Enhanced
		}
		return bt.Append(printable(b.Email), strconv.Itoa(b.Job), b.Group, code, printable(b.Parsed.Text))
	})
	if cerr := bt.Close(); err == nil {
		err = cerr
	}
	return err
}

// printable keeps a server's words from acting on the terminal: control
// characters other than line breaks are shown as U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0) {
			return '\uFFFD'
		}
		return r
	}, s)
}
