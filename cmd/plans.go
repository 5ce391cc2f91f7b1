package cmd

import (
	"github.com/spf13/cobra"
)

func newPlanShowCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a stored plan again",
		Args:  exactArgs(1, "a campaign name"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			c, jobs, groups, err := st.Campaign(cmd.Context(), args[0])
			if err != nil {
				return notFoundIsUsage(err)
			}
			view := planView{Campaign: c, Jobs: jobs, Groups: groups}
			if asJSON {
				return writeJSON(io.Out, view.json())
			}
			return view.render(io.Out)
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as one JSON object")
	return c
}

func newPlansCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "plans",
		Short: "List the campaigns in the database",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			cs, err := st.Campaigns(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(io.Out, campaignsJSON(cs))
			}
			return renderCampaigns(io.Out, cs)
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the campaigns as a JSON array")
	return c
}
