package cmd

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relayctl/relayctl/store"
)

// planView is a stored plan as plan and plan show print it.
type planView struct {
	Campaign *store.Campaign
	Jobs     []store.Job
	Groups   []store.GroupLimits
}

// planJSON is the --json output of plan and plan show; its field names are
// a public interface.
type planJSON struct {
	Campaign   string           `json:"campaign"`
	Recipients int64            `json:"recipients"`
	Rejected   int64            `json:"rejected"`
	Rows       int64            `json:"rows"`
	Reasons    map[string]int64 `json:"reasons"`
	PerJob     int              `json:"per_job"`
	Gap        string           `json:"gap"`
	Start      string           `json:"start"`
	NotAfter   string           `json:"not_after,omitempty"`
	Notes      []string         `json:"notes"`
	Jobs       []planJobJSON    `json:"jobs"`
	Limits     []limitsJSON     `json:"limits"`
}

type planJobJSON struct {
	Seq        int              `json:"seq"`
	NotBefore  string           `json:"not_before"`
	Recipients int64            `json:"recipients"`
	Providers  map[string]int64 `json:"providers"`
}

type limitsJSON struct {
	Group            string `json:"group"`
	Recipients       int64  `json:"recipients"`
	Connections      int    `json:"connections"`
	PerConnection    int    `json:"per_connection"`
	PerMessage       int    `json:"per_message"`
	MaxConnectionAge string `json:"max_connection_age"`
	PerHour          int    `json:"per_hour,omitempty"`
}

func (v planView) json() planJSON {
	c := v.Campaign
	out := planJSON{
		Campaign: c.Name, Recipients: c.Recipients, Rejected: c.Rejected, Rows: c.RowsRead, Reasons: c.Reasons,
		PerJob: c.PerJob, Gap: c.Gap.String(), Start: c.StartAt.UTC().Format(time.RFC3339), Notes: c.Notes,
		Jobs: []planJobJSON{}, Limits: []limitsJSON{},
	}
	if !c.NotAfter.IsZero() {
		out.NotAfter = c.NotAfter.UTC().Format(time.RFC3339)
	}
	for _, j := range v.Jobs {
		out.Jobs = append(out.Jobs, planJobJSON{Seq: j.Seq, NotBefore: j.NotBefore.UTC().Format(time.RFC3339), Recipients: j.Recipients, Providers: j.Providers})
	}
	for _, g := range v.Groups {
		if !strings.Contains(g.Group, ".") { // providers; domains of their own share the default limits
			out.Limits = append(out.Limits, limitsJSON{Group: g.Group, Recipients: g.Recipients, Connections: g.Connections,
				PerConnection: g.PerConnection, PerMessage: g.PerMessage, MaxConnectionAge: g.MaxConnectionAge.String(), PerHour: g.PerHour})
		}
	}
	return out
}

// topProviders names the largest providers of a job, "other" last.
func topProviders(p map[string]int64, most int) string {
	names := make([]string, 0, len(p))
	for n := range p {
		if n != "other" {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		if p[a] != p[b] {
			return int(p[b] - p[a])
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for i, n := range names {
		if i == most {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", n, p[n]))
	}
	if p["other"] > 0 {
		parts = append(parts, fmt.Sprintf("other %d", p["other"]))
	}
	return strings.Join(parts, ", ")
}

func (v planView) render(w io.Writer) error {
	c := v.Campaign
	fmt.Fprintf(w, "Campaign %s: %d recipients in %d jobs (%d rows read, %d rejected)\n", c.Name, c.Recipients, len(v.Jobs), c.RowsRead, c.Rejected)
	t := newTable(w, "JOB", "EST. START", "RECIPIENTS", "TOP PROVIDERS")
	for _, j := range v.Jobs {
		t.Append(strconv.Itoa(j.Seq), j.NotBefore.Local().Format("2006-01-02 15:04"), strconv.FormatInt(j.Recipients, 10), topProviders(j.Providers, 3))
	}
	if err := t.Render(); err != nil {
		return err
	}
	if err := renderLimits(w, v.Groups); err != nil {
		return err
	}
	fmt.Fprintf(w, "Jobs of at most %d, %s apart, from %s", c.PerJob, c.Gap, c.StartAt.Local().Format(time.RFC3339))
	if !c.NotAfter.IsZero() {
		fmt.Fprintf(w, "; nothing starts after %s", c.NotAfter.Local().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

type campaignJSON struct {
	Campaign   string `json:"campaign"`
	State      string `json:"state"`
	CreatedAt  string `json:"created_at"`
	Start      string `json:"start"`
	Recipients int64  `json:"recipients"`
	Rejected   int64  `json:"rejected"`
	Jobs       int64  `json:"jobs"`
}

func jobCount(c *store.Campaign) int64 {
	return (c.Recipients + int64(c.PerJob) - 1) / int64(c.PerJob)
}

func campaignsJSON(cs []*store.Campaign) []campaignJSON {
	out := []campaignJSON{}
	for _, c := range cs {
		out = append(out, campaignJSON{Campaign: c.Name, State: c.State, CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339),
			Start: c.StartAt.UTC().Format(time.RFC3339), Recipients: c.Recipients, Rejected: c.Rejected, Jobs: jobCount(c)})
	}
	return out
}

func renderCampaigns(w io.Writer, cs []*store.Campaign) error {
	if len(cs) == 0 {
		fmt.Fprintln(w, "No campaigns. Plan one with: relayctl plan LIST.csv --message MSG.eml")
		return nil
	}
	t := newTable(w, "CAMPAIGN", "STATE", "RECIPIENTS", "REJECTED", "JOBS", "START", "CREATED")
	for _, c := range cs {
		t.Append(c.Name, c.State, strconv.FormatInt(c.Recipients, 10), strconv.FormatInt(c.Rejected, 10),
			strconv.FormatInt(jobCount(c), 10), c.StartAt.Local().Format("2006-01-02 15:04"), c.CreatedAt.Local().Format("2006-01-02 15:04"))
	}
	return t.Render()
}

// renderLimits shows the providers' limits; domains of their own share
// the default ones and are not listed.
func renderLimits(w io.Writer, groups []store.GroupLimits) error {
	t := newTable(w, "PROVIDER", "RECIPIENTS", "CONNECTIONS", "PER CONNECTION", "PER MESSAGE", "PER HOUR")
	n := 0
	for _, g := range groups {
		if strings.Contains(g.Group, ".") {
			continue
		}
		perHour := "-"
		if g.PerHour > 0 {
			perHour = strconv.Itoa(g.PerHour)
		}
		t.Append(g.Group, strconv.FormatInt(g.Recipients, 10), strconv.Itoa(g.Connections), strconv.Itoa(g.PerConnection), strconv.Itoa(g.PerMessage), perHour)
		n++
	}
	if n == 0 {
		return nil
	}
	return t.Render()
}
