package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestMaskURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"smtp://postmaster:hunter2@mg.example.org:587", "smtp://postmaster:****@mg.example.org:587"},
		{"smtps://u%40x:p%2Fw@relay.example.org:465?tls=none", "smtps://u%40x:****@relay.example.org:465?tls=none"},
		{"smtp://postmaster@mg.example.org:587", "smtp://postmaster@mg.example.org:587"},
		{"direct", "direct"},
		{"", ""},
		// Not a URL Go parses (a bad escape), but a password all the same.
		{"smtp://user:bad%zzpass@host.example:587", "smtp://user:****@host.example:587"},
	} {
		if got := MaskURL(tt.in); got != tt.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEffectiveMaskedDocument(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relayctl.yaml")
	yml := `via: smtp://postmaster:hunter2@mg.example.org:587
smtp_relay_password: other
helo: relay.example.org
dkim:
  domain: example.org
  selector: s2026
  key: keys/s2026.pem
providers:
  default:
    max_connection_age: 90s
  providers:
    - name: yahoo
      per_hour: 2000
`
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, true)
	if err != nil {
		t.Fatal(err)
	}

	t.Setenv(EnvSMTPPassword, "from-env")
	e := c.Effective()
	if e.SMTPPassword != "from-env" {
		t.Errorf("Effective().SMTPPassword = %q, want the environment's", e.SMTPPassword)
	}
	if want := filepath.Join(dir, "keys/s2026.pem"); e.DKIM.Key != want {
		t.Errorf("Effective().DKIM.Key = %q, want %q", e.DKIM.Key, want)
	}
	if c.SMTPPassword != "" || c.DKIM.Key != "keys/s2026.pem" {
		t.Errorf("Effective changed its receiver: %+v", c)
	}
	if got := c.EnvOverrides(); len(got) != 1 || got[0] != EnvSMTPPassword {
		t.Errorf("EnvOverrides() = %v, want [%s]", got, EnvSMTPPassword)
	}

	n, err := e.Masked().Document()
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, secret := range []string{"hunter2", "other", "from-env"} {
		if strings.Contains(got, secret) {
			t.Errorf("document shows the secret %q:\n%s", secret, got)
		}
	}
	for _, want := range []string{
		"via: smtp://postmaster:****@mg.example.org:587\n",
		"smtp_password: '****'\n",
		"smtp_relay_password: '****'\n",
		"max_connection_age: 1m30s\n",
		"per_hour: 2000\n",
		"helo: relay.example.org\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("document lacks %q:\n%s", want, got)
		}
	}
	// Unset keys are left out, zero durations among them.
	for _, unset := range []string{"tls_ca", "smtp_relay_port", "message", "connections:", "age: 0s", "null"} {
		if strings.Contains(got, unset) {
			t.Errorf("document shows unset %q:\n%s", unset, got)
		}
	}
}

func TestDocumentOfNothing(t *testing.T) {
	n, err := (&Config{}).Document()
	if err != nil {
		t.Fatal(err)
	}
	if n.Kind != yaml.MappingNode || len(n.Content) != 0 {
		t.Errorf("Document of an empty configuration has %d nodes, want an empty mapping", len(n.Content))
	}
}
