package cmd

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/store"
)

// queueEntryJSON is one message of queue list --json and queue show
// --json; its field names are a public interface.
type queueEntryJSON struct {
	ID          int64                `json:"id"`
	ReceivedAt  string               `json:"received_at"`
	From        string               `json:"from"`
	Client      string               `json:"client"`
	User        string               `json:"user"`
	Size        int                  `json:"size"`
	Recipients  int                  `json:"recipients"`
	Waiting     int                  `json:"waiting"`
	NextAttempt string               `json:"next_attempt,omitempty"`
	LastReply   string               `json:"last_reply,omitempty"`
	Details     []queueRecipientJSON `json:"recipient_details,omitempty"`
}

type queueRecipientJSON struct {
	Address     string `json:"address"`
	State       string `json:"state"`
	Attempts    int    `json:"attempts"`
	NextAttempt string `json:"next_attempt,omitempty"`
	LastAttempt string `json:"last_attempt,omitempty"`
	Reply       string `json:"reply,omitempty"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func queueJSON(e store.QueueEntry) queueEntryJSON {
	return queueEntryJSON{ID: e.ID, ReceivedAt: rfc3339(e.Received), From: e.From, Client: e.Client, User: e.User, Size: e.Size,
		Recipients: e.Recipients, Waiting: e.Waiting, NextAttempt: rfc3339(e.NextAttempt), LastReply: e.LastReply}
}

func newQueueCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "queue",
		Short: "Inspect and operate relayctl serve's queue",
		Long: `queue lists the messages relayctl serve holds, shows one, makes them due
again, or deletes them. A running server picks up retry and flush within
seconds. Messages leave the queue on their own once every recipient is
delivered or has failed and the sender has been told.`,
	}
	c.AddCommand(newQueueListCmd(io, g), newQueueShowCmd(io, g), newQueueRetryCmd(io, g, false), newQueueRetryCmd(io, g, true),
		newQueueDeleteCmd(io, g))
	return c
}

func newQueueListCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the queued messages, oldest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			var all []store.QueueEntry
			if err := st.EachQueued(cmd.Context(), func(e store.QueueEntry) error { all = append(all, e); return nil }); err != nil {
				return err
			}
			if asJSON {
				out := make([]queueEntryJSON, len(all))
				for i, e := range all {
					out[i] = queueJSON(e)
				}
				return writeJSON(io.Out, out)
			}
			t := newTable(io.Out, "ID", "AGE", "FROM", "CLIENT", "SIZE", "WAITING", "NEXT ATTEMPT", "LAST REPLY")
			now := time.Now()
			for _, e := range all {
				next := "now"
				if e.NextAttempt.After(now) {
					next = "in " + e.NextAttempt.Sub(now).Round(time.Second).String()
				}
				if e.Waiting == 0 {
					next = "-"
				}
				client := e.Client
				if e.User != "" {
					client = e.User + " (" + e.Client + ")"
				}
				if err := t.Append(e.ID, now.Sub(e.Received).Round(time.Second).String(), orNull(e.From), client, e.Size,
					fmt.Sprintf("%d/%d", e.Waiting, e.Recipients), next, e.LastReply); err != nil {
					return err
				}
			}
			if len(all) == 0 {
				fmt.Fprintln(io.ErrOut, "the queue is empty")
				return nil
			}
			return t.Render()
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the queue as a JSON array")
	return c
}

func orNull(from string) string {
	if from == "" {
		return "<> (a notice)"
	}
	return from
}

func newQueueShowCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	var asJSON, raw bool
	c := &cobra.Command{
		Use:   "show ID",
		Short: "Show a queued message: its envelope, each recipient's state, or (--raw) the message",
		Args:  exactArgs(1, "a queue id"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ids, err := queueIDs(args)
			if err != nil {
				return err
			}
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			e, rs, body, err := st.QueuedMessage(cmd.Context(), ids[0])
			if err != nil {
				return notFoundIsUsage(err)
			}
			if raw {
				_, err := io.Out.Write(body)
				return err
			}
			if asJSON {
				j := queueJSON(e)
				for _, r := range rs {
					j.Details = append(j.Details, queueRecipientJSON{r.Rcpt, r.State, r.Attempts, rfc3339(r.NextAttempt), rfc3339(r.LastAttempt), r.Reply})
				}
				return writeJSON(io.Out, j)
			}
			fmt.Fprintf(io.Out, "queue id:  %d\nreceived:  %s\nfrom:      <%s>\nclient:    %s\n", e.ID, e.Received.Format(time.RFC1123Z), e.From, e.Client)
			if e.User != "" {
				fmt.Fprintf(io.Out, "user:      %s\n", e.User)
			}
			fmt.Fprintf(io.Out, "size:      %d bytes\n\n", e.Size)
			t := newTable(io.Out, "RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "REPLY")
			for _, r := range rs {
				next := ""
				if r.State == store.StateDeferred || r.State == store.StatePending {
					next = "now"
					if !r.NextAttempt.IsZero() && r.NextAttempt.After(time.Now()) {
						next = r.NextAttempt.Format(time.DateTime)
					}
				}
				if err := t.Append(r.Rcpt, r.State, r.Attempts, next, r.Reply); err != nil {
					return err
				}
			}
			return t.Render()
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the message's envelope and recipients as JSON")
	c.Flags().BoolVar(&raw, "raw", false, "print the message itself, as it will be sent")
	c.MarkFlagsMutuallyExclusive("json", "raw")
	return c
}

func newQueueRetryCmd(io *IOStreams, g *globalOptions, flush bool) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "retry ID... | --all",
		Short: "Make queued messages due now, ignoring their backoff",
		Args: func(cmd *cobra.Command, args []string) error {
			if flush && len(args) > 0 {
				return usagef("queue flush takes no arguments (see 'relayctl queue retry ID')")
			}
			if !flush && (len(args) == 0) == !all {
				return usagef("queue retry wants queue ids or --all")
			}
			return nil
		},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ids, err := queueIDs(args)
			if err != nil {
				return err
			}
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.RetryQueued(cmd.Context(), ids, flush)
			if err != nil {
				return err
			}
			fmt.Fprintf(io.ErrOut, "%d recipients due now\n", n)
			return nil
		}),
	}
	if flush {
		c.Use = "flush"
		c.Short = "Make the whole queue due now, and end the providers' pauses"
	} else {
		c.Flags().BoolVar(&all, "all", false, "every queued message (providers stay paused; queue flush ends the pauses too)")
	}
	return c
}

func newQueueDeleteCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID...",
		Short: "Delete queued messages, without telling their senders",
		Args:  cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ids, err := queueIDs(args)
			if err != nil {
				return err
			}
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			missing, err := st.DeleteQueued(cmd.Context(), ids)
			if err != nil {
				return err
			}
			fmt.Fprintf(io.ErrOut, "%d deleted\n", len(ids)-len(missing))
			if len(missing) > 0 {
				return usageError{fmt.Errorf("not in the queue: %v", missing)}
			}
			return nil
		}),
	}
}

func queueIDs(args []string) ([]int64, error) {
	var ids []int64
	for _, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			return nil, usageError{errors.New("queue id " + strconv.Quote(a) + ": want a number from queue list")}
		}
		ids = append(ids, id)
	}
	return ids, nil
}
