package cmd

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/store"
)

func newSuppressImportCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Add the addresses and domains of a file to the suppression list",
		Long: `import reads FILE ("-" for standard input): either a CSV with a header
naming its value column (value, email, e-mail, address or domain, the first
found in that order) and, optionally, reason, source and created_at columns,
as export writes them; or one value per line (blank lines and lines
starting with # are skipped). An email, e-mail or address column must hold
addresses and a domain column domains; in a value column, or on a plain
line, a value with an @ is an address and any other a domain.

Invalid rows are listed with their row numbers (the header is row 1) and
skipped; the others are added, or update the entry already there, all in
one transaction. If no row is valid nothing is written and the exit status
is 2.`,
		Example: `  relayctl suppress import unsubscribed.csv
  grep -h '@' complaints/*.txt | relayctl suppress import -`,
		Args: exactArgs(1, "one file (- for standard input)"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runSuppressImport(cmd, io, g, args[0])
		}),
	}
}

func runSuppressImport(cmd *cobra.Command, ios *IOStreams, g *globalOptions, path string) error {
	src, err := listclean.OpenSuppressions(path, ios.In)
	if err != nil {
		return err
	}
	defer src.Close()
	source := "import"
	if path != "-" {
		source += " " + filepath.Base(path)
	}
	st, err := g.openStore(cmd.Context())
	if err != nil {
		return err
	}
	defer st.Close()
	var added, updated, invalid int
	err = st.UpdateSuppressions(cmd.Context(), source, func(put store.SuppressionPut) error {
		for {
			sup, err := src.Next()
			var bad *listclean.SuppressionRowError
			switch {
			case err == io.EOF:
				if added+updated == 0 {
					return usagef("%s: no valid row to import (%d invalid)", src.Name(), invalid)
				}
				return nil
			case errors.As(err, &bad):
				invalid++
				fmt.Fprintln(ios.Out, bad)
				continue
			case err != nil:
				return err
			}
			isNew, err := put(sup)
			if err != nil {
				return err
			}
			if isNew {
				added++
			} else {
				updated++
			}
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(ios.Out, "%s: %d added, %d updated, %d invalid\n", src.Name(), added, updated, invalid)
	return nil
}
