package cmd

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/plan"
)

type planOptions struct {
	message, html, name  string
	attach               []string
	replace              bool
	perJob               int
	gap                  time.Duration
	start, notAfter      string
	connections, perConn int
	perMessage           int
	list                 listFlags
	json                 bool
}

func newPlanCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	o := &planOptions{}
	c := &cobra.Command{
		Use:   "plan LIST.csv --message MSG.eml",
		Short: "Check a list and plan it as a campaign of provider-aware jobs",
		Long: `plan runs the same checks as clean (rejected rows are left out, with the
same reasons), then splits the kept recipients into jobs of at most
--per-job, --gap apart, and stores the campaign (template, recipients,
jobs, shaping limits) in the database, so that a run never needs the list
again.

Every recipient is put in a group: a provider when its domain's MX hosts
belong to one (google, microsoft, yahoo, apple... see plan/providers.yaml;
with --no-mx, a table of well-known consumer domains), otherwise its own
domain. Every group is spread evenly over all jobs (a group of n recipients
over J jobs puts ⌊n/J⌋ or ⌈n/J⌉ in each), and within a job the groups
interleave.

The message is an RFC 5322 file (headers, empty line, body) whose text may
use Go template fields named after the list's columns: {{.first_name}},
{{index . "first name"}}, {{.title | default "Customer"}}. Every field must
be a column, non-empty for every kept recipient unless it has a default or
sits inside {{if}}, and a field used in a header may not hold a line break.
Otherwise nothing is stored and the first offending rows are listed.`,
		Example: `  relayctl plan members.csv --message invite.eml
  relayctl plan members.csv --message invite.eml --name agm-2026 --per-job 1000 --gap 10m \
      --start 2026-12-01T08:00:00Z --not-after 2026-12-01T20:00:00Z
  relayctl plan show agm-2026 --json`,
		Args: exactArgs(1, "one list file"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd, io, g, o, args[0])
		}),
	}
	f := c.Flags()
	f.StringVar(&o.message, "message", "", "message template: an RFC 5322 file with {{.column}} fields (required)")
	f.StringVar(&o.html, "html", "", "HTML alternative: an html/template file with the same fields (sent as multipart/alternative)")
	f.StringSliceVar(&o.attach, "attach", nil, "file to attach to every message (repeatable)")
	f.StringVar(&o.name, "name", "", "campaign name (default: the list's base name and today's date)")
	f.BoolVar(&o.replace, "replace", false, "replace a campaign of the same name that has not started sending")
	f.IntVar(&o.perJob, "per-job", 1000, "recipients per job, at most")
	f.DurationVar(&o.gap, "gap", 10*time.Minute, "pause between the end of one job and the start of the next")
	f.StringVar(&o.start, "start", "now", "the first job's start: RFC 3339 time or now")
	f.StringVar(&o.notAfter, "not-after", "", "jobs that cannot start by then are never sent late: RFC 3339 time, or a duration after --start")
	f.IntVar(&o.connections, "connections", 4, "connections in total, at most")
	f.IntVar(&o.perConn, "per-connection", 100, "messages per connection, at most (big providers get fewer, from the provider table)")
	f.IntVar(&o.perMessage, "per-message", 1, "recipients per message, at most")
	f.BoolVar(&o.json, "json", false, "print the plan as one JSON object")
	o.list.register(f)
	c.MarkFlagRequired("message")
	c.AddCommand(newPlanShowCmd(io, g))
	return c
}

func runPlan(cmd *cobra.Command, io *IOStreams, g *globalOptions, o *planOptions, list string) error {
	ctx := cmd.Context()
	now := time.Now()
	opt := plan.Options{
		Clean: listclean.Options{Input: list}, Name: o.name, Replace: o.replace,
		PerJob: o.perJob, Gap: o.gap, Connections: o.connections, PerConnection: o.perConn, PerMessage: o.perMessage,
	}
	if err := o.list.apply(&opt.Clean); err != nil {
		return err
	}
	var err error
	if opt.Start, err = parseStart(o.start, now); err != nil {
		return err
	}
	if opt.NotAfter, err = parseNotAfter(o.notAfter, opt.Start); err != nil {
		return err
	}
	if opt.Name == "" {
		opt.Name = plan.DefaultName(list, now)
	}
	if opt.Template, err = plan.ReadTemplate(o.message, o.html); err != nil {
		return err
	}
	if opt.Attachments, err = plan.ReadAttachments(o.attach); err != nil {
		return err
	}
	cfg, err := g.config()
	if err != nil {
		return err
	}
	opt.Settings = cfg.Message
	if opt.Table, err = cfg.ProviderTable(); err != nil {
		return err
	}
	// Check the header against the template before the long passes.
	if _, err := listclean.Sniff(list, opt.Clean.Delimiter, opt.Clean.EmailColumn); err != nil {
		return err
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	prog := newProgress(io, !o.json)
	opt.Clean.Progress = prog.update
	res, err := plan.Plan(ctx, st, opt)
	prog.done()
	if err != nil {
		return err
	}
	view := planView{Campaign: res.Campaign, Jobs: res.Jobs, Groups: res.Groups}
	if o.json {
		return writeJSON(io.Out, view.json())
	}
	return view.render(io.Out)
}

func parseStart(s string, now time.Time) (time.Time, error) {
	if s == "" || strings.EqualFold(s, "now") {
		return now.Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--start %q: want an RFC 3339 time such as 2026-12-01T08:00:00Z, or now", s)
	}
	return t, nil
}

func parseNotAfter(s string, start time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return start.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--not-after %q: want an RFC 3339 time, or a duration after --start such as 12h", s)
	}
	return t, nil
}
