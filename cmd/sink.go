package cmd

import (
	"fmt"
	"net"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/sink"
)

func newSinkCmd(io *IOStreams) *cobra.Command {
	var listen, dir string
	c := &cobra.Command{
		Use:   "sink --dir DIR",
		Short: "Run a capture SMTP server that keeps every message as an .eml file",
		Long: `sink accepts every message and writes one .eml file per recipient into
--dir (Return-Path and Delivered-To in front), relaying nothing. Point
relayctl run at it (--via smtp://127.0.0.1:2525?tls=none) to try a
campaign end to end without sending real mail, and open the files in any
mail client. It runs until interrupted.`,
		Example: `  relayctl sink --listen 127.0.0.1:2525 --dir /tmp/sink`,
		Args:    exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usagef("sink needs --dir, where the messages go")
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usagef("--listen %q: want HOST:PORT", listen)
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				fmt.Fprintf(io.ErrOut, "relayctl: warning: %s is not a loopback address: anyone who can reach it can drop mail here\n", host)
			}
			s, err := sink.Listen(listen, dir)
			if err != nil {
				return usageError{err}
			}
			s.Received = func(from string, to []string, size int, files []string) {
				fmt.Fprintf(io.Out, "from <%s> to <%s>, %d bytes: %s\n", from, strings.Join(to, ">, <"), size, strings.Join(files, " "))
			}
			fmt.Fprintf(io.ErrOut, "sink listening on %s, writing to %s\n", s.Addr, dir)
			go func() {
				<-cmd.Context().Done()
				s.Close()
			}()
			if err := s.Serve(); err != nil {
				return err
			}
			return cmd.Context().Err()
		}),
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:2525", "address to listen on")
	c.Flags().StringVar(&dir, "dir", "", "directory for the .eml files (created)")
	return c
}
