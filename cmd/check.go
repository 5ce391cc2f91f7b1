package cmd

import (
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/send"
)

type checkOptions struct {
	openRelay          string
	via, helo, ca      string
	from, sendTo, rcpt string
	json               bool
	timeouts           send.Timeouts
}

func newCheckCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	o := &checkOptions{}
	c := &cobra.Command{
		Use:   "check [URL | --open-relay HOST[:PORT]]",
		Short: "Test an upstream relay (TLS, certificate, AUTH, a test message), or whether a server is an open relay",
		Long: `check URL connects to an upstream (smtp://user@host:587 with STARTTLS,
smtps://user@host:465 with implicit TLS, ?tls=none for none; default: --via
or relayctl.yaml's, as run uses) and shows each step: the banner, the EHLO
extensions, the TLS version, cipher and certificate (subject, issuer,
expiry, and whether it verifies against the system's roots and --ca),
AUTH with the configured username and password (RELAYCTL_SMTP_PASSWORD or
relayctl.yaml; the mechanism run would choose) and, with --send-to, a
short test message and the server's reply. It stops at the first failure.

check --open-relay HOST[:PORT] (port 25 by default) asks the server,
without authentication, to take a message from an outside sender to an
outside recipient, over STARTTLS when offered and in plain text, and says
whether it is an OPEN RELAY. It never sends DATA: RSET and QUIT follow the
recipients.

Exit status: 0 every check passed (the server refused to relay), 1 a check
failed (an open relay), 2 bad usage. docs/check.md explains each line.`,
		Example: `  RELAYCTL_SMTP_PASSWORD=... relayctl check smtp://postmaster@mg.example.org:587
  relayctl check --send-to me@example.org --from news@example.org   # the configured upstream
  relayctl check --open-relay mx.example.com`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd, io, g, o, args)
		}),
	}
	f := c.Flags()
	f.StringVar(&o.openRelay, "open-relay", "", "test whether HOST[:PORT] (port 25 by default) relays without authentication")
	f.StringVar(&o.via, "via", "", "the upstream URL, as run takes it (default: relayctl.yaml's)")
	f.StringVar(&o.helo, "helo", "", "name to introduce ourselves with in EHLO (default: relayctl.yaml's helo, else this host's name)")
	f.StringVar(&o.ca, "ca", "", "PEM file of CA certificates to trust besides the system's (relayctl.yaml tls_ca)")
	f.StringVar(&o.sendTo, "send-to", "", "send a short test message to this address")
	f.StringVar(&o.from, "from", "", "sender of the test message (default: relayctl.yaml's message.return_path); with --open-relay, the outside sender (default "+send.DefaultRelayFrom+")")
	f.StringVar(&o.rcpt, "rcpt", "", "with --open-relay, the outside recipient (default "+send.DefaultRelayRcpt+")")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	f.DurationVar(&o.timeouts.Dial, "connect-timeout", 30*time.Second, "timeout of the TCP connect")
	f.DurationVar(&o.timeouts.Command, "command-timeout", time.Minute, "timeout of the greeting, TLS and each SMTP command")
	f.DurationVar(&o.timeouts.Final, "data-timeout", 5*time.Minute, "timeout of the reply to the test message")
	return c
}

func runCheck(cmd *cobra.Command, io *IOStreams, g *globalOptions, o *checkOptions, args []string) error {
	cfg, err := g.config()
	if err != nil {
		return err
	}
	d, err := newDialer(cfg, o.helo, o.ca, o.timeouts)
	if err != nil {
		return err
	}
	if o.openRelay != "" {
		return runCheckRelay(cmd, io, d, o, args)
	}
	if o.rcpt != "" {
		return usagef("--rcpt goes with --open-relay; the test message's recipient is --send-to")
	}
	via, password := cfg.Upstream()
	if len(args) == 1 {
		via = args[0]
	} else if o.via != "" {
		via = o.via
	}
	if via == "" || via == "direct" {
		return usagef("no upstream to check: give its URL (smtp://user@host:587 or smtps://user@host:465) or set via: in relayctl.yaml; to test a server's port 25, use --open-relay HOST")
	}
	if d.Upstream, err = send.ParseUpstream(via); err != nil {
		return usageError{err}
	}
	d.Upstream.Password = password
	co := send.CheckOptions{}
	if o.sendTo != "" {
		if co.SendTo, err = mailbox("--send-to", o.sendTo); err != nil {
			return err
		}
		from := firstNonEmpty(o.from, cfg.Message.ReturnPath)
		if from == "" && strings.Contains(d.Upstream.Username, "@") {
			from = d.Upstream.Username
		}
		if from == "" {
			return usagef("--send-to needs a sender: --from ADDR, or message.return_path in relayctl.yaml")
		}
		if co.From, err = mailbox("--from", from); err != nil {
			return err
		}
	}
	rep, err := d.CheckUpstream(cmd.Context(), co)
	if rep == nil {
		return err
	}
	if o.json {
		if jerr := writeJSON(io.Out, rep); jerr != nil {
			return jerr
		}
		return err
	}
	verdict := ""
	if err == nil {
		verdict = fmt.Sprintf("%s:%d: every check passed", rep.Host, rep.Port)
	}
	if rerr := renderSteps(io.Out, rep.Steps, verdict); rerr != nil {
		return rerr
	}
	return err
}

func runCheckRelay(cmd *cobra.Command, io *IOStreams, d *send.Dialer, o *checkOptions, args []string) error {
	if len(args) > 0 || o.via != "" || o.sendTo != "" {
		return usagef("--open-relay tests HOST[:PORT] alone: no upstream URL, --via or --send-to with it")
	}
	host, port, err := send.ParseRelayTarget(o.openRelay)
	if err != nil {
		return usagef("--open-relay %v", err)
	}
	ro := send.RelayCheckOptions{}
	if o.from != "" {
		if ro.From, err = mailbox("--from", o.from); err != nil {
			return err
		}
	}
	if o.rcpt != "" {
		if ro.Rcpt, err = mailbox("--rcpt", o.rcpt); err != nil {
			return err
		}
	}
	rep, err := d.CheckRelay(cmd.Context(), host, port, ro)
	if o.json {
		if jerr := writeJSON(io.Out, rep); jerr != nil {
			return jerr
		}
		return err
	}
	if rerr := renderSteps(io.Out, rep.Steps, rep.Verdict); rerr != nil {
		return rerr
	}
	return err
}

// renderSteps prints a check's steps as a table, then its verdict.
func renderSteps(w io.Writer, steps []send.Step, verdict string) error {
	t := newTable(w, "STEP", "RESULT", "DETAIL")
	for _, s := range steps {
		t.Append(s.Name, string(s.Result), s.Detail)
	}
	if err := t.Render(); err != nil {
		return err
	}
	if verdict != "" {
		fmt.Fprintln(w, verdict)
	}
	return nil
}

// mailbox reads a bare address from a flag.
func mailbox(flag, s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
		return "", usagef("%s %q: want a mail address, like someone@example.com", flag, s)
	}
	return a.Address, nil
}
