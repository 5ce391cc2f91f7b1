package cmd

import (
	"time"

	"github.com/spf13/cobra"
)

// clientDayJSON is one row of clients --json; its field names are a
// public interface.
type clientDayJSON struct {
	Day        string `json:"day"`
	Client     string `json:"client"`
	User       string `json:"user"`
	Messages   int64  `json:"messages"`
	Recipients int64  `json:"recipients"`
	Bytes      int64  `json:"bytes"`
}

func newClientsCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var asJSON bool
	var days int
	c := &cobra.Command{
		Use:   "clients",
		Short: "Who relayed through relayctl serve: messages and recipients per client per day",
		Long: `clients lists, per UTC day, each client of relayctl serve (its address, and
its user when it authenticated) with the messages, recipients and bytes it
handed in: the inventory of senders a relay operator keeps.`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if days < 1 {
				return usagef("--days must be at least 1")
			}
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			since := time.Now().UTC().AddDate(0, 0, 1-days).Format(time.DateOnly)
			rows, err := st.ClientDays(cmd.Context(), since)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]clientDayJSON, len(rows))
				for i, r := range rows {
					out[i] = clientDayJSON(r)
				}
				return writeJSON(io.Out, out)
			}
			t := newTable(io.Out, "DAY", "CLIENT", "USER", "MESSAGES", "RECIPIENTS", "BYTES")
			for _, r := range rows {
				if err := t.Append(r.Day, r.Client, r.User, r.Messages, r.Recipients, r.Bytes); err != nil {
					return err
				}
			}
			return t.Render()
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the rows as a JSON array")
	c.Flags().IntVar(&days, "days", 30, "how many days back, today included")
	return c
}
