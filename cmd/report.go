package cmd

import (
	"bufio"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/report"
)

// reportOptions are report's flags.
type reportOptions struct {
	format string
	out    string
}

func newReportCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var o reportOptions
	c := &cobra.Command{
		Use:   "report [CAMPAIGN]",
		Short: "Report a campaign's deliveries: by provider and job, bounces, every recipient",
		Long: `Report a campaign's deliveries.

--format table (the default) prints summary tables by provider and by job
and the bounce list; csv prints one row per recipient; json one object
with the summary, the bounces and every recipient; html one
self-contained page with charts. --out writes to a file instead of
stdout, atomically.

Without CAMPAIGN, the one unfinished campaign, or the newest.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runReport(cmd, args, io, g, o)
		}),
	}
	c.Flags().StringVar(&o.format, "format", string(report.Table), "table, csv, json or html")
	c.Flags().StringVar(&o.out, "out", "", "write the report to this file (atomically) instead of stdout")
	return c
}

func runReport(cmd *cobra.Command, args []string, ios *IOStreams, g *globalOptions, o reportOptions) error {
	format, err := report.ParseFormat(o.format)
	if err != nil {
		return usageError{err}
	}
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
	rep, err := report.Load(ctx, st, name, time.Now())
	if err != nil {
		return notFoundIsUsage(err)
	}
	if o.out != "" {
		return report.WriteFile(o.out, func(w io.Writer) error { return rep.Render(ctx, w, format) })
	}
	bw := bufio.NewWriter(ios.Out)
	if err := rep.Render(ctx, bw, format); err != nil {
		return err
	}
	return bw.Flush()
}
