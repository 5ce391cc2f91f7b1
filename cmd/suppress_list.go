package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/store"
)

// suppress list and export: the list for people, for scripts, and as CSV.

// suppressionJSON is one entry of suppress list --json; its field names
// are a public interface.
type suppressionJSON struct {
	Value     string `json:"value"`
	Kind      string `json:"kind"`
	Reason    string `json:"reason"`
	Source    string `json:"source"`
	CreatedAt string `json:"created_at"`
}

func newSuppressListCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var asJSON bool
	var kind string
	c := &cobra.Command{
		Use:   "list",
		Short: "Print the suppression list",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if kind != "" && kind != store.SuppressAddress && kind != store.SuppressDomain {
				return usagef("--kind %q: want address or domain", kind)
			}
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if asJSON {
				return writeSuppressionsJSON(cmd, io.Out, st, kind)
			}
			t := newTable(io.Out, "VALUE", "KIND", "REASON", "SOURCE", "DATE")
			err = st.EachSuppressionOfKind(cmd.Context(), kind, func(sup store.Suppression) error {
				return t.Append(sup.Value, sup.Kind, sup.Reason, sup.Source, sup.CreatedAt.UTC().Format(time.DateOnly))
			})
			if err != nil {
				return err
			}
			return t.Render()
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the list as a JSON array")
	c.Flags().StringVar(&kind, "kind", "", "only this kind: address or domain")
	return c
}

// writeSuppressionsJSON streams the list as one JSON array, so that a
// list of millions is never held whole.
func writeSuppressionsJSON(cmd *cobra.Command, w io.Writer, st *store.Store, kind string) error {
	sep := "["
	err := st.EachSuppressionOfKind(cmd.Context(), kind, func(sup store.Suppression) error {
		b, err := json.Marshal(suppressionJSON{sup.Value, sup.Kind, sup.Reason, sup.Source, sup.CreatedAt.UTC().Format(time.RFC3339)})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s%s", sep, b)
		sep = ","
		return err
	})
	if err != nil {
		return err
	}
	if sep == "[" {
		_, err = fmt.Fprintln(w, "[]")
	} else {
		_, err = fmt.Fprintln(w, "]")
	}
	return err
}

func newSuppressExportCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export",
		Short: "Write the suppression list as CSV",
		Long: `export writes the list, in value order, as CSV with the columns value,
kind, reason, source and created_at (RFC 3339, UTC), which import reads
back. With --out the file is written under a temporary name and renamed
into place, so it is never seen half-written.`,
		Example: `  relayctl suppress export --out suppressions-$(date +%F).csv`,
		Args:    exactArgs(0, "no arguments (the file is --out)"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if fi, err := os.Stat(out); err == nil && fi.IsDir() {
				return usagef("--out %s names a directory, want a file", out)
			}
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if out == "" || out == "-" {
				_, err := listclean.WriteSuppressions(cmd.Context(), io.Out, st)
				return err
			}
			n, err := listclean.ExportSuppressions(cmd.Context(), out, st)
			var ie *listclean.InputError
			if errors.As(err, &ie) {
				return usagef("--out %s: %s", out, ie.Msg)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(io.Out, "exported %d suppressions to %s\n", n, out)
			return nil
		}),
	}
	c.Flags().StringVar(&out, "out", "", "file to write (default: standard output)")
	return c
}
