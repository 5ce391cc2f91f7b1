package plan_test

import (
	"strings"
	"testing"
	"time"

	"github.com/relayctl/relayctl/plan"
)

func TestGroupByMX(t *testing.T) {
	tab := plan.DefaultTable()
	for _, tc := range []struct {
		domain string
		mx     []string
		want   string
	}{
		{"gmail.com", []string{"gmail-smtp-in.l.google.com."}, "google"},
		{"example.com", []string{"aspmx.l.google.com"}, "google"}, // a company on Google Workspace
		{"example.org", []string{"ASPMX.L.GOOGLE.COM."}, "google"},
		{"example.net", []string{"alt1.aspmx.l.googlemail.com"}, "google"},
		{"example.com", []string{"example-com.mail.protection.outlook.com"}, "microsoft"},
		{"example.com", []string{"x.mail.protection.outlook.com"}, "microsoft"},
		{"hotmail.com", []string{"hotmail-com.olc.protection.outlook.com."}, "microsoft"},
		{"example.org", []string{"mta5.am0.yahoodns.net"}, "yahoo"},
		{"aol.com", []string{"mx-aol.mail.gm0.yahoodns.net."}, "yahoo"},
		{"example.net", []string{"mx01.mail.icloud.com"}, "apple"},
		// Not ours: the domain is its own group.
		{"example.com", []string{"mx.example.com"}, "example.com"},
		// A suffix matches whole labels only.
		{"example.com", []string{"mx.notgoogle.com"}, "example.com"},
		{"example.com", []string{"google.com.example.net"}, "example.com"},
		// Only the first (best) MX host counts.
		{"example.com", []string{"mx.example.com", "aspmx.l.google.com"}, "example.com"},
		// With MX information, the domain list is not consulted.
		{"gmail.com", []string{"mx.example.net"}, "gmail.com"},
	} {
		if got := tab.Group(tc.domain, tc.mx); got != tc.want {
			t.Errorf("Group(%q, %q) = %q, want %q", tc.domain, tc.mx, got, tc.want)
		}
	}
}

func TestGroupLongestSuffixWins(t *testing.T) {
	// Both orders: the match must not depend on which provider is listed
	// first.
	for _, yaml := range []string{`
default: {connections: 10, per_connection: 100}
providers:
  - {name: wide, mx_suffixes: [example.net]}
  - {name: narrow, mx_suffixes: [mx.example.net]}
`, `
default: {connections: 10, per_connection: 100}
providers:
  - {name: narrow, mx_suffixes: [MX.Example.NET.]}
  - {name: wide, mx_suffixes: [example.net]}
`} {
		tab, err := plan.ParseTable([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		for mx, want := range map[string]string{
			"a.mx.example.net": "narrow",
			"mx.example.net":   "narrow",
			"a.example.net":    "wide",
			"amx.example.net":  "wide",
		} {
			if got := tab.Group("example.com", []string{mx}); got != want {
				t.Errorf("Group(example.com, %s) = %q, want %q\n%s", mx, got, want, yaml)
			}
		}
	}
}

func TestGroupByDomain(t *testing.T) {
	tab := plan.DefaultTable()
	for domain, want := range map[string]string{
		"gmail.com":      "google",
		"googlemail.com": "google",
		"hotmail.co.uk":  "microsoft",
		"outlook.com":    "microsoft",
		"aol.com":        "yahoo",
		"yahoo.fr":       "yahoo",
		"icloud.com":     "apple",
		"example.com":    "example.com",
		"mail.example":   "mail.example",
		"sub.gmail.com":  "sub.gmail.com",
	} {
		for _, mx := range [][]string{nil, {}} {
			if got := tab.Group(domain, mx); got != want {
				t.Errorf("Group(%q, %#v) = %q, want %q", domain, mx, got, want)
			}
		}
	}
}

func TestIsProvider(t *testing.T) {
	for group, want := range map[string]bool{"google": true, "t-online": true, "example.com": false} {
		if got := plan.IsProvider(group); got != want {
			t.Errorf("IsProvider(%q) = %v, want %v", group, got, want)
		}
	}
}

func TestLimitsFor(t *testing.T) {
	tab := plan.DefaultTable()
	for _, tc := range []struct {
		group                      string
		connections, perConnection int
	}{
		{"google", 5, 50},
		{"microsoft", 5, 50},
		{"yahoo", 10, 20},
		{"apple", 10, 5},
		{"example.com", 10, 100},
		{"nosuchprovider", 10, 100},
	} {
		l := tab.LimitsFor(tc.group)
		if l.Connections != tc.connections || l.PerConnection != tc.perConnection {
			t.Errorf("LimitsFor(%q) = %d connections, %d per connection; want %d, %d",
				tc.group, l.Connections, l.PerConnection, tc.connections, tc.perConnection)
		}
		// Unset fields come from the default.
		if l.PerMessage != 1 || time.Duration(l.MaxConnectionAge) != 5*time.Minute || l.PerHour != 0 {
			t.Errorf("LimitsFor(%q) = %+v: want per_message 1, max_connection_age 5m, no per_hour from the default", tc.group, l)
		}
	}
}

func TestParseTableErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // all in the error
	}{
		{"unknown provider key", `
default: {connections: 10, per_connection: 100}
providers:
  - name: google
    conections: 5
`, []string{"line 5", "conections"}},
		{"unknown top-level key", `
default: {connections: 10, per_connection: 100}
provider: []
`, []string{"line 3", "provider"}},
		{"unknown default key", `
default:
  connections: 10
  per_connection: 100
  per_hours: 5
`, []string{"line 5", "per_hours"}},
		{"bad duration", `
default: {connections: 10, per_connection: 100}
providers:
  - name: google
    max_connection_age: five minutes
`, []string{"line 5", "five minutes", "duration"}},
		{"duration without unit", `
default:
  connections: 10
  per_connection: 100
  max_connection_age: 300
`, []string{"line 5", "300"}},
		{"negative duration", `
default:
  connections: 10
  per_connection: 100
  max_connection_age: -5m
`, []string{"line 5", "-5m"}},
		{"name with a dot", `
default: {connections: 10, per_connection: 100}
providers:
  - name: mail.example
`, []string{`"mail.example"`}},
		{"name with a space", `
default: {connections: 10, per_connection: 100}
providers:
  - name: big mail
`, []string{`"big mail"`}},
		{"no name", `
default: {connections: 10, per_connection: 100}
providers:
  - mx_suffixes: [example.net]
`, []string{`""`}},
		{"duplicate", `
default: {connections: 10, per_connection: 100}
providers:
  - name: google
  - name: yahoo
  - name: google
`, []string{`"google"`, "twice"}},
		{"no default", `
providers:
  - name: google
`, []string{"default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := plan.ParseTable([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("ParseTable accepted it: %+v", tab)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDefaultTableParses(t *testing.T) {
	tab := plan.DefaultTable()
	if len(tab.Providers) < 4 {
		t.Fatalf("embedded table has %d providers", len(tab.Providers))
	}
	for _, p := range tab.Providers {
		if !plan.IsProvider(p.Name) {
			t.Errorf("provider %q would be taken for a domain", p.Name)
		}
	}
}

func TestOverride(t *testing.T) {
	base := plan.DefaultTable()
	o, err := plan.ParseTable([]byte(`
default:
  connections: 8
  per_connection: 100
  per_hour: 5000
providers:
  - name: google
    per_connection: 20
  - name: microsoft
    domains: [hotmail.test]
    per_hour: 300
  - name: mailhost
    mx_suffixes: [mx.example.net]
    domains: [mailhost.test]
    connections: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	tab, err := base.Override(o)
	if err != nil {
		t.Fatal(err)
	}

	// google: only per_connection changes.
	g := tab.LimitsFor("google")
	if g.Connections != 5 || g.PerConnection != 20 || g.PerHour != 5000 {
		t.Errorf("google = %+v, want connections 5 (kept), per_connection 20 (set), per_hour 5000 (new default)", g)
	}
	if got := tab.Group("gmail.com", nil); got != "google" {
		t.Errorf("gmail.com → %q: google's domains were lost", got)
	}
	if got := tab.Group("example.com", []string{"aspmx.l.google.com"}); got != "google" {
		t.Errorf("MX at google → %q: google's mx_suffixes were lost", got)
	}

	// microsoft: domains replaced, mx_suffixes kept, per_hour set.
	m := tab.LimitsFor("microsoft")
	if m.Connections != 5 || m.PerConnection != 50 || m.PerHour != 300 {
		t.Errorf("microsoft = %+v, want 5, 50, per_hour 300", m)
	}
	if got := tab.Group("hotmail.test", nil); got != "microsoft" {
		t.Errorf("hotmail.test → %q, want microsoft", got)
	}
	if got := tab.Group("hotmail.com", nil); got != "hotmail.com" {
		t.Errorf("hotmail.com → %q: the override's domains should replace the list", got)
	}
	if got := tab.Group("example.com", []string{"x.mail.protection.outlook.com"}); got != "microsoft" {
		t.Errorf("MX at outlook → %q: microsoft's mx_suffixes were lost", got)
	}

	// A new provider, with the rest of its limits from the default.
	n := tab.LimitsFor("mailhost")
	if n.Connections != 2 || n.PerConnection != 100 || n.PerHour != 5000 {
		t.Errorf("mailhost = %+v, want 2, 100 (default), per_hour 5000 (default)", n)
	}
	if got := tab.Group("example.com", []string{"a.mx.example.net"}); got != "mailhost" {
		t.Errorf("MX at mx.example.net → %q, want mailhost", got)
	}
	if got := tab.Group("mailhost.test", nil); got != "mailhost" {
		t.Errorf("mailhost.test → %q, want mailhost", got)
	}

	// Untouched providers and the default.
	if y := tab.LimitsFor("yahoo"); y.Connections != 8 || y.PerConnection != 20 {
		t.Errorf("yahoo = %+v, want connections 8 (new default), per_connection 20 (its own)", y)
	}
	if d := tab.LimitsFor("example.com"); d.Connections != 8 || d.PerConnection != 100 || d.PerMessage != 1 || time.Duration(d.MaxConnectionAge) != 5*time.Minute {
		t.Errorf("default = %+v, want 8, 100, per_message 1 and max age 5m inherited", d)
	}

	// The base table is not changed by the override.
	if got := base.Group("hotmail.com", nil); got != "microsoft" {
		t.Errorf("base table: hotmail.com → %q after Override, want microsoft", got)
	}
	if l := base.LimitsFor("google"); l.PerConnection != 50 {
		t.Errorf("base table: google per_connection %d after Override, want 50", l.PerConnection)
	}
	if len(base.Providers) != len(plan.DefaultTable().Providers) {
		t.Errorf("base table has %d providers after Override, want %d", len(base.Providers), len(plan.DefaultTable().Providers))
	}
}

func TestOverrideRejectsBadProvider(t *testing.T) {
	var o plan.Table
	o.Providers = []plan.Provider{{Name: "mail.example"}}
	if _, err := plan.DefaultTable().Override(&o); err == nil || !strings.Contains(err.Error(), "mail.example") {
		t.Errorf("Override with provider name mail.example: %v, want an error naming it", err)
	}
}
