package plan

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed providers.yaml
var providersYAML []byte

// Limits shape the traffic to one provider. Zero fields mean "not set"
// (inherit the default) until a table is resolved.
type Limits struct {
	Connections      int      `yaml:"connections" json:"connections"`
	PerConnection    int      `yaml:"per_connection" json:"per_connection"`
	PerMessage       int      `yaml:"per_message" json:"per_message"`
	MaxConnectionAge Duration `yaml:"max_connection_age" json:"max_connection_age"`
	PerHour          int      `yaml:"per_hour" json:"per_hour,omitempty"`
}

// Duration is a time.Duration written as "5m" in YAML.
type Duration time.Duration

// UnmarshalYAML reads "90s", "5m", "1h".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 5m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// inherit fills l's unset fields from def.
func (l Limits) inherit(def Limits) Limits {
	if l.Connections == 0 {
		l.Connections = def.Connections
	}
	if l.PerConnection == 0 {
		l.PerConnection = def.PerConnection
	}
	if l.PerMessage == 0 {
		l.PerMessage = def.PerMessage
	}
	if l.MaxConnectionAge == 0 {
		l.MaxConnectionAge = def.MaxConnectionAge
	}
	if l.PerHour == 0 {
		l.PerHour = def.PerHour
	}
	return l
}

// Provider is a mailbox provider: the domains and MX hosts that are its,
// and the limits it tolerates.
type Provider struct {
	Name       string   `yaml:"name"`
	MXSuffixes []string `yaml:"mx_suffixes"`
	Domains    []string `yaml:"domains"`
	Limits     `yaml:",inline"`
}

// Table is the provider table: which domains belong to which provider, and
// the shaping limits for each.
type Table struct {
	Default   Limits     `yaml:"default"`
	Providers []Provider `yaml:"providers"`

	byDomain map[string]int
}

// DefaultTable returns the embedded provider table.
func DefaultTable() *Table {
	t, err := ParseTable(providersYAML)
	if err != nil {
		panic("plan: embedded providers.yaml: " + err.Error())
	}
	return t
}

// ParseTable reads a provider table in the format of providers.yaml.
// Unknown keys are errors.
func ParseTable(data []byte) (*Table, error) {
	var t Table
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("provider table: %w", err)
	}
	return &t, t.index()
}

// Override returns a table with o's default and providers laid over t's:
// a provider of the same name is replaced field by field where o sets the
// field, a new one is added.
func (t *Table) Override(o *Table) (*Table, error) {
	n := &Table{Default: o.Default.inherit(t.Default), Providers: slices.Clone(t.Providers)}
	for _, p := range o.Providers {
		i := slices.IndexFunc(n.Providers, func(q Provider) bool { return q.Name == p.Name })
		if i < 0 {
			n.Providers = append(n.Providers, p)
			continue
		}
		q := n.Providers[i]
		q.Limits = p.Limits.inherit(q.Limits)
		if p.MXSuffixes != nil {
			q.MXSuffixes = p.MXSuffixes
		}
		if p.Domains != nil {
			q.Domains = p.Domains
		}
		n.Providers[i] = q
	}
	return n, n.index()
}

func (t *Table) index() error {
	if t.Default.Connections <= 0 || t.Default.PerConnection <= 0 {
		return fmt.Errorf("provider table: default needs connections and per_connection")
	}
	if t.Default.PerMessage <= 0 {
		t.Default.PerMessage = 1
	}
	t.byDomain = map[string]int{}
	seen := map[string]bool{}
	for i := range t.Providers {
		p := &t.Providers[i]
		if p.Name == "" || strings.ContainsAny(p.Name, ". ") {
			return fmt.Errorf("provider table: provider name %q: want a word without dots or spaces", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("provider table: provider %q listed twice", p.Name)
		}
		seen[p.Name] = true
		for j, s := range p.MXSuffixes {
			p.MXSuffixes[j] = strings.ToLower(strings.Trim(s, "."))
		}
		for _, d := range p.Domains {
			t.byDomain[strings.ToLower(d)] = i
		}
	}
	return nil
}

// Group is the name recipients of domain are planned under: the provider
// whose MX suffix matches the domain's best MX host, or (with no MX
// information) whose domain list names it; otherwise the domain itself.
func (t *Table) Group(domain string, mx []string) string {
	if len(mx) > 0 {
		host := strings.ToLower(strings.TrimSuffix(mx[0], "."))
		best, bestLen := "", 0
		for _, p := range t.Providers {
			for _, s := range p.MXSuffixes {
				if (host == s || strings.HasSuffix(host, "."+s)) && len(s) > bestLen {
					best, bestLen = p.Name, len(s)
				}
			}
		}
		if best != "" {
			return best
		}
		return domain
	}
	if i, ok := t.byDomain[domain]; ok {
		return t.Providers[i].Name
	}
	return domain
}

// IsProvider reports whether group names a provider rather than a domain.
func IsProvider(group string) bool { return !strings.Contains(group, ".") }

// LimitsFor returns the resolved limits of a group.
func (t *Table) LimitsFor(group string) Limits {
	for _, p := range t.Providers {
		if p.Name == group {
			return p.Limits.inherit(t.Default)
		}
	}
	return t.Default
}
