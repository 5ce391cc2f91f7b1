// Package config reads relayctl.yaml, the settings that outlive one
// command line: the provider table's overrides, the sender's message
// settings, the DKIM key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/plan"
)

// DefaultPath is read when neither --config nor RELAYCTL_CONFIG names a file.
const DefaultPath = "relayctl.yaml"

// Config is relayctl.yaml.
type Config struct {
	// Path is the file it was read from ("" if none).
	Path string `yaml:"-"`
	// Providers is laid over the embedded provider table: same shape as
	// plan/providers.yaml (default:, providers:).
	Providers *plan.Table `yaml:"providers"`
	// Message holds the sender's choices fixed into each campaign planned.
	Message message.Settings `yaml:"message"`
	// DKIM is the signing key; messages are unsigned without it.
	DKIM *DKIM `yaml:"dkim"`

	// Via is how run delivers: "direct" (the built-in relay, to each
	// domain's MX hosts) or an upstream URL, smtp://user@host:587 or
	// smtps://user@host:465.
	Via string `yaml:"via"`
	// The familiar names for an upstream, as other tools spell them.
	SMTPRelayServer   string `yaml:"smtp_relay_server"`
	SMTPRelayPort     int    `yaml:"smtp_relay_port"`
	SMTPRelayUsername string `yaml:"smtp_relay_username"`
	SMTPRelayPassword string `yaml:"smtp_relay_password"`
	// SMTPPassword is the upstream's password (RELAYCTL_SMTP_PASSWORD wins).
	SMTPPassword string `yaml:"smtp_password"`
	// TLSCA is a PEM file of CA certificates to trust besides the system's.
	TLSCA string `yaml:"tls_ca"`
	// HELO is the name run introduces itself with (default: the host's FQDN).
	HELO string `yaml:"helo"`
}

// Upstream returns the configured upstream URL ("" for direct delivery)
// and its password.
func (c *Config) Upstream() (string, string) {
	via := c.Via
	if via == "" && c.SMTPRelayServer != "" {
		port := c.SMTPRelayPort
		if port == 0 {
			port = 587
		}
		scheme := "smtp"
		if port == 465 {
			scheme = "smtps"
		}
		user := ""
		if c.SMTPRelayUsername != "" {
			user = url.User(c.SMTPRelayUsername).String() + "@"
		}
		via = fmt.Sprintf("%s://%s%s:%d", scheme, user, c.SMTPRelayServer, port)
	}
	if via == "direct" {
		via = ""
	}
	return via, firstSet(os.Getenv(EnvSMTPPassword), c.SMTPPassword, c.SMTPRelayPassword)
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// DKIM names the signing domain, selector and private key file.
type DKIM struct {
	Domain   string `yaml:"domain"`
	Selector string `yaml:"selector"`
	Key      string `yaml:"key"`
}

// Signer loads the DKIM key, or returns nil when none is configured.
func (c *Config) Signer() (*message.Signer, error) {
	if c.DKIM == nil {
		return nil, nil
	}
	s, err := message.LoadSigner(c.DKIM.Domain, c.DKIM.Selector, c.dkimKeyPath())
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.Path, err)
	}
	return s, nil
}

// Load reads the configuration at path. A missing file is an error only
// when required (the user named it); otherwise it means defaults.
func Load(path string, required bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, unwrap(err))
	}
	c := &Config{Path: path}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && err != io.EOF {
		return nil, fmt.Errorf("config %s: %s", path, friendly(err))
	}
	if err := c.Message.Check(); err != nil {
		return nil, fmt.Errorf("config %s: message: %w", path, err)
	}
	return c, nil
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// friendly rewrites the YAML library's messages in the user's terms.
func friendly(err error) string {
	msg := unknownField.ReplaceAllString(err.Error(), "unknown key \"$1\"")
	return regexp.MustCompile(`^yaml: (unmarshal errors:\s*)?`).ReplaceAllString(msg, "")
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ProviderTable is the embedded provider table with this configuration's
// overrides laid over it.
func (c *Config) ProviderTable() (*plan.Table, error) {
	t := plan.DefaultTable()
	if c.Providers == nil {
		return t, nil
	}
	t, err := t.Override(c.Providers)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.Path, err)
	}
	return t, nil
}
