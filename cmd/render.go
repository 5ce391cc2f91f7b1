package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/plan"
)

// newTable starts a table for people; headers are shown as given.
func newTable(w io.Writer, headers ...any) *tablewriter.Table {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	t.Header(headers...)
	return t
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// cleanSummaryJSON is clean's --json output; its field names are a public
// interface.
type cleanSummaryJSON struct {
	Rows         int64            `json:"rows"`
	Kept         int64            `json:"kept"`
	Rejected     int64            `json:"rejected"`
	Reasons      map[string]int64 `json:"reasons"`
	Warnings     map[string]int64 `json:"warnings"`
	Domains      int              `json:"domains"`
	Out          string           `json:"out"`
	Rejects      string           `json:"rejects"`
	WarningsFile string           `json:"warnings_file"`
	DNSAsked     int              `json:"dns_asked"`
	DNSCached    int              `json:"dns_cached"`
	DurationMS   int64            `json:"duration_ms"`
}

func cleanJSON(s *listclean.Summary) cleanSummaryJSON {
	return cleanSummaryJSON{
		Rows: s.Rows, Kept: s.Kept, Rejected: s.Rejected,
		Reasons: s.Reasons, Warnings: s.Warnings, Domains: s.Domains,
		Out: s.Out, Rejects: s.Rejects, WarningsFile: s.WarnFile,
		DNSAsked: s.DNSAsked, DNSCached: s.DNSCached, DurationMS: s.Duration.Milliseconds(),
	}
}

func renderCleanSummary(w io.Writer, list string, s *listclean.Summary) error {
	t := newTable(w, "", "ROWS")
	add := func(name string, n int64) { t.Append(name, strconv.FormatInt(n, 10)) }
	add("read", s.Rows)
	add("kept", s.Kept)
	add("rejected", s.Rejected)
	for _, r := range listclean.Reasons {
		if n := s.Reasons[r]; n > 0 {
			add("rejected: "+r, n)
		}
	}
	for _, k := range listclean.WarningKinds {
		if n := s.Warnings[k]; n > 0 {
			add("warning: "+k, n)
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d distinct domains", s.Domains)
	if s.DNSAsked+s.DNSCached > 0 {
		fmt.Fprintf(w, " (%d looked up, %d from the cache)", s.DNSAsked, s.DNSCached)
	}
	fmt.Fprintf(w, "; took %s\n", s.Duration.Round(time.Millisecond))
	if len(s.Samples) > 0 {
		fmt.Fprintln(w, "First warnings:")
		wt := newTable(w, "ROW", "ADDRESS", "KIND", "DETAIL")
		for _, x := range s.Samples {
			wt.Append(strconv.FormatInt(x.Row, 10), x.Email, x.Kind, x.Detail)
		}
		if err := wt.Render(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "clean:    %s\nrejects:  %s\nwarnings: %s\n", s.Out, s.Rejects, s.WarnFile)
	return nil
}

func renderRunSummary(w io.Writer, sum *plan.RunSummary) error {
	if sum.Idle {
		_, err := fmt.Fprintf(w, "Campaign %s: %s; nothing due before %s\n", sum.Campaign.Name, sum.Campaign.State, sum.NextDue.Local().Format(time.RFC3339))
		return err
	}
	s := statusJSONOf(sum.Campaign, sum.Counts, sum.Pauses, sum.NextDue, sum.Times)
	s.Jobs = nil
	if err := renderStatus(w, s); err != nil {
		return err
	}
	if sum.Resent > 0 {
		fmt.Fprintf(w, "resent after an interrupted run (possibly duplicated): %d\n", sum.Resent)
	}
	return nil
}
