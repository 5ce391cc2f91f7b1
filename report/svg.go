package report

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// An svgChart is a chart drawn ahead of time: the HTML template only
// writes its shapes out, escaping every text.
type svgChart struct {
	Label         string // the chart's accessible name
	Width, Height int
	Lines         []svgLine // grid and axes, under the bars
	Rects         []svgRect
	Texts         []svgText
}

type svgLine struct {
	X1, Y1, X2, Y2 float64
	Class          string
}

type svgRect struct {
	X, Y, W, H float64
	Fill       string
	Class      string
	Title      string // shown on hover
}

type svgText struct {
	X, Y   float64
	Anchor string // start, middle, end
	Class  string
	Rotate bool // a vertical axis title, read bottom to top
	Text   string
}

func (c *svgChart) line(x1, y1, x2, y2 float64, class string) {
	c.Lines = append(c.Lines, svgLine{x1, y1, x2, y2, class})
}

func (c *svgChart) rect(x, y, w, h float64, fill, class, title string) {
	c.Rects = append(c.Rects, svgRect{x, y, w, h, fill, class, title})
}

func (c *svgChart) text(x, y float64, anchor, class, s string) {
	c.Texts = append(c.Texts, svgText{X: x, Y: y, Anchor: anchor, Class: class, Text: s})
}

// legend lays out swatches and names from (x, y), wrapping before right.
// It returns the y below it.
func (c *svgChart) legend(x, y, right float64, names, fills []string) float64 {
	x0 := x
	for i, name := range names {
		w := 18 + charWidth*float64(len([]rune(name))) + 16
		if x > x0 && x+w > right {
			x, y = x0, y+18
		}
		c.rect(x, y-10, 12, 12, fills[i], "swatch", name)
		c.text(x+17, y, "start", "legend", name)
		x += w
	}
	return y + 18
}

// charWidth is roughly how wide a character of the charts' 12px font is.
const charWidth = 7.0

// Colours: providers take the palette in order (Tableau 10, readable on
// white and told apart by most colour-blind readers), its green and red
// last so that they are seldom mistaken for outcomes, which have their own
// colours, green for sent to red for bounced. Providers summed together
// are grey.
var palette = []string{"#4e79a7", "#f28e2b", "#76b7b2", "#b07aa1", "#9c755f", "#ff9da7", "#edc948", "#59a14f", "#e15759"}

const othersColor = "#bab0ac"

func paletteColor(i int) string { return palette[i%len(palette)] }

type outcome struct {
	name, fill, class string
	n                 func(Tally) int64
}

var outcomes = []outcome{
	{"sent", "#59a14f", "on-dark", func(t Tally) int64 { return t.Sent }},
	{"deferred", "#edc948", "on-light", func(t Tally) int64 { return t.Deferred }},
	{"bounced", "#e15759", "on-dark", func(t Tally) int64 { return t.Bounced }},
	{"failed", "#9c2a2a", "on-dark", func(t Tally) int64 { return t.Failed }},
	{"suppressed", "#5f5f5f", "on-dark", func(t Tally) int64 { return t.Suppressed }},
	{"pending", "#d4d4d4", "on-light", func(t Tally) int64 { return t.Unfinished() }},
}

// niceStep is a round step (1, 2 or 5 times a power of ten) that divides
// 0..top into about ticks steps; at least 1, counts being whole.
func niceStep(top float64, ticks int) float64 {
	if top <= 0 {
		return 1
	}
	raw := top / float64(ticks)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return max(m*p, 1)
		}
	}
	return max(10*p, 1)
}

func count(n int64) string { return strconv.FormatInt(n, 10) }

// timeSteps are the ticks a time axis may have.
var timeSteps = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// timeStep is the shortest tick step giving at most ticks ticks over span.
func timeStep(span time.Duration, ticks int) time.Duration {
	for _, s := range timeSteps {
		if span/s <= time.Duration(ticks) {
			return s
		}
	}
	days := span/(24*time.Hour)/time.Duration(ticks) + 1
	return days * 24 * time.Hour
}

// clock formats a time of an axis as precisely as its step needs, in UTC.
func clock(t time.Time, step time.Duration) string {
	t = t.UTC()
	switch {
	case step < time.Minute:
		return t.Format("15:04:05")
	case step < 24*time.Hour:
		return t.Format("15:04")
	}
	return t.Format("Jan 2")
}

func px(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func pct(n, of int64) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(of))
}
