package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/relayctl/relayctl/relay"
	"github.com/relayctl/relayctl/store"
)

// userJSON is one entry of user list --json; its field names are a public
// interface.
type userJSON struct {
	Name      string `json:"name"`
	CRAMMD5   bool   `json:"cram_md5"`
	CreatedAt string `json:"created_at"`
}

func newUserCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "user",
		Short: "Manage who may relay through relayctl serve after AUTH",
		Long: `user adds, removes and lists the users relayctl serve accepts with AUTH
PLAIN or LOGIN (over TLS) and, for users added with --cram-md5, CRAM-MD5.

Passwords are stored as bcrypt hashes. CRAM-MD5 proves the password without
sending it, but the server must then keep the password itself: a user
added with --cram-md5 has it stored in the database in the clear, and
anyone who can read the database can log in as that user. Prefer PLAIN or
LOGIN over TLS, and use --cram-md5 only for old clients that need it.`,
	}
	c.AddCommand(newUserAddCmd(io, g), newUserRemoveCmd(io, g), newUserListCmd(io, g))
	return c
}

func newUserAddCmd(ios *IOStreams, g *globalOptions) *cobra.Command {
	var cram, replace bool
	c := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user (the password is read from standard input)",
		Long: `add stores a user. The password is asked for twice at a terminal, or read
from the first line of standard input otherwise (never from the command
line, where ps and shell history would show it).`,
		Example: `  relayctl user add app1
  pwgen -s 32 1 | tee app1.secret | relayctl user add app1`,
		Args: exactArgs(1, "a user name"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if name == "" || strings.ContainsAny(name, " \t\r\n\x00") {
				return usagef("user name %q: no spaces or control characters", name)
			}
			pass, err := readPassword(ios)
			if err != nil {
				return usageError{err}
			}
			hash, err := relay.HashPassword(pass)
			if err != nil {
				return usageError{err}
			}
			u := store.User{Name: name, Hash: hash}
			if cram {
				u.CRAM = pass
			}
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.PutUser(cmd.Context(), u, replace); err != nil {
				if errors.Is(err, store.ErrExists) {
					return usageError{err}
				}
				return err
			}
			fmt.Fprintf(ios.ErrOut, "user %s saved\n", name)
			return nil
		}),
	}
	c.Flags().BoolVar(&cram, "cram-md5", false, "also allow CRAM-MD5, which stores the password itself in the database (see relayctl user --help)")
	c.Flags().BoolVar(&replace, "replace", false, "change the password of an existing user")
	return c
}

// readPassword asks twice at a terminal, or reads stdin's first line.
func readPassword(ios *IOStreams) (string, error) {
	if f, ok := ios.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(ios.ErrOut, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(ios.ErrOut)
		if err != nil {
			return "", err
		}
		fmt.Fprint(ios.ErrOut, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(ios.ErrOut)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), checkPassword(string(p1))
	}
	line, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	p := strings.TrimRight(line, "\r\n")
	return p, checkPassword(p)
}

func checkPassword(p string) error {
	if len(p) < 8 {
		return errors.New("password: at least 8 characters, on the first line of standard input")
	}
	return nil
}

func newUserRemoveCmd(ios *IOStreams, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user (sessions already logged in keep going until they end)",
		Args:  exactArgs(1, "a user name"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ok, err := st.RemoveUser(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !ok {
				return usagef("no user %q", args[0])
			}
			fmt.Fprintf(ios.ErrOut, "user %s removed\n", args[0])
			return nil
		}),
	}
}

func newUserListCmd(ios *IOStreams, g *globalOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the users",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			users, err := st.Users(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]userJSON, len(users))
				for i, u := range users {
					out[i] = userJSON{u.Name, u.CRAM != "", u.Created.UTC().Format(time.RFC3339)}
				}
				return writeJSON(ios.Out, out)
			}
			t := newTable(ios.Out, "USER", "CRAM-MD5", "CREATED")
			for _, u := range users {
				cram := "no"
				if u.CRAM != "" {
					cram = "yes (password stored)"
				}
				if err := t.Append(u.Name, cram, u.Created.UTC().Format(time.DateOnly)); err != nil {
					return err
				}
			}
			return t.Render()
		}),
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the users as a JSON array")
	return c
}
