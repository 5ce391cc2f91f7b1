package domaincheck

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/relayctl/relayctl/internal/dnstest"
	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/message"
)

var (
	relay4 = netip.MustParseAddr("192.0.2.10")
	relay6 = netip.MustParseAddr("2001:db8::10")
	other4 = netip.MustParseAddr("198.51.100.7")
)

// start returns a DNS server on loopback and options that ask it.
func start(t *testing.T, domain string, ips ...netip.Addr) (*dnstest.Server, Options) {
	t.Helper()
	srv := dnstest.Start(t)
	mh, err := listclean.NewResolver(srv.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return srv, Options{
		Domain: domain, RelayIPs: ips,
		DNS: NewResolver(mh), MailHosts: mh, Timeout: 2 * time.Second,
		Trace: t.Logf,
	}
}

func run(t *testing.T, o Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, c := range rep.Checks {
		t.Logf("%-18s %-4s %s\n\tfix: %q", c.Name, c.Result, c.Detail, c.Fix)
	}
	return rep
}

func find(t *testing.T, rep *Report, name string) Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in the report", name)
	return Check{}
}

// want checks a check's result, that its detail holds detail, and its fix
// exactly.
func want(t *testing.T, c Check, result Result, detail, fix string) {
	t.Helper()
	if c.Result != result {
		t.Errorf("%s: result %s, want %s (detail %q)", c.Name, c.Result, result, c.Detail)
	}
	if !strings.Contains(c.Detail, detail) {
		t.Errorf("%s: detail %q, want it to hold %q", c.Name, c.Detail, detail)
	}
	if c.Fix != fix {
		t.Errorf("%s: fix\n\t%q\nwant\n\t%q", c.Name, c.Fix, fix)
	}
}

// newKey makes a DKIM key as relayctl dkim keygen does and returns its
// public half and TXT value.
func newKey(t *testing.T, kind string) (crypto.PublicKey, string) {
	t.Helper()
	priv, txt, err := message.GenerateKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(priv)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer).Public(), txt
}

func TestAllPass(t *testing.T) {
	pub, txt := newKey(t, "rsa") // 2048 bits: a TXT record of two strings
	srv, o := start(t, "good.test", relay4, relay6)
	srv.AddTXT(t, "good.test", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/64 -all")
	srv.AddTXT(t, "good.test", "google-site-verification=abc")
	srv.Add(t, "good.test. 300 IN MX 10 mx.good.test.")
	srv.AddHost(t, "mx.good.test", netip.MustParseAddr("192.0.2.25"))
	srv.AddTXT(t, "s1._domainkey.good.test", txt)
	srv.AddTXT(t, "_dmarc.good.test", "v=DMARC1; p=reject; rua=mailto:dmarc@good.test")
	srv.AddPTR(t, relay4, "relay.good.test")
	srv.AddPTR(t, relay6, "relay.good.test")
	srv.AddHost(t, "relay.good.test", relay4, relay6)
	o.Selector, o.DKIMKey = "s1", pub

	rep := run(t, o)
	if !rep.OK() {
		t.Errorf("report not OK: %d failed", rep.Failed())
	}
	names := []string{"spf", "spf 192.0.2.10", "spf 2001:db8::10", "dkim", "dmarc", "bounce-mx", "ptr 192.0.2.10", "ptr 2001:db8::10"}
	if len(rep.Checks) != len(names) {
		t.Fatalf("%d checks, want %d", len(rep.Checks), len(names))
	}
	for i, c := range rep.Checks {
		if c.Name != names[i] || c.Result != Pass || c.Fix != "" {
			t.Errorf("check %d: %s %s fix %q, want %s pass and no fix", i, c.Name, c.Result, c.Fix, names[i])
		}
	}
	want(t, find(t, rep, "dkim"), Pass, "k=rsa, 2048 bits, the configured key", "")
	want(t, find(t, rep, "dmarc"), Pass, "p=reject; aggregate reports to mailto:dmarc@good.test", "")
	want(t, find(t, rep, "bounce-mx"), Pass, "MX mx.good.test (10)", "")
	want(t, find(t, rep, "ptr 2001:db8::10"), Pass, "PTR relay.good.test, which resolves back", "")
	if f := rep.Fixes(); len(f) != 0 {
		t.Errorf("fixes %q, want none", f)
	}
}

func TestSPF(t *testing.T) {
	limit := "v=spf1"
	for _, n := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"} {
		limit += " include:i" + n + ".spf.test"
	}
	limit += " ip4:192.0.2.10 -all"

	tests := []struct {
		name    string
		records map[string][]string // TXT records by name
		ips     []netip.Addr
		check   string
		result  Result
		detail  string
		fix     string
	}{
		{
			name:   "none",
			ips:    []netip.Addr{relay4, relay6},
			check:  "spf",
			result: Fail, detail: "no SPF record (v=spf1) at spf.test",
			fix: `spf.test. TXT "v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all"`,
		},
		{
			name:   "none without relay IPs",
			check:  "spf",
			result: Fail, detail: "replace RELAY_IP",
			fix: `spf.test. TXT "v=spf1 ip4:RELAY_IP -all"`,
		},
		{
			name: "two records",
			records: map[string][]string{"spf.test": {
				"v=spf1 include:_spf.provider.test ~all", "v=spf1 mx ip4:198.51.100.0/24 -all"}},
			ips:    []netip.Addr{relay4},
			check:  "spf",
			result: Fail, detail: "2 SPF records at spf.test: receivers treat that as a permanent error (RFC 7208 §4.5); merge them",
			fix: `spf.test. TXT "v=spf1 ip4:192.0.2.10 include:_spf.provider.test mx ip4:198.51.100.0/24 ~all"`,
		},
		{
			name:    "record without relay IPs",
			records: map[string][]string{"spf.test": {"v=spf1 mx -all"}},
			check:   "spf",
			result:  Pass, detail: "give --relay-ip",
		},
		{
			name: "include chain",
			records: map[string][]string{
				"spf.test":            {"v=spf1 include:_spf.esp.test -all"},
				"_spf.esp.test":       {"v=spf1 ip4:198.51.100.0/24 include:_netblocks.esp.test ~all"},
				"_netblocks.esp.test": {"v=spf1 ip4:192.0.2.0/25 -all"},
			},
			ips:    []netip.Addr{relay4},
			check:  "spf 192.0.2.10",
			result: Pass, detail: "192.0.2.10 is authorised (matched ip)",
		},
		{
			name: "include chain not authorising",
			records: map[string][]string{
				"spf.test":      {"v=spf1 include:_spf.esp.test -all"},
				"_spf.esp.test": {"v=spf1 ip4:198.51.100.0/24 -all"},
			},
			ips:    []netip.Addr{relay4},
			check:  "spf 192.0.2.10",
			result: Fail, detail: "fail: 192.0.2.10 is not authorised, and -all",
			fix: `spf.test. TXT "v=spf1 ip4:192.0.2.10 include:_spf.esp.test -all"`,
		},
		{
			name:    "too many lookups",
			records: spfLimitZone(limit),
			ips:     []netip.Addr{relay4},
			check:   "spf 192.0.2.10",
			result:  Fail, detail: "permerror: evaluating the record takes more than 10 DNS lookups",
			fix: `spf.test. TXT "v=spf1 ip4:192.0.2.10 ` + strings.TrimSuffix(strings.TrimPrefix(limit, "v=spf1 "), " ip4:192.0.2.10 -all") + ` -all"`,
		},
		{
			name: "redirect",
			records: map[string][]string{
				"spf.test":           {"v=spf1 redirect=_spf.provider.test"},
				"_spf.provider.test": {"v=spf1 ip4:192.0.2.8/29 ip6:2001:db8::/32 -all"},
			},
			ips:    []netip.Addr{relay4, relay6},
			check:  "spf 2001:db8::10",
			result: Pass, detail: "2001:db8::10 is authorised",
		},
		{
			name:    "redirect to nowhere",
			records: map[string][]string{"spf.test": {"v=spf1 redirect=_spf.gone.test"}},
			ips:     []netip.Addr{relay4},
			check:   "spf 192.0.2.10",
			result:  Fail, detail: "permerror: an include: or redirect= names a domain with no SPF record",
			fix: `spf.test. TXT "v=spf1 ip4:192.0.2.10 redirect=_spf.gone.test"`,
		},
		{
			name:    "softfail",
			records: map[string][]string{"spf.test": {"v=spf1 ip4:198.51.100.7 ~all"}},
			ips:     []netip.Addr{relay4, other4},
			check:   "spf 192.0.2.10",
			result:  Warn, detail: "softfail: 192.0.2.10 is not authorised and ~all",
			fix: `spf.test. TXT "v=spf1 ip4:192.0.2.10 ip4:198.51.100.7 ~all"`,
		},
		{
			name:    "neutral",
			records: map[string][]string{"spf.test": {"v=spf1 ip4:198.51.100.7 ?all"}},
			ips:     []netip.Addr{relay4},
			check:   "spf 192.0.2.10",
			result:  Fail, detail: "neutral: the record says nothing about 192.0.2.10",
			fix: `spf.test. TXT "v=spf1 ip4:192.0.2.10 ip4:198.51.100.7 ?all"`,
		},
		{
			name:    "unknown term",
			records: map[string][]string{"spf.test": {"v=spf1 ipv4:192.0.2.10 -all"}},
			ips:     []netip.Addr{relay4},
			check:   "spf 192.0.2.10",
			result:  Fail, detail: "permerror: a term of the record (or of one it includes) is not SPF",
			fix: `spf.test. TXT "v=spf1 ip4:192.0.2.10 ipv4:192.0.2.10 -all"`,
		},
		{
			name:    "only the unauthorised relay added",
			records: map[string][]string{"spf.test": {"v=spf1 ip4:198.51.100.7 ip4:192.0.2.10 -all"}},
			ips:     []netip.Addr{relay4, relay6},
			check:   "spf 2001:db8::10",
			result:  Fail, detail: "fail: 2001:db8::10 is not authorised",
			fix: `spf.test. TXT "v=spf1 ip6:2001:db8::10 ip4:198.51.100.7 ip4:192.0.2.10 -all"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, o := start(t, "spf.test", tc.ips...)
			for name, txts := range tc.records {
				for _, txt := range txts {
					srv.AddTXT(t, name, txt)
				}
			}
			rep := run(t, o)
			want(t, find(t, rep, tc.check), tc.result, tc.detail, tc.fix)
		})
	}
}

// spfLimitZone serves record at spf.test and eleven includes that each
// cost a lookup and match nothing.
func spfLimitZone(record string) map[string][]string {
	z := map[string][]string{"spf.test": {record}}
	for _, n := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"} {
		z["i"+n+".spf.test"] = []string{"v=spf1 ip4:198.51.100." + n + " -all"}
	}
	return z
}

func TestSPFMX(t *testing.T) {
	srv, o := start(t, "mx.test", relay4, other4)
	srv.AddTXT(t, "mx.test", "v=spf1 mx a:out.mx.test -all")
	srv.Add(t, "mx.test. 300 IN MX 10 in.mx.test.")
	srv.AddHost(t, "in.mx.test", relay4)
	srv.AddHost(t, "out.mx.test", other4)
	rep := run(t, o)
	want(t, find(t, rep, "spf 192.0.2.10"), Pass, "matched mx", "")
	want(t, find(t, rep, "spf 198.51.100.7"), Pass, "matched a", "")
}

func TestDKIM(t *testing.T) {
	pub, txt := newKey(t, "ed25519")
	_, otherTXT := newKey(t, "ed25519")
	fix := message.TXTRecord("s1", "dkim.test", txt)
	tests := []struct {
		name     string
		record   []string
		selector string
		key      crypto.PublicKey
		result   Result
		detail   string
		fix      string
	}{
		{"published", []string{txt}, "s1", pub, Pass, "s1._domainkey.dkim.test: k=ed25519, the configured key", ""},
		{"not compared", []string{txt}, "s1", nil, Pass, "k=ed25519 (not compared: give --dkim-key)", ""},
		{"missing", nil, "s1", pub, Fail, "no DKIM record at s1._domainkey.dkim.test", fix},
		{"missing, no key", nil, "s1", nil, Fail, "publish the record relayctl dkim keygen printed", ""},
		{"no selector", []string{txt}, "", pub, Fail, "no DKIM selector", ""},
		{"bad base64", []string{"v=DKIM1; k=ed25519; p=not*base64!"}, "s1", pub, Fail, "is broken: p= is not valid base64", fix},
		{"no p=", []string{"v=DKIM1; k=rsa"}, "s1", pub, Fail, "is broken: no p= tag", fix},
		{"revoked", []string{"v=DKIM1; k=ed25519; p="}, "s1", pub, Fail, "is broken: p= is empty: the key is revoked", fix},
		{"wrong version", []string{"v=DKIM2; " + txt[len("v=DKIM1; "):]}, "s1", pub, Fail, "v=DKIM2, want v=DKIM1", fix},
		{"unknown k=", []string{"v=DKIM1; k=dsa; p=AAAA"}, "s1", pub, Fail, "k=dsa: receivers know only rsa and ed25519", fix},
		{"short ed25519", []string{"v=DKIM1; k=ed25519; p=AAAA"}, "s1", pub, Fail, "an Ed25519 key is 32 bytes, p= holds 3", fix},
		{"mismatched key", []string{otherTXT}, "s1", pub, Fail, "is not the configured key", fix},
		{"two records", []string{txt, otherTXT}, "s1", pub, Fail, "2 TXT records at s1._domainkey.dkim.test", fix},
		{"testing", []string{txt + "; t=y"}, "s1", pub, Warn, "t=y (testing)", fix},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, o := start(t, "dkim.test")
			for _, r := range tc.record {
				srv.AddTXT(t, "s1._domainkey.dkim.test", r)
			}
			o.Selector, o.DKIMKey = tc.selector, tc.key
			want(t, find(t, run(t, o), "dkim"), tc.result, tc.detail, tc.fix)
		})
	}
}

func TestDKIMRSAAsPKCS1(t *testing.T) {
	// Some tools publish the bare RSAPublicKey rather than the
	// SubjectPublicKeyInfo RFC 6376 asks for; receivers accept both.
	pub, _ := newKey(t, "rsa")
	srv, o := start(t, "dkim.test")
	p := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(pub.(*rsa.PublicKey)))
	srv.AddTXT(t, "s1._domainkey.dkim.test", "v=DKIM1; k=rsa; p="+p)
	o.Selector, o.DKIMKey = "s1", pub
	want(t, find(t, run(t, o), "dkim"), Pass, "k=rsa, 2048 bits, the configured key", "")
}

func TestDMARC(t *testing.T) {
	tests := []struct {
		name    string
		domain  string
		records map[string]string
		result  Result
		detail  string
		fix     string
	}{
		{"missing", "dmarc.test", nil, Fail, "no DMARC record at _dmarc.dmarc.test",
			`_dmarc.dmarc.test. TXT "v=DMARC1; p=none; rua=mailto:dmarc@dmarc.test"`},
		{"p=none", "dmarc.test", map[string]string{"_dmarc.dmarc.test": "v=DMARC1; p=none; rua=mailto:reports@dmarc.test"},
			Warn, "p=none is only monitoring, receivers act on nothing that fails; aggregate reports to mailto:reports@dmarc.test",
			`_dmarc.dmarc.test. TXT "v=DMARC1; p=quarantine; rua=mailto:reports@dmarc.test"`},
		{"p=reject", "dmarc.test", map[string]string{"_dmarc.dmarc.test": "v=DMARC1; p=reject; rua=mailto:reports@dmarc.test"},
			Pass, "_dmarc.dmarc.test: p=reject; aggregate reports to mailto:reports@dmarc.test", ""},
		{"p=quarantine without rua", "dmarc.test", map[string]string{"_dmarc.dmarc.test": "v=DMARC1;p=quarantine"},
			Pass, "p=quarantine; no rua=: you get no aggregate reports", ""},
		{"no p=", "dmarc.test", map[string]string{"_dmarc.dmarc.test": "v=DMARC1; rua=mailto:reports@dmarc.test"},
			Fail, "has no valid p=", `_dmarc.dmarc.test. TXT "v=DMARC1; p=none; rua=mailto:reports@dmarc.test"`},
		{"not DMARC", "dmarc.test", map[string]string{"_dmarc.dmarc.test": "some verification token"},
			Fail, "no DMARC record", `_dmarc.dmarc.test. TXT "v=DMARC1; p=none; rua=mailto:dmarc@dmarc.test"`},
		{"inherited", "news.dmarc.test", map[string]string{"_dmarc.dmarc.test": "v=DMARC1; p=none; sp=reject"},
			Pass, "no record at _dmarc.news.dmarc.test; _dmarc.dmarc.test applies: p=reject; no rua=", ""},
		{"inherited none", "news.dmarc.test", map[string]string{"_dmarc.dmarc.test": "v=DMARC1; p=none; rua=mailto:d@dmarc.test"},
			Warn, "_dmarc.dmarc.test applies: p=none is only monitoring",
			`_dmarc.news.dmarc.test. TXT "v=DMARC1; p=quarantine; rua=mailto:d@dmarc.test"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, o := start(t, tc.domain)
			for name, txt := range tc.records {
				srv.AddTXT(t, name, txt)
			}
			want(t, find(t, run(t, o), "dmarc"), tc.result, tc.detail, tc.fix)
		})
	}
}

func TestBounce(t *testing.T) {
	tests := []struct {
		name    string
		bounce  string
		records []string
		result  Result
		detail  string
		fix     string
	}{
		{"mx", "", []string{"mail.test. 300 IN MX 10 mx.mail.test."}, Pass, "mail.test accepts mail: MX mx.mail.test (10)", ""},
		{"implicit", "", []string{"mail.test. 300 IN A 192.0.2.25"}, Pass, "implicit MX from A", ""},
		{"null mx", "bounces.mail.test", []string{"bounces.mail.test. 300 IN MX 0 ."}, Fail,
			"bounces.mail.test has a null MX (MX 0 .)", "bounces.mail.test. MX 10 YOUR_MAIL_HOST."},
		{"nxdomain", "gone.test", nil, Fail, "gone.test does not exist (NXDOMAIN)", "gone.test. MX 10 YOUR_MAIL_HOST."},
		{"no host", "", []string{`mail.test. 300 IN TXT "v=spf1 -all"`}, Fail, "has no MX, A or AAAA record", "mail.test. MX 10 YOUR_MAIL_HOST."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, o := start(t, "mail.test")
			srv.Add(t, tc.records...)
			o.BounceDomain = tc.bounce
			want(t, find(t, run(t, o), "bounce-mx"), tc.result, tc.detail, tc.fix)
		})
	}
}

func TestPTR(t *testing.T) {
	srv, o := start(t, "ptr.test", relay4, other4, relay6)
	// relay4: PTR and a matching A.
	srv.AddPTR(t, relay4, "out1.ptr.test")
	srv.AddHost(t, "out1.ptr.test", relay4)
	// other4: no PTR at all.
	// relay6: a PTR whose name resolves elsewhere.
	srv.AddPTR(t, relay6, "out6.ptr.test")
	srv.AddHost(t, "out6.ptr.test", netip.MustParseAddr("2001:db8::99"))
	o.RelayName = "relay.ptr.test"

	rep := run(t, o)
	want(t, find(t, rep, "ptr 192.0.2.10"), Pass, "192.0.2.10 has PTR out1.ptr.test, which resolves back to it", "")
	want(t, find(t, rep, "ptr 198.51.100.7"), Fail,
		"no PTR record for 198.51.100.7: ask your hosting provider to set the reverse DNS of 198.51.100.7 to a name that resolves back to it",
		"7.100.51.198.in-addr.arpa. PTR relay.ptr.test.\nrelay.ptr.test. A 198.51.100.7")
	want(t, find(t, rep, "ptr 2001:db8::10"), Fail, "has PTR out6.ptr.test, but it does not resolve back to 2001:db8::10",
		"out6.ptr.test. AAAA 2001:db8::10")
	if rep.OK() {
		t.Error("report OK with a failed PTR check")
	}
}

func TestDNSDown(t *testing.T) {
	srv, o := start(t, "down.test", relay4)
	srv.Silence("")
	o.Timeout = 200 * time.Millisecond
	mh, err := listclean.NewResolver(srv.Addr, o.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	o.MailHosts = mh
	o.Selector = "s1"
	rep := run(t, o)
	for _, c := range rep.Checks {
		if c.Result != Fail || c.Fix != "" {
			t.Errorf("%s: %s, fix %q; want a failure without a fix when DNS does not answer", c.Name, c.Result, c.Fix)
		}
	}
	want(t, find(t, rep, "spf"), Fail, "TXT lookup of down.test timed out", "")
}

func TestRunOptions(t *testing.T) {
	_, o := start(t, "")
	if _, err := Run(context.Background(), o); err == nil {
		t.Error("Run without a domain: no error")
	}
	o.Domain = "x.test"
	o.DNS = nil
	if _, err := Run(context.Background(), o); err == nil {
		t.Error("Run without DNS: no error")
	}
}

func TestSPFServerFailure(t *testing.T) {
	srv, o := start(t, "spf.test", relay4)
	srv.AddTXT(t, "spf.test", "v=spf1 include:_spf.broken.test -all")
	srv.Rcode("_spf.broken.test", dns.RcodeServerFailure)
	srv.Rcode("servfail.test", dns.RcodeServerFailure)
	srv.Rcode("_dmarc.servfail.test", dns.RcodeServerFailure)
	rep := run(t, o)
	want(t, find(t, rep, "spf 192.0.2.10"), Fail, "temperror: a DNS lookup failed while evaluating the record", `spf.test. TXT "v=spf1 ip4:192.0.2.10 include:_spf.broken.test -all"`)

	o.Domain = "servfail.test"
	rep = run(t, o)
	want(t, find(t, rep, "spf"), Fail, "TXT lookup of servfail.test failed: server failure: SERVFAIL", "")
	want(t, find(t, rep, "dmarc"), Fail, "TXT lookup of _dmarc.servfail.test failed: server failure: SERVFAIL", "")
}

// TestResolver checks the answers come from the server alone, in the
// shapes net.Resolver gives them.
func TestResolver(t *testing.T) {
	srv := dnstest.Start(t)
	long := strings.Repeat("k", 300)
	srv.AddTXT(t, "r.test", long)
	srv.Add(t, "r.test. 300 IN MX 10 mx.r.test.")
	srv.AddHost(t, "localhost", relay4) // never the hosts file's 127.0.0.1
	srv.AddPTR(t, relay6, "six.r.test")
	lr, err := listclean.NewResolver(srv.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := NewResolver(lr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	txt, err := r.LookupTXT(ctx, "r.test")
	if err != nil || len(txt) != 1 || txt[0] != long {
		t.Errorf("LookupTXT = %d records, %v; want the 300 octets joined", len(txt), err)
	}
	mx, err := r.LookupMX(ctx, "r.test")
	if err != nil || len(mx) != 1 || mx[0].Host != "mx.r.test." || mx[0].Pref != 10 {
		t.Errorf("LookupMX = %v, %v", mx, err)
	}
	ips, err := r.LookupIPAddr(ctx, "localhost")
	if err != nil || len(ips) != 1 || !ips[0].IP.Equal(relay4.AsSlice()) {
		t.Errorf("LookupIPAddr(localhost) = %v, %v; want the server's 192.0.2.10", ips, err)
	}
	names, err := r.LookupAddr(ctx, relay6.String())
	if err != nil || len(names) != 1 || names[0] != "six.r.test." {
		t.Errorf("LookupAddr = %v, %v", names, err)
	}
	for _, name := range []string{"r.test", "gone.test"} { // NODATA, NXDOMAIN
		if _, err := r.LookupIPAddr(ctx, name); !isNotFound(err) {
			t.Errorf("LookupIPAddr(%s): %v, want not found", name, err)
		}
	}
}
