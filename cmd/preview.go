package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/store"
)

type previewOptions struct {
	recipient string
	row       int64
	out       string
	count     int
}

func newPreviewCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	o := &previewOptions{}
	c := &cobra.Command{
		Use:   "preview CAMPAIGN",
		Short: "Print the exact message a recipient of a campaign would get",
		Long: `preview renders a planned campaign's message for one recipient, byte for
byte as it would be sent (CRLF line ends, encoded headers, MIME parts,
DKIM signature when relayctl.yaml names a key), and prints it. The
recipient is the first in sending order unless --recipient or --row picks
one. With --out DIR it writes .eml files instead, for the first --count
recipients, to open in a mail client.`,
		Example: `  relayctl preview agm-2026
  relayctl preview agm-2026 --recipient jane@example.com
  relayctl preview agm-2026 --out /tmp/agm --count 20`,
		Args: exactArgs(1, "a campaign name"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runPreview(cmd, io, g, o, args[0])
		}),
	}
	f := c.Flags()
	f.StringVar(&o.recipient, "recipient", "", "the recipient's address")
	f.Int64Var(&o.row, "row", 0, "the recipient from this row of the list")
	f.StringVar(&o.out, "out", "", "write .eml files into this directory instead of printing")
	f.IntVar(&o.count, "count", 10, "with --out: how many recipients, in sending order")
	return c
}

func runPreview(cmd *cobra.Command, io *IOStreams, g *globalOptions, o *previewOptions, name string) error {
	ctx := cmd.Context()
	if o.recipient != "" && o.row != 0 {
		return usagef("--recipient and --row pick one recipient each: give one")
	}
	cfg, err := g.config()
	if err != nil {
		return err
	}
	signer, err := cfg.Signer()
	if err != nil {
		return usageError{err}
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	c, _, _, err := st.Campaign(ctx, name)
	if err != nil {
		return notFoundIsUsage(err)
	}
	spec, err := plan.MessageSpec(ctx, st, c, signer)
	if err != nil {
		return err
	}
	comp, err := message.NewComposer(spec, time.Now)
	if err != nil {
		return fmt.Errorf("campaign %s: %w", name, err)
	}
	var chosen []store.Recipient
	if o.recipient != "" || o.row != 0 {
		r, err := st.FindRecipient(ctx, c.ID, o.recipient, o.row)
		if err != nil {
			return notFoundIsUsage(fmt.Errorf("campaign %s: %w", name, err))
		}
		chosen = append(chosen, r)
	} else {
		want := 1
		if o.out != "" {
			want = max(o.count, 1)
		}
		errEnough := errors.New("enough")
		err := st.EachRecipient(ctx, c.ID, func(r store.Recipient, _ string) error {
			chosen = append(chosen, r)
			if len(chosen) == want {
				return errEnough
			}
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) {
			return err
		}
	}
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return usagef("--out %s: %v", o.out, err)
		}
	}
	for i, r := range chosen {
		values, err := plan.Values(r)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		env, err := comp.Compose(&b, message.Recipient{Email: r.Email, Values: values})
		if err != nil {
			return fmt.Errorf("campaign %s, row %d: %w", name, r.Row, err)
		}
		if o.out == "" {
			// The envelope goes to stderr: stdout is the message, byte for byte.
			fmt.Fprintf(io.ErrOut, "MAIL FROM:<%s> RCPT TO:<%s> (row %d)\n", env.MailFrom, env.RcptTo, r.Row)
			_, err := io.Out.Write(b.Bytes())
			return err
		}
		path := filepath.Join(o.out, fmt.Sprintf("%04d-%s.eml", i+1, unsafeName.ReplaceAllString(r.Email, "_")))
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(io.Out, path)
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9@._+-]`)
