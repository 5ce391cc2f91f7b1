package cmd

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/store"
)

func newSuppressCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "suppress",
		Short: "Manage the suppression list: addresses and domains never mailed",
		Long: `The suppression list holds addresses, and whole domains (with their
subdomains), that clean and plan reject with reason "suppressed". run adds
every mailbox-level hard bounce to it, with the campaign as its source.

A value with an @ is an address, normalised as clean normalises list
addresses ("Jane <Jane@Example.COM>" is jane@example.com); any other value
is a domain, internationalised names converted to A-labels.`,
		Args: cobra.ArbitraryArgs,
		RunE: subcommands,
	}
	c.AddCommand(newSuppressAddCmd(io, g), newSuppressRemoveCmd(io, g), newSuppressListCmd(io, g),
		newSuppressImportCmd(io, g), newSuppressExportCmd(io, g))
	return c
}

func newSuppressAddCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var reason, source string
	c := &cobra.Command{
		Use:   "add VALUE...",
		Short: "Suppress addresses or domains",
		Long: `add puts each VALUE on the suppression list: an address if it has an @,
otherwise a domain (which suppresses its subdomains too). A value already
there gets the new --reason and --source, and keeps the old ones when these
are not given. Nothing is added if any value is invalid.`,
		Example: `  relayctl suppress add jane@example.com --reason "asked by phone"
  relayctl suppress add competitor.example --source legal`,
		Args: minArgs(1, "at least one address or domain"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			sups := make([]store.Suppression, 0, len(args))
			for _, arg := range args {
				sup, err := listclean.ParseSuppression(arg, "")
				if err != nil {
					return usagef("%q: %v", arg, err)
				}
				sup.Reason, sup.Source = reason, source
				sups = append(sups, sup)
			}
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var lines []string
			err = st.UpdateSuppressions(cmd.Context(), "suppress add", func(put store.SuppressionPut) error {
				for _, sup := range sups {
					added, err := put(sup)
					if err != nil {
						return err
					}
					verb := "updated"
					if added {
						verb = "added"
					}
					lines = append(lines, fmt.Sprintf("%s %s %s", verb, sup.Kind, sup.Value))
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(io.Out, strings.Join(lines, "\n"))
			return nil
		}),
	}
	c.Flags().StringVar(&reason, "reason", "", "why the value is suppressed")
	c.Flags().StringVar(&source, "source", "", `who or what asked for it (new entries without one: "suppress add")`)
	return c
}

func newSuppressRemoveCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "remove VALUE...",
		Short:   "Take addresses or domains off the suppression list",
		Long:    `remove deletes each VALUE's entry; a value that has none is reported on stderr, and is not an error.`,
		Example: `  relayctl suppress remove jane@example.com competitor.example`,
		Args:    minArgs(1, "at least one address or domain"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			for _, arg := range args {
				// An entry that no longer parses (written by an older
				// relayctl, say) can still be removed as it is spelt.
				value := strings.TrimSpace(arg)
				if sup, err := listclean.ParseSuppression(arg, ""); err == nil {
					value = sup.Value
				}
				ok, err := st.RemoveSuppression(cmd.Context(), value)
				if err != nil {
					return err
				}
				if ok {
					fmt.Fprintf(io.Out, "removed %s\n", value)
				} else {
					fmt.Fprintf(io.ErrOut, "relayctl: %s is not on the suppression list\n", value)
				}
			}
			return nil
		}),
	}
}

// subcommands is the RunE of a command that only groups others: alone it
// prints its help; with an unknown subcommand, which cobra would take for
// arguments and answer with the help and status 0, it is a usage error.
func subcommands(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usagef("%s (see '%s --help')", msg, cmd.CommandPath())
}

// minArgs is cobra.MinimumNArgs with a message that names what is missing.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s wants %s (see '%s --help')", cmd.CommandPath(), what, cmd.CommandPath())
		}
		return nil
	}
}

// unwrapPathError drops *os.PathError's "op path: " for messages that name
// the path already.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
