// Package cmd holds relayctl's cobra commands. Each command turns its flags
// into an options struct, calls into listclean, plan, send or store, and
// renders the result; the logic lives in those packages.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/config"
	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/store"
)

// Exit codes, the contract with scripts and cron lines. docs/exit-codes.md
// lists them for users.
const (
	ExitOK          = 0   // the command did its job (rejected rows are normal)
	ExitError       = 1   // anything else: network, store, I/O
	ExitUsage       = 2   // bad command line, or bad input such as an unreadable list
	ExitStopped     = 3   // run stopped by the sender's own fault: fatal reply, bounce guard
	ExitLocked      = 4   // another run holds the campaign (an overlapping cron run)
	ExitInterrupted = 130 // stopped by SIGINT
	ExitTerminated  = 143 // stopped by SIGTERM
)

// usageError marks errors that are the caller's to fix: flags, arguments,
// input files.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// ranError marks errors returned from a command's own run, as opposed to
// cobra's parsing, which are all usage errors.
type ranError struct{ err error }

func (e ranError) Error() string { return e.err.Error() }
func (e ranError) Unwrap() error { return e.err }

// Execute runs relayctl with the process's arguments and exits.
func Execute() {
	os.Exit(Run(context.Background(), os.Args[1:], System()))
}

// Run runs relayctl with args and returns the exit code.
func Run(ctx context.Context, args []string, io *IOStreams) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var got os.Signal
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case got = <-sigs:
			cancel()
		case <-done:
		}
	}()
	root := newRootCmd(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(io.ErrOut, "relayctl: %s\n", oneLine(err))
	code := exitCode(ctx, err)
	if code == ExitInterrupted && got == syscall.SIGTERM {
		code = ExitTerminated
	}
	return code
}

func exitCode(ctx context.Context, err error) int {
	var se stoppedError
	if errors.As(err, &se) {
		return ExitStopped
	}
	if errors.Is(err, store.ErrLocked) {
		return ExitLocked
	}
	var ue usageError
	var ie *listclean.InputError
	var pe *plan.PlanError
	var te *message.TemplateError
	var re ranError
	switch {
	case ctx.Err() != nil:
		return ExitInterrupted
	case errors.As(err, &ue), errors.As(err, &ie), errors.As(err, &pe), errors.As(err, &te):
		return ExitUsage
	case !errors.As(err, &re):
		return ExitUsage // cobra's own: unknown command or flag, wrong arguments
	}
	return ExitError
}

// oneLine keeps an error message to a single line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// globalOptions are the flags every command has.
type globalOptions struct {
	db         string
	configPath string
}

func newRootCmd(io *IOStreams) *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "relayctl",
		Short: "Run bulk mailings the way a careful mail administrator would",
		Long: `relayctl cleans recipient lists, plans provider-aware sending jobs and
delivers them through a relay, unattended and resumable.

Exit codes: 0 done, 1 error, 2 bad usage or input, 3 run stopped by the
sender's own fault, 4 another run holds the campaign, 130 interrupted
(SIGINT), 143 terminated (SIGTERM).`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.PersistentFlags().StringVar(&g.db, "db", envOr("RELAYCTL_DB", "relayctl.db"),
		"SQLite database holding the domain cache, suppressions and campaigns (env RELAYCTL_DB)")
	root.PersistentFlags().StringVar(&g.configPath, "config", os.Getenv("RELAYCTL_CONFIG"),
		"configuration file (env RELAYCTL_CONFIG; default ./relayctl.yaml if it exists)")
	root.AddCommand(newCleanCmd(io, g), newPlanCmd(io, g), newPlansCmd(io, g), newPreviewCmd(io, g), newDKIMCmd(io),
		newRunCmd(io, g), newStatusCmd(io, g), newSinkCmd(io),
		newReportCmd(io, g), newSuppressCmd(io, g), newCheckCmd(io, g), newDoctorCmd(io, g),
		newConfigCmd(io, g), newServeCmd(io, g), newUserCmd(io, g), newQueueCmd(io, g), newClientsCmd(io, g), newManCmd(io), newVersionCmd(io), newDemoCmd(io))
	setVersion(root) // root.Version, printed by --version as by relayctl version
	return root
}

// runE adapts a command's run function, marking its errors as its own.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return ranError{err}
		}
		return nil
	}
}

// exactArgs is cobra.ExactArgs with a message that names what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s wants %s (see '%s --help')", cmd.CommandPath(), what, cmd.CommandPath())
		}
		return nil
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (g *globalOptions) openStore(ctx context.Context) (*store.Store, error) {
	return store.Open(ctx, g.db)
}

// config reads the configuration file: the one named by --config or
// RELAYCTL_CONFIG, which must exist, or ./relayctl.yaml if there is one.
func (g *globalOptions) config() (*config.Config, error) {
	if g.configPath != "" {
		c, err := config.Load(g.configPath, true)
		if err != nil {
			return nil, usageError{err}
		}
		return c, nil
	}
	c, err := config.Load(config.DefaultPath, false)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// notFoundIsUsage makes a missing campaign the caller's error (exit 2).
func notFoundIsUsage(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return usageError{err}
	}
	return err
}

// campaignArg is the campaign a command acts on: the one named (args[0]),
// or, when none is, the one plan.Pick chooses; its error is the caller's
// to fix.
func campaignArg(cmd *cobra.Command, st *store.Store, args []string, newest bool) (string, error) {
	if len(args) > 0 && args[0] != "" {
		return args[0], nil
	}
	name, err := plan.Pick(cmd.Context(), st, newest)
	var ce *plan.ChoiceError
	if errors.As(err, &ce) {
		return "", usageError{err}
	}
	return name, err
}
