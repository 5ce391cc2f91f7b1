package cmd

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/relayctl/relayctl/config"
	"github.com/relayctl/relayctl/listclean"
)

func newConfigCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Inspect relayctl.yaml",
		Args:  cobra.ArbitraryArgs,
		RunE:  subcommands,
	}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration, secrets masked",
		Long: `show prints the configuration the other commands would use: the file
(named by --config or RELAYCTL_CONFIG, else ./relayctl.yaml if it exists)
and how it was found, the environment variables that override it, the
database and DNS resolver, the delivery route run takes, and the file's
settings that are set, with RELAYCTL_SMTP_PASSWORD applied and the DKIM key
path resolved as run resolves them. Passwords, in their own keys or in the
via URL, are shown as ****.

Output is YAML; --json prints the same as one JSON object.`,
		Example: `  relayctl config show
  relayctl --config /etc/relayctl/relayctl.yaml config show --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			v, err := configShowOf(cmd, g)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(io.Out, v)
			}
			enc := yaml.NewEncoder(io.Out)
			enc.SetIndent(2)
			if err := enc.Encode(v); err != nil {
				return err
			}
			return enc.Close()
		}),
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print the configuration as one JSON object")
	c.AddCommand(show)
	return c
}

// configShowJSON is config show's output; its field names are a public
// interface.
type configShowJSON struct {
	File     string   `json:"file" yaml:"file"`
	From     string   `json:"from" yaml:"from"`
	Env      []string `json:"env" yaml:"env"`
	DB       string   `json:"db" yaml:"db"`
	Resolver string   `json:"resolver" yaml:"resolver"`
	Delivery string   `json:"delivery" yaml:"delivery"`

	Settings     *yaml.Node `json:"-" yaml:"settings"`
	SettingsJSON any        `json:"settings" yaml:"-"`
}

func configShowOf(cmd *cobra.Command, g *globalOptions) (*configShowJSON, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	v := &configShowJSON{File: cfg.Path, From: "none", Env: cfg.EnvOverrides(), DB: g.db, Delivery: "direct"}
	switch {
	case cmd.Flag("config").Changed:
		v.From = "--config"
	case g.configPath != "":
		v.From = "RELAYCTL_CONFIG"
		v.Env = append(v.Env, "RELAYCTL_CONFIG")
	case cfg.Path != "":
		v.From = "./" + config.DefaultPath
	}
	if v.File != "" {
		if abs, err := filepath.Abs(v.File); err == nil {
			v.File = abs
		}
	}
	if !cmd.Flag("db").Changed && envOr("RELAYCTL_DB", "") != "" {
		v.Env = append(v.Env, "RELAYCTL_DB")
	}
	// As run and clean choose their DNS server: RELAYCTL_RESOLVER, else
	// the first nameserver of /etc/resolv.conf.
	v.Resolver = envOr("RELAYCTL_RESOLVER", "")
	if v.Resolver != "" {
		v.Env = append(v.Env, "RELAYCTL_RESOLVER")
	}
	if r, err := listclean.NewResolver(v.Resolver, time.Second); err == nil {
		v.Resolver = r.Server()
	}
	eff := cfg.Effective()
	if via, _ := eff.Upstream(); via != "" {
		v.Delivery = config.MaskURL(via)
	}
	if v.Settings, err = eff.Masked().Document(); err != nil {
		return nil, err
	}
	if err := v.Settings.Decode(&v.SettingsJSON); err != nil {
		return nil, fmt.Errorf("config %s: %w", cfg.Path, err)
	}
	if v.Env == nil {
		v.Env = []string{}
	}
	return v, nil
}
