package report

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"html/template"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate is parsed once; html/template escapes every value put in
// it for where it lands: text, attribute or SVG.
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{"px": px, "inc": func(i int) int { return i + 1 }}).Parse(htmlSource))

type htmlView struct {
	Campaign    string
	State       string
	Detail      string
	Generated   string
	Cards       []htmlCard
	Span        string
	TallyHeader []string
	Providers   [][]string
	Jobs        [][]string
	Timeline    *svgChart
	Outcomes    *svgChart
	Gantt       *svgChart
	BounceCount int64
	Bounces     iter.Seq[[]string]
}

type htmlCard struct {
	Label, Value, Class string
}

// renderHTML writes one self-contained page: inline CSS, inline SVG
// charts, no script and nothing fetched. The bounce list is streamed into
// it from the store.
func (r *Report) renderHTML(ctx context.Context, w io.Writer) error {
	tl, err := r.timeline(ctx)
	if err != nil {
		return err
	}
	t := r.Total
	v := htmlView{
		Campaign: r.Campaign, State: r.State, Detail: r.Detail,
		Generated: r.Generated.UTC().Format("2006-01-02 15:04:05 UTC"),
		Cards: []htmlCard{
			{"recipients", count(t.Recipients), ""},
			{"sent", count(t.Sent), "sent"},
			{"deferred", count(t.Deferred), "deferred"},
			{"bounced", count(t.Bounced), "bounced"},
			{"failed", count(t.Failed), "failed"},
			{"suppressed", count(t.Suppressed), "suppressed"},
			{"pending", count(t.Unfinished()), "pending"},
			{"duration", duration(t), ""},
			{"rate", rate(t.Sent, t.RatePerMinute()), ""},
		},
		Timeline: timelineChart(tl), Outcomes: outcomesChart(r.folded(tableProviders)), Gantt: ganttChart(r.Jobs, r.Generated),
		BounceCount: t.Bounced,
	}
	if !t.First.IsZero() {
		v.Span = "First attempt " + t.First.UTC().Format("2006-01-02 15:04:05") + ", last change " + t.Last.UTC().Format("2006-01-02 15:04:05") + " UTC."
	}
	for _, h := range tallyHeader {
		v.TallyHeader = append(v.TallyHeader, strings.ToLower(h.(string)))
	}
	for _, p := range r.folded(tableProviders) {
		v.Providers = append(v.Providers, append([]string{p.Name}, tallyCells(p.Tally)...))
	}
	v.Providers = append(v.Providers, append([]string{"all"}, tallyCells(r.Total)...))
	for _, j := range r.Jobs {
		started := ""
		if !j.Started.IsZero() {
			started = j.Started.UTC().Format("2006-01-02 15:04:05")
		}
		v.Jobs = append(v.Jobs, append([]string{strconv.Itoa(j.Seq), j.State, j.NotBefore.UTC().Format("2006-01-02 15:04:05"), started},
			jobCells(j)...))
	}
	var bounceErr error
	errStop := errors.New("stop")
	v.Bounces = func(yield func([]string) bool) {
		err := r.eachBounce(ctx, func(b Bounce) error {
			code := ""
			if b.Parsed.Code != 0 {
				code = strconv.Itoa(b.Parsed.Code)
			}
			row := []string{b.Email, strconv.Itoa(b.Job), b.Group, code, b.Parsed.Enhanced, b.Parsed.Text, stampShort(b.Updated)}
			if !yield(row) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			bounceErr = err
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := htmlTemplate.Execute(bw, v); err != nil {
		return err
	}
	if bounceErr != nil {
		return bounceErr
	}
	return bw.Flush()
}

func stampShort(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
