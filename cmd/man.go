package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newManCmd(io *IOStreams) *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:   "man --dir DIR",
		Short: "write man pages",
		Long: `man writes a man page (section 1) for relayctl and each of its commands
into DIR, which is created if need be: relayctl.1, relayctl-clean.1, ...`,
		Example: `  relayctl man --dir /usr/local/share/man/man1 && mandb`,
		Args:    exactArgs(0, "no arguments (the directory is --dir)"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef("man needs --dir DIR")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return usagef("--dir %s: %v", dir, unwrapPathError(err))
			}
			root := cmd.Root()
			header := &doc.GenManHeader{Section: "1", Source: root.Name() + " " + moduleVersion()}
			if err := doc.GenManTree(root, header, dir); err != nil {
				return fmt.Errorf("man pages in %s: %w", dir, unwrapPathError(err))
			}
			fmt.Fprintf(io.Out, "wrote %d man pages to %s\n", manPages(root), dir)
			return nil
		}),
	}
	c.Flags().StringVar(&dir, "dir", "", "directory to write the pages to")
	return c
}

// manPages counts the pages GenManTree writes for c: one for it and each
// command under it that is neither hidden nor a help topic.
func manPages(c *cobra.Command) int {
	n := 1
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() && !s.IsAdditionalHelpTopicCommand() {
			n += manPages(s)
		}
	}
	return n
}
