package cmd

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/config"
	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/send"
)

type runOptions struct {
	resume, once, json bool
	resumeStopped      bool
	via, helo, ca      string
	retry              string
	maxAge, cooldown   time.Duration
	timeouts           send.Timeouts
	maxBounceRate      float64
	port               int
	dns                dnsFlags
}

func newRunCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	o := &runOptions{}
	c := &cobra.Command{
		Use:   "run [CAMPAIGN]",
		Short: "Send a planned campaign, job by job, resumably",
		Long: `run executes a campaign's jobs in order, each not before its planned start
and --gap after the previous one ended, through the built-in relay (direct
delivery to each domain's MX hosts) or an upstream (--via
smtp://user@host:587, smtps://user@host:465; the password from
relayctl.yaml or RELAYCTL_SMTP_PASSWORD, never from the command line).

Each recipient is marked sending before its DATA and sent when the server
says 250, so a run killed at any point resumes without losing anyone and
repeats at most one message per open connection. 4xx replies, timeouts and
dropped connections are retried on --retry-schedule until --max-age; 5xx
bounces, and mailbox-level ones go on the suppression list; a provider that
throttles or blocks is paused (--cooldown, doubling); an authentication or
sender-configuration refusal stops the run with the fix named.

A campaign with progress needs --resume. Without CAMPAIGN, the one
unfinished campaign is run: "relayctl run CAMPAIGN --resume --once" every
few minutes is the cron line. --once does what is due and exits. A campaign
stopped by a fatal reply or paused by the bounce guard stays stopped for
--resume (so cron does not undo the guard): fix the cause, then run it
once with --resume-stopped.

Exit status: 0 done or waiting, 1 error, 2 bad usage, 3 stopped (fatal
sender error or bounce guard), 4 another run holds the campaign (an
overlapping cron run: nothing was done), 130/143 interrupted
(SIGINT/SIGTERM).`,
		Example: `  relayctl run agm-2026
  relayctl run --resume --once            # from cron
  RELAYCTL_SMTP_PASSWORD=... relayctl run agm-2026 --via smtp://postmaster@mg.example.org:587`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return runRun(cmd, io, g, o, name)
		}),
	}
	f := c.Flags()
	f.BoolVar(&o.resume, "resume", false, "continue a campaign that has progress")
	f.BoolVar(&o.resumeStopped, "resume-stopped", false, "also continue a campaign a fatal reply or the bounce guard stopped, once the cause is fixed (implies --resume)")
	f.BoolVar(&o.once, "once", false, "do what is due now and exit (for cron)")
	f.BoolVar(&o.json, "json", false, "one JSON object per event on stdout")
	f.StringVar(&o.via, "via", "", "direct, or an upstream URL smtp://user@host:587 / smtps://user@host:465 (default: relayctl.yaml's, else direct)")
	f.StringVar(&o.helo, "helo", "", "name to introduce ourselves with in EHLO (default: relayctl.yaml's helo, else this host's name)")
	f.StringVar(&o.ca, "ca", "", "PEM file of CA certificates to trust besides the system's (relayctl.yaml tls_ca)")
	f.StringVar(&o.retry, "retry-schedule", "", "waits between attempts, e.g. 5m,10m,20m,40m,1h (the last repeats)")
	f.DurationVar(&o.maxAge, "max-age", 48*time.Hour, "give up on a recipient this long after its first attempt")
	f.DurationVar(&o.cooldown, "cooldown", 30*time.Minute, "first pause of a provider that throttles (doubles each time)")
	f.Float64Var(&o.maxBounceRate, "max-bounce-rate", 0.05, "pause the campaign when a job's hard bounces pass this share")
	f.DurationVar(&o.timeouts.Dial, "connect-timeout", send.DefaultTimeouts.Dial, "timeout of each TCP connect")
	f.DurationVar(&o.timeouts.Command, "command-timeout", send.DefaultTimeouts.Command, "timeout of the greeting and each SMTP command (RFC 5321: 5m)")
	f.DurationVar(&o.timeouts.Final, "data-timeout", send.DefaultTimeouts.Final, "timeout of the reply to the end of DATA (RFC 5321: 10m)")
	f.IntVar(&o.port, "port", 0, "connect to MX hosts on this port instead of 25 (testing)")
	f.MarkHidden("port")
	o.dns.registerResolver(f)
	return c
}

func runRun(cmd *cobra.Command, io *IOStreams, g *globalOptions, o *runOptions, name string) error {
	ctx := cmd.Context()
	cfg, err := g.config()
	if err != nil {
		return err
	}
	policy := send.DefaultPolicy
	policy.MaxAge, policy.Cooldown = o.maxAge, o.cooldown
	if o.retry != "" {
		if policy.Retry, err = parseSchedule(o.retry); err != nil {
			return usagef("--retry-schedule: %v", err)
		}
	}
	dialer, err := outboundDialer(cfg, o.via, o.helo, o.ca, o.timeouts, o.port, o.dns)
	if err != nil {
		return err
	}
	signer, err := cfg.Signer()
	if err != nil {
		return usageError{err}
	}
	tuneRuntime(signer != nil)
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if name, err = campaignArg(cmd, st, []string{name}, false); err != nil {
		return err
	}
	ev := newRunEvents(io, o.json)
	sum, err := plan.Run(ctx, st, plan.RunOptions{
		Campaign: name, Resume: o.resume, ResumeStopped: o.resumeStopped, Once: o.once,
		Opener: dialer, Direct: dialer.Upstream == nil, Signer: signer, Policy: policy, MaxBounceRate: o.maxBounceRate,
		Holder: fmt.Sprintf("relayctl run (pid %d)", os.Getpid()), Host: hostname(), PID: os.Getpid(), Alive: processAlive,
		Events: ev.event, Wait: ev.wait, Log: ev.log,
	})
	ev.finish()
	if err != nil {
		var fe *send.FatalError
		var be *plan.BounceError
		var se *plan.StoppedError
		if errors.As(err, &se) {
			return stoppedError{err}
		}
		if errors.As(err, &fe) || errors.As(err, &be) {
			if sum != nil && !o.json {
				renderRunSummary(io.Out, sum)
			}
			return stoppedError{err}
		}
		if errors.Is(err, plan.ErrProgress) {
			return usageError{err}
		}
		return notFoundIsUsage(err)
	}
	if o.json {
		// An idle run's status has no counts (null): it did not count.
		return writeJSON(io.Out, map[string]any{"event": "summary", "status": statusJSONOf(sum.Campaign, sum.Counts, sum.Pauses, sum.NextDue, sum.Times),
			"resent": sum.Resent, "idle": sum.Idle})
	}
	return renderRunSummary(io.Out, sum)
}

// outboundDialer is how run and serve deliver: through the upstream of
// --via or relayctl.yaml (its password from there or the environment), or
// direct to each domain's MX hosts, found through --resolver.
func outboundDialer(cfg *config.Config, via, helo, ca string, timeouts send.Timeouts, port int, dns dnsFlags) (*send.Dialer, error) {
	dialer, err := newDialer(cfg, helo, ca, timeouts)
	if err != nil {
		return nil, err
	}
	dialer.Port = port
	cfgVia, password := cfg.Upstream()
	if via == "" {
		via = cfgVia
	}
	if via != "" && via != "direct" {
		if dialer.Upstream, err = send.ParseUpstream(via); err != nil {
			return nil, usagef("--via: %v", err)
		}
		dialer.Upstream.Password = password
		return dialer, nil
	}
	res, err := listclean.NewResolver(dns.resolver, dns.timeout)
	if err != nil {
		return nil, usagef("--resolver: %v", err)
	}
	dialer.Resolver = plan.MXResolver{R: res}
	return dialer, nil
}

// newDialer is the SMTP dialer run and check share: the EHLO name from
// --helo, relayctl.yaml or the host's name, the system's CAs and --ca's
// (or tls_ca), and the timeouts, which must be positive.
func newDialer(cfg *config.Config, helo, ca string, timeouts send.Timeouts) (*send.Dialer, error) {
	if timeouts.Dial <= 0 || timeouts.Command <= 0 || timeouts.Final <= 0 {
		return nil, usagef("--connect-timeout, --command-timeout and --data-timeout must be positive")
	}
	d := &send.Dialer{HELO: firstNonEmpty(helo, cfg.HELO, hostname()), Timeouts: timeouts}
	var err error
	if d.TLS, err = send.TLSWithCA(firstNonEmpty(ca, cfg.TLSCA)); err != nil {
		return nil, usagef("--ca: %v", err)
	}
	return d, nil
}

func parseSchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, p := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration", p)
		}
		out = append(out, d)
	}
	return out, nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// processAlive reports whether pid is a live process on this host.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// tuneRuntime fits Go's runtime to a run; GOGC and GOMAXPROCS, if set,
// still decide.
//   - The live heap is small and flat (a chunk of recipients, a message
//     a connection) while a run allocates per message: collecting at 5x
//     the live heap rather than 2x spends less CPU on the collector for a
//     few MiB more.
//   - Without DKIM signing, a run's CPU goes to system calls and one
//     SQLite writer, not to work that runs in parallel: one P spares the
//     hand-offs of goroutines between threads at every reply (16% less
//     CPU in bench/run.sh's 20k run), and one core sends over 10,000
//     messages a second, more than any relay accepts. Signing is the
//     parallel work (an RSA-2048 signature is about a millisecond), so a
//     signing run keeps every core.
func tuneRuntime(signing bool) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMAXPROCS") == "" && !signing {
		runtime.GOMAXPROCS(1)
	}
}

// stoppedError marks a run stopped by the sender's own fault (exit 3).
type stoppedError struct{ err error }

func (e stoppedError) Error() string { return e.err.Error() }
func (e stoppedError) Unwrap() error { return e.err }
