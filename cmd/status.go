package cmd

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/store"
)

func newStatusCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status [CAMPAIGN]",
		Short: "Show a campaign's progress: recipients by state, per job",
		Args:  cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			name, err := campaignArg(cmd, st, args, true)
			if err != nil {
				return err
			}
			c, _, _, err := st.Campaign(ctx, name)
			if err != nil {
				return notFoundIsUsage(err)
			}
			counts, err := st.CampaignCounts(ctx, c.ID)
			if err != nil {
				return err
			}
			pauses, err := st.Pauses(ctx, c.ID)
			if err != nil {
				return err
			}
			next, err := st.NextDue(ctx, c.ID)
			if err != nil {
				return err
			}
			times, err := st.JobTimes(ctx, c.ID)
			if err != nil {
				return err
			}
			s := statusJSONOf(c, counts, pauses, next, times)
			if asJSON {
				return writeJSON(io.Out, s)
			}
			return renderStatus(io.Out, s)
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the status as one JSON object")
	return c
}

// statusJSON is status --json; its field names are a public interface.
type statusJSON struct {
	Campaign     string           `json:"campaign"`
	State        string           `json:"state"`
	Detail       string           `json:"detail,omitempty"`
	Counts       map[string]int64 `json:"counts"`
	Jobs         []jobStatusJSON  `json:"jobs"`
	Paused       []pauseJSON      `json:"paused"`
	NextDue      string           `json:"next_due,omitempty"`
	PossibleDups int64            `json:"possible_duplicates"`
}

type jobStatusJSON struct {
	Seq      int              `json:"seq"`
	State    string           `json:"state"`
	Counts   map[string]int64 `json:"counts"`
	Started  string           `json:"started,omitempty"`
	Finished string           `json:"finished,omitempty"`
}

type pauseJSON struct {
	Provider string `json:"provider"`
	Until    string `json:"until"`
	Reason   string `json:"reason"`
}

func statusJSONOf(c *store.Campaign, counts store.Counts, pauses map[string]store.Pause, next time.Time, times map[int][2]time.Time) statusJSON {
	s := statusJSON{Campaign: c.Name, State: c.State, Detail: c.StateDetail, Counts: counts.Total, Jobs: []jobStatusJSON{}, Paused: []pauseJSON{}, PossibleDups: c.PossibleDups}
	for seq := 1; seq <= len(counts.Jobs); seq++ {
		j := jobStatusJSON{Seq: seq, Counts: counts.Jobs[seq], State: "pending"}
		t := times[seq]
		switch {
		case !t[1].IsZero():
			j.State, j.Finished = "done", t[1].UTC().Format(time.RFC3339)
		case !t[0].IsZero():
			j.State = "running"
		}
		if !t[0].IsZero() {
			j.Started = t[0].UTC().Format(time.RFC3339)
		}
		s.Jobs = append(s.Jobs, j)
	}
	for _, p := range pauses {
		if p.Until.After(time.Now()) {
			s.Paused = append(s.Paused, pauseJSON{Provider: p.Group, Until: p.Until.UTC().Format(time.RFC3339), Reason: p.Reason})
		}
	}
	if !next.IsZero() {
		s.NextDue = next.UTC().Format(time.RFC3339)
	}
	return s
}

func renderStatus(w io.Writer, s statusJSON) error {
	fmt.Fprintf(w, "Campaign %s: %s", s.Campaign, s.State)
	if s.Detail != "" {
		fmt.Fprintf(w, " (%s)", s.Detail)
	}
	fmt.Fprintln(w)
	states := store.States
	header := []any{"JOB", "STATE"}
	for _, st := range states {
		header = append(header, st)
	}
	t := newTable(w, header...)
	for _, j := range s.Jobs {
		row := []string{strconv.Itoa(j.Seq), j.State}
		for _, st := range states {
			row = append(row, strconv.FormatInt(j.Counts[st], 10))
		}
		t.Append(row)
	}
	total := []string{"all", s.State}
	for _, st := range states {
		total = append(total, strconv.FormatInt(s.Counts[st], 10))
	}
	t.Append(total)
	if err := t.Render(); err != nil {
		return err
	}
	for _, p := range s.Paused {
		fmt.Fprintf(w, "paused: %s until %s: %s\n", p.Provider, p.Until, p.Reason)
	}
	if s.NextDue != "" {
		fmt.Fprintf(w, "next retry due: %s\n", s.NextDue)
	}
	if s.PossibleDups > 0 {
		fmt.Fprintf(w, "possibly duplicated (resent after a crash): %d\n", s.PossibleDups)
	}
	return nil
}
