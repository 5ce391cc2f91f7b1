package report

import (
	"fmt"
	"math"
	"strings"
	"time"
)

const chartWidth = 960

// timelineChart draws messages sent per bucket as bars stacked by
// provider, the biggest at the bottom.
func timelineChart(tl *Timeline) *svgChart {
	c := &svgChart{Width: chartWidth, Height: 340}
	const left, right, bottom = 64.0, 16.0, 56.0
	fills := make([]string, len(tl.Groups))
	for i, g := range tl.Groups {
		fills[i] = paletteColor(i)
		if strings.HasPrefix(g, "others") && i == len(tl.Groups)-1 {
			fills[i] = othersColor
		}
	}
	top := c.legend(left, 18, chartWidth-right, tl.Groups, fills) + 4
	plotH := float64(c.Height) - top - bottom
	plotW := chartWidth - left - right
	base := top + plotH
	if len(tl.Counts) == 0 {
		c.Label = "Deliveries over time: nothing sent yet"
		c.line(left, base, left+plotW, base, "axis")
		c.text(left+plotW/2, top+plotH/2, "middle", "empty", "Nothing sent yet.")
		return c
	}
	unit := BucketUnit(tl.Width)
	var peak int64
	for _, b := range tl.Counts {
		var sum int64
		for _, n := range b {
			sum += n
		}
		peak = max(peak, sum)
	}
	step := niceStep(float64(peak), 5)
	yMax := max(math.Ceil(float64(peak)/step), 1) * step
	y := func(v float64) float64 { return base - v/yMax*plotH }
	for v := 0.0; v <= yMax+step/2; v += step {
		c.line(left, y(v), left+plotW, y(v), "grid")
		c.text(left-6, y(v)+4, "end", "tick", fmt.Sprintf("%.0f", v))
	}
	n := len(tl.Counts)
	bw := plotW / float64(n)
	gap := 0.0
	if bw > 4 {
		gap = min(bw*0.15, 3)
	}
	for i, b := range tl.Counts {
		at := tl.Origin.Add(time.Duration(i) * tl.Width)
		var acc int64
		for g, cnt := range b {
			if cnt == 0 {
				continue
			}
			y1, y0 := y(float64(acc+cnt)), y(float64(acc))
			c.rect(left+float64(i)*bw+gap/2, y1, bw-gap, y0-y1, fills[g], "bar",
				fmt.Sprintf("%s: %d sent in the %s from %s UTC", tl.Groups[g], cnt, unit, at.UTC().Format("2006-01-02 15:04:05")))
			acc += cnt
		}
	}
	c.line(left, base, left+plotW, base, "axis")
	c.line(left, top, left, base, "axis")
	every := (n + 7) / 8
	for i := 0; i < n; i += every {
		x := left + float64(i)*bw
		c.line(x, base, x, base+4, "axis")
		c.text(x, base+18, "middle", "tick", clock(tl.Origin.Add(time.Duration(i)*tl.Width), tl.Width))
	}
	c.text(left+plotW/2, base+42, "middle", "axis-title",
		fmt.Sprintf("time (UTC) from %s, one bar per %s", tl.Origin.UTC().Format("2006-01-02 15:04:05"), unit))
	c.Texts = append(c.Texts, svgText{X: 16, Y: top + plotH/2, Anchor: "middle", Class: "axis-title", Rotate: true,
		Text: "messages sent per " + unit})
	c.Label = fmt.Sprintf("Messages sent per %s by provider, %d buckets; at most %d in one", unit, n, peak)
	return c
}

// outcomesChart draws one bar per provider split by outcome, each bar the
// provider's recipients as 100%.
func outcomesChart(providers []Provider) *svgChart {
	const rowH, barH, right, bottom = 26.0, 18.0, 96.0, 34.0
	labelW := 60.0
	for _, p := range providers {
		labelW = max(labelW, charWidth*float64(len([]rune(p.Name)))+16)
	}
	labelW = min(labelW, 260)
	c := &svgChart{Width: chartWidth}
	names, fills := make([]string, len(outcomes)), make([]string, len(outcomes))
	for i, o := range outcomes {
		names[i], fills[i] = o.name, o.fill
	}
	top := c.legend(labelW, 18, chartWidth-right, names, fills) + 4
	plotW := chartWidth - labelW - right
	c.Height = int(top + rowH*float64(max(len(providers), 1)) + bottom)
	base := top + rowH*float64(max(len(providers), 1))
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		x := labelW + f*plotW
		c.line(x, top, x, base, "grid")
		c.text(x, base+16, "middle", "tick", fmt.Sprintf("%.0f%%", 100*f))
	}
	if len(providers) == 0 {
		c.text(labelW+plotW/2, top+rowH/2+4, "middle", "empty", "No recipients.")
	}
	for i, p := range providers {
		yy := top + float64(i)*rowH + (rowH-barH)/2
		c.text(labelW-8, yy+barH-5, "end", "label", truncate(p.Name, 36))
		x := labelW
		for _, o := range outcomes {
			cnt := o.n(p.Tally)
			if cnt == 0 || p.Recipients == 0 {
				continue
			}
			w := float64(cnt) / float64(p.Recipients) * plotW
			c.rect(x, yy, max(w, 1), barH, o.fill, "bar", fmt.Sprintf("%s: %d %s of %d (%s)", p.Name, cnt, o.name, p.Recipients, pct(cnt, p.Recipients)))
			if w >= 38 {
				c.text(x+w/2, yy+barH-5, "middle", "in-bar "+o.class, pct(cnt, p.Recipients))
			}
			x += w
		}
		c.text(labelW+plotW+8, yy+barH-5, "start", "label", fmt.Sprintf("%d", p.Recipients))
	}
	c.line(labelW, top, labelW, base, "axis")
	c.text(labelW+plotW+8, top-6, "start", "axis-title", "recipients")
	c.Label = fmt.Sprintf("Outcomes by provider for %d providers, as shares of each provider's recipients", len(providers))
	return c
}

// maxLanes is how many lanes a job schedule has at most: beyond, each
// lane holds several consecutive jobs, which never overlap in time.
const maxLanes = 40

// ganttChart draws the job schedule: a lane per job (or per run of
// consecutive jobs when there are many), its planned start as a tick and
// its run as a bar.
func ganttChart(jobs []Job, now time.Time) *svgChart {
	const right, bottom = 24.0, 44.0
	perLane := max((len(jobs)+maxLanes-1)/maxLanes, 1)
	lanes := max((len(jobs)+perLane-1)/perLane, 1)
	laneName := func(l int) string {
		first := jobs[l*perLane].Seq
		if perLane == 1 {
			return fmt.Sprintf("job %d", first)
		}
		return fmt.Sprintf("jobs %d–%d", first, jobs[min((l+1)*perLane, len(jobs))-1].Seq)
	}
	left := 64.0
	for l := 0; l < len(jobs) && l < lanes; l++ {
		left = max(left, charWidth*float64(len([]rune(laneName(l))))+16)
	}
	c := &svgChart{Width: chartWidth}
	top := c.legend(left, 18, chartWidth-right, []string{"ran (start to end)", "running", "planned start"},
		[]string{"#4e79a7", "#f28e2b", "#222222"}) + 4
	rowH := min(max(440/float64(lanes), 14), 26)
	plotW := chartWidth - left - right
	base := top + rowH*float64(lanes)
	c.Height = int(base + bottom)
	var t0, t1 time.Time
	see := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if t0.IsZero() || t.Before(t0) {
			t0 = t
		}
		if t.After(t1) {
			t1 = t
		}
	}
	for _, j := range jobs {
		see(j.NotBefore)
		see(j.Started)
		see(j.Finished)
		if j.State == "running" {
			see(now)
		}
	}
	if t0.IsZero() {
		c.text(left+plotW/2, top+rowH/2+4, "middle", "empty", "No jobs.")
		c.Label = "Job schedule: no jobs"
		return c
	}
	span := max(t1.Sub(t0), 10*time.Second)
	step := timeStep(span, 8)
	// Leave room either side of the bars, and start the axis on a tick.
	t0 = t0.Add(-span / 40).Truncate(step)
	span = t1.Sub(t0)
	span += span / 40
	x := func(t time.Time) float64 { return left + float64(t.Sub(t0))/float64(span)*plotW }
	for t := t0; !t.After(t0.Add(span)); t = t.Add(step) {
		c.line(x(t), top, x(t), base, "grid")
		c.text(x(t), base+16, "middle", "tick", clock(t, step))
	}
	for l := range lanes {
		c.text(left-8, top+float64(l)*rowH+rowH/2+4, "end", "label", laneName(l))
	}
	barH := rowH * 0.6
	for i, j := range jobs {
		yy := top + float64(i/perLane)*rowH
		by := yy + (rowH-barH)/2
		title := jobTitle(j)
		if !j.Started.IsZero() {
			end, fill := j.Finished, "#4e79a7"
			if end.IsZero() {
				end, fill = now, "#f28e2b"
			}
			c.rect(x(j.Started), by, max(x(end)-x(j.Started), 2), barH, fill, "bar", title)
		}
		if !j.NotBefore.IsZero() {
			c.rect(x(j.NotBefore)-1, yy+2, 2, rowH-4, "#222222", "planned", title)
		}
	}
	c.line(left, base, left+plotW, base, "axis")
	c.line(left, top, left, base, "axis")
	c.text(left+plotW/2, base+36, "middle", "axis-title", "time (UTC) from "+t0.UTC().Format("2006-01-02 15:04:05"))
	c.Label = fmt.Sprintf("Job schedule: %d jobs, planned starts and runs over time", len(jobs))
	if perLane > 1 {
		c.Label += fmt.Sprintf(", %d consecutive jobs a lane", perLane)
	}
	return c
}

func jobTitle(j Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "job %d (%s): %d recipients, %d sent", j.Seq, j.State, j.Recipients, j.Sent)
	if !j.NotBefore.IsZero() {
		fmt.Fprintf(&b, "; planned %s", j.NotBefore.UTC().Format("2006-01-02 15:04:05"))
	}
	if !j.Started.IsZero() {
		fmt.Fprintf(&b, "; started %s", j.Started.UTC().Format("15:04:05"))
	}
	if !j.Finished.IsZero() {
		fmt.Fprintf(&b, "; finished %s, took %s", j.Finished.UTC().Format("15:04:05"), j.Duration.Round(time.Second))
	}
	return b.String() + " (UTC)"
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
