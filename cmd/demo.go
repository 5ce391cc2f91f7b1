package cmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/demo"
)

func newDemoCmd(io *IOStreams) *cobra.Command {
	var dir string
	keep := true
	c := &cobra.Command{
		Use:   "demo",
		Short: "Take the tour: a sample list cleaned, planned, delivered and reported, all on this machine",
		Long: `demo writes a sample list of 300 rows (with the dirt real exports have:
duplicates, display names, mailto:, broken and dead addresses, role
accounts), a message and settings into a new workspace, starts a capture
SMTP server and a small DNS server on 127.0.0.1, and runs the real
commands on them: clean, plan, run (the built-in relay delivering to the
MX hosts, which the tour's DNS points at the capture server), status and
report. Every name in it is reserved (example.com, .example, .test):
nothing leaves this machine. It takes a few seconds.

Everything uses the workspace's database and relayctl.yaml; ./relayctl.db
and ./relayctl.yaml are neither read nor written. The workspace is left
for you to look at (--keep=false removes it).`,
		Example: `  relayctl demo
  relayctl demo --dir /tmp/tour`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), io, dir, keep)
		}),
	}
	c.Flags().StringVar(&dir, "dir", "", "workspace: a new or empty directory (default: a new temporary one)")
	c.Flags().BoolVar(&keep, "keep", true, "leave the workspace for inspection (--keep=false removes it)")
	return c
}

// runDemo runs each step of the tour as its own relayctl command line.
func runDemo(ctx context.Context, io *IOStreams, dir string, keep bool) error {
	ctx, cancel := context.WithTimeout(ctx, demo.Timeout)
	defer cancel()
	start := time.Now()
	t, err := demo.Setup(dir)
	var we *demo.WorkspaceError
	if errors.As(err, &we) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	defer t.Close()
	steps := t.Steps()
	for i, s := range steps {
		fmt.Fprintf(io.Out, "\n==> %d/%d %s\n$ %s\n", i+1, len(steps), s.Heading, s.CommandLine())
		root := newRootCmd(io)
		root.SetArgs(s.Args)
		if err := root.ExecuteContext(ctx); err != nil {
			return fmt.Errorf("demo, step %s (workspace %s): %w", s.Name, t.Dir, err)
		}
	}
	if !keep {
		fmt.Fprintf(io.Out, "\nThe tour took %s; workspace %s removed (--keep=false).\n", time.Since(start).Round(100*time.Millisecond), t.Dir)
		return t.Remove()
	}
	return t.Summary(io.Out, time.Since(start))
}
