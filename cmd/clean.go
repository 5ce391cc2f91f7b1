package cmd

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/listclean"
)

type cleanOptions struct {
	out, rejects, warnings string
	list                   listFlags
	json                   bool
}

func newCleanCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	o := &cleanOptions{}
	c := &cobra.Command{
		Use:   "clean LIST.csv",
		Short: "Check, normalise and de-duplicate a recipient list",
		Long: `clean reads a recipient CSV and writes, beside it, LIST.clean.csv (every
good row, all columns in order, the address normalised), LIST.rejects.csv
(each rejected row with "reason" and "detail" columns) and LIST.warnings.csv
(kept rows worth a look: role accounts, likely typos of big providers,
disposable-mail domains, domains DNS could not verify).

The list may be UTF-8 with or without BOM, CRLF or LF, delimited by comma,
semicolon or tab (sniffed from the header); the email column is found by
name (email, e-mail, mail, email address). "Jane <jane@example.com>",
"mailto:jane@example.com" and stray spaces are reduced to the address.

Reject reasons: missing, malformed, syntax, suppressed, duplicate, and from
the MX check no_domain (NXDOMAIN), null_mx (RFC 7505), no_mail_host (no MX,
A or AAAA); with --strict also dns_unverified (SERVFAIL or timeout).

Outputs appear only when the whole run succeeded. Exit status: 0 when the
list was cleaned (rejects are normal), 2 for bad usage or an unreadable
list, 1 for anything else.`,
		Example: `  relayctl clean contacts.csv
  relayctl clean export.csv --email-column "Work Email" --no-mx --json
  relayctl clean list.csv --resolver 127.0.0.1:5353 --strict`,
		Args: exactArgs(1, "one list file"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runClean(cmd, io, g, o, args[0])
		}),
	}
	f := c.Flags()
	f.StringVar(&o.out, "out", "", "clean file (default LIST.clean.csv beside the list)")
	f.StringVar(&o.rejects, "rejects", "", "rejects file (default LIST.rejects.csv)")
	f.StringVar(&o.warnings, "warnings", "", "warnings file (default LIST.warnings.csv)")
	f.BoolVar(&o.json, "json", false, "print the summary as one JSON object")
	o.list.register(f)
	return c
}

func runClean(cmd *cobra.Command, io *IOStreams, g *globalOptions, o *cleanOptions, list string) error {
	ctx := cmd.Context()
	opt := listclean.Options{Input: list, Out: o.out, Rejects: o.rejects, Warnings: o.warnings}
	if err := o.list.apply(&opt); err != nil {
		return err
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	opt.Store = st

	prog := newProgress(io, !o.json)
	opt.Progress = prog.update
	start := time.Now()
	sum, err := listclean.Clean(ctx, opt)
	prog.done()
	if err != nil {
		return err
	}
	sum.Duration = time.Since(start)
	if o.json {
		return writeJSON(io.Out, cleanJSON(sum))
	}
	return renderCleanSummary(io.Out, list, sum)
}
