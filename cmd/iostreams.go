package cmd

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are a command's standard streams and what they are attached
// to: progress bars are drawn only for a person at a terminal, and cron gets
// plain log lines.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	OutTTY bool
	ErrTTY bool
}

// System returns the process's streams.
func System() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		OutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// Interactive reports whether a person is watching: progress bars go to
// stderr only then.
func (s *IOStreams) Interactive() bool { return s.OutTTY && s.ErrTTY }
