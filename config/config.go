// Package config reads relayctl.yaml, the settings that outlive one
// command line: for now the provider table's overrides.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"

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
