package cmd

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
)

// buildVersion describes the running binary from what the Go toolchain
// recorded in it: the module version, and, when it was built in a
// checkout, the commit, "+dirty" if the tree had uncommitted changes, and
// otherwise the commit's date: "v1.2.3 (commit abc1234, 2026-11-25)",
// "(devel) (commit abc1234+dirty)".
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	return versionOf(info)
}

// moduleVersion is the module version alone: "v1.2.3", or "(devel)" for a
// build from a checkout.
func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" {
		return "(devel)"
	}
	return info.Main.Version
}

func versionOf(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, date string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				date = t.UTC().Format(time.DateOnly)
			}
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	switch {
	case dirty:
		// The binary is not that commit's, so its date would mislead.
		rev += "+dirty"
	case date != "":
		rev += ", " + date
	}
	return fmt.Sprintf("%s (commit %s)", v, rev)
}

// setVersion gives root its --version flag, printing the same line as
// relayctl version.
func setVersion(root *cobra.Command) {
	root.Version = buildVersion()
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
}

func newVersionCmd(io *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print relayctl's version and the commit it was built from",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(io.Out, "%s %s\n", cmd.Root().Name(), buildVersion())
			return err
		}),
	}
}
