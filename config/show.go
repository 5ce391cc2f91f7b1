package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Mask stands in for a secret wherever a configuration is shown.
const Mask = "****"

// EnvSMTPPassword, when set, is the upstream's password, over the file's.
const EnvSMTPPassword = "RELAYCTL_SMTP_PASSWORD"

// Effective returns the configuration as the commands apply it:
// RELAYCTL_SMTP_PASSWORD in place of the file's password, and the DKIM key
// resolved against the file's directory. c is not changed.
func (c *Config) Effective() *Config {
	e := *c
	if pw := os.Getenv(EnvSMTPPassword); pw != "" {
		e.SMTPPassword = pw
	}
	if c.DKIM != nil {
		d := *c.DKIM
		d.Key = c.dkimKeyPath()
		e.DKIM = &d
	}
	return &e
}

// EnvOverrides names the environment variables that change what the file
// says.
func (c *Config) EnvOverrides() []string {
	var names []string
	if os.Getenv(EnvSMTPPassword) != "" {
		names = append(names, EnvSMTPPassword)
	}
	return names
}

// Masked returns a copy of c with every secret replaced by Mask: the
// passwords, and a password in the via URL. c is not changed.
func (c *Config) Masked() *Config {
	m := *c
	for _, s := range []*string{&m.SMTPPassword, &m.SMTPRelayPassword} {
		if *s != "" {
			*s = Mask
		}
	}
	m.Via = MaskURL(m.Via)
	return &m
}

var urlPassword = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:@/]*):[^@/]*@`)

// MaskURL replaces the password of a URL such as
// smtp://user:secret@host:587 with Mask.
func MaskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Unparsable, but perhaps still holding a password.
		return urlPassword.ReplaceAllString(s, "${1}:"+Mask+"@")
	}
	if u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	// url would escape the mask's asterisks.
	const placeholder = "MASKEDPASSWORD"
	u.User = url.UserPassword(u.User.Username(), placeholder)
	return strings.Replace(u.String(), ":"+placeholder+"@", ":"+Mask+"@", 1)
}

// Document returns c as a YAML mapping in the file's own keys, holding
// only the keys that are set: what `relayctl config show` prints.
func (c *Config) Document() (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, fmt.Errorf("config %s: %w", c.Path, err)
	}
	prune(&n)
	return &n, nil
}

// durationKeys are written by the YAML library as nanoseconds, their type
// having no MarshalYAML; they are shown as the file writes them ("5m0s").
var durationKeys = map[string]bool{"max_connection_age": true}

// prune drops the unset keys of mapping n and its descendants.
func prune(n *yaml.Node) {
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			prune(c)
		}
	case yaml.MappingNode:
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if durationKeys[k.Value] && v.Kind == yaml.ScalarNode && v.Tag == "!!int" && v.Value != "0" {
				if ns, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
					v.Value, v.Tag = time.Duration(ns).String(), "!!str"
				}
			}
			prune(v)
			if !unset(v) {
				kept = append(kept, k, v)
			}
		}
		n.Content = kept
	}
}

func unset(v *yaml.Node) bool {
	switch v.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		return len(v.Content) == 0
	case yaml.ScalarNode:
		switch v.Tag {
		case "!!null":
			return true
		case "!!str":
			return v.Value == ""
		case "!!int":
			return v.Value == "0"
		case "!!bool":
			return v.Value == "false"
		case "!!float":
			return v.Value == "0"
		}
	}
	return false
}

// dkimKeyPath is the key file as Signer reads it: relative to the
// configuration file's directory.
func (c *Config) dkimKeyPath() string {
	key := c.DKIM.Key
	if key != "" && !filepath.IsAbs(key) && c.Path != "" {
		key = filepath.Join(filepath.Dir(c.Path), key)
	}
	return key
}
