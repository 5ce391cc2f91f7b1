package message_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/relayctl/relayctl/internal/dnstest"
	"github.com/relayctl/relayctl/message"
)

// lookupTXT asks the DNS server at addr, never the system's resolver.
func lookupTXT(addr string) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		m.SetEdns0(4096, false)
		c := &dns.Client{Timeout: 5 * time.Second}
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			return nil, err
		}
		if r.Rcode != dns.RcodeSuccess {
			return nil, fmt.Errorf("%s: %s", name, dns.RcodeToString[r.Rcode])
		}
		var out []string
		for _, rr := range r.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				// Like net.LookupTXT: one string per record.
				out = append(out, strings.Join(txt.Txt, ""))
			}
		}
		return out, nil
	}
}

// txtRR is a zone-file TXT record for value, built with miekg/dns rather
// than with TXTRecord, which has its own test.
func txtRR(name, value string) string {
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}}
	for len(value) > 255 {
		rr.Txt = append(rr.Txt, value[:255])
		value = value[255:]
	}
	rr.Txt = append(rr.Txt, value)
	return rr.String()
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func verifyDKIM(t *testing.T, addr string, msg []byte) *dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookupTXT(addr)})
	if err != nil {
		t.Fatalf("VerifyWithOptions: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d signatures, want 1", len(vs))
	}
	return vs[0]
}

func TestDKIMSignVerify(t *testing.T) {
	const selector = "s2026"
	for _, kind := range []string{"rsa", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			keyPEM, txt, err := message.GenerateKey(kind)
			if err != nil {
				t.Fatalf("GenerateKey(%q): %v", kind, err)
			}
			if !strings.HasPrefix(txt, "v=DKIM1; k="+kind+"; p=") {
				t.Errorf("TXT value %q", txt)
			}
			signer, err := message.LoadSigner("example.org", selector, writeTemp(t, "key.pem", keyPEM))
			if err != nil {
				t.Fatalf("LoadSigner: %v", err)
			}
			srv := dnstest.Start(t)
			srv.Add(t, txtRR(selector+"._domainkey.example.org", txt))

			gc := goldenCases[len(goldenCases)-1] // non-ASCII, attachments, List-Unsubscribe...
			tm := parse(t, gc.template)
			if err := tm.AddHTML(htmlTemplate); err != nil {
				t.Fatal(err)
			}
			spec := message.Spec{Campaign: gc.campaign, Template: tm, Attachments: gc.attachments, Settings: gc.settings, Secret: secret}
			unsigned, _ := compose(t, newComposer(t, spec), gc.rcpt)
			spec.Signer = signer
			signed, _ := compose(t, newComposer(t, spec), gc.rcpt)

			checkWellFormed(t, signed)
			// Signing adds a header field in front, and changes nothing.
			if !bytes.HasPrefix(signed, []byte("DKIM-Signature: ")) || !bytes.HasSuffix(signed, unsigned) {
				t.Errorf("signed message is not DKIM-Signature + the unsigned one:\n%.1500s", signed)
			}

			v := verifyDKIM(t, srv.Addr, signed)
			if v.Err != nil {
				t.Fatalf("verification failed: %v\n%.1500s", v.Err, signed)
			}
			if v.Domain != "example.org" {
				t.Errorf("signing domain %q", v.Domain)
			}
			if srv.Queries(selector+"._domainkey.example.org", dns.TypeTXT) == 0 {
				t.Errorf("the verifier did not query the test server")
			}
			var keys []string
			for _, k := range v.HeaderKeys {
				keys = append(keys, strings.ToLower(k))
			}
			for _, k := range []string{"from", "to", "subject", "date", "message-id", "mime-version", "content-type",
				"list-unsubscribe", "list-unsubscribe-post", "feedback-id"} {
				if !slices.Contains(keys, k) {
					t.Errorf("h= %q lacks %s", keys, k)
				}
			}

			for _, tc := range []struct{ name, old, new string }{
				{"subject", "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe", "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fi"},
				{"text body", "aus K=C3=B6ln", "aus K=C3=B6lm"},
				{"attachment", "iVBORw0KGgo", "iVBORw0KGgp"},
				{"list-unsubscribe", "List-Unsubscribe: <mailto:unsubscribe@", "List-Unsubscribe: <mailto:unsubscribf@"},
			} {
				if !bytes.Contains(signed, []byte(tc.old)) {
					t.Fatalf("%s: message lacks %q", tc.name, tc.old)
				}
				tampered := bytes.Replace(signed, []byte(tc.old), []byte(tc.new), 1)
				if v := verifyDKIM(t, srv.Addr, tampered); v.Err == nil {
					t.Errorf("tampered %s (%q → %q): verification passed", tc.name, tc.old, tc.new)
				}
			}
		})
	}
}

// TestDKIMPublishedRecord: the record TXTRecord prints, once in a zone,
// gives the verifier the key.
func TestDKIMPublishedRecord(t *testing.T) {
	keyPEM, txt, err := message.GenerateKey("rsa")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := message.LoadSigner("example.org", "sel", writeTemp(t, "key.pem", keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	srv := dnstest.Start(t)
	srv.Add(t, message.TXTRecord("sel", "example.org.", txt))
	got, err := lookupTXT(srv.Addr)("sel._domainkey.example.org")
	if err != nil || !slices.Equal(got, []string{txt}) {
		t.Fatalf("TXT lookup = %q, %v; want [%q]", got, err, txt)
	}
	c := newComposer(t, message.Spec{Template: parse(t, msg(stdHeaders, "Hello\n")), Signer: signer})
	out, _ := compose(t, c, ann)
	if v := verifyDKIM(t, srv.Addr, out); v.Err != nil {
		t.Errorf("verification failed: %v", v.Err)
	}
}

func pemFile(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return writeTemp(t, "key.pem", pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadSigner(t *testing.T) {
	// Go refuses to generate RSA keys under 1024 bits unless told to.
	t.Setenv("GODEBUG", "rsa1024min=0")
	rsa512, err := rsa.GenerateKey(rand.Reader, 512)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		want string // "" for success; else a substring of the error
	}{
		{"RSA 1024 PKCS #1", pemFile(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024)), ""},
		{"RSA 1024 PKCS #8", pemFile(t, "PRIVATE KEY", pkcs8(t, rsa1024)), ""},
		{"Ed25519 PKCS #8", pemFile(t, "PRIVATE KEY", pkcs8(t, edKey)), ""},
		{"RSA 512 PKCS #1", pemFile(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa512)), "512 bits"},
		{"RSA 512 PKCS #8", pemFile(t, "PRIVATE KEY", pkcs8(t, rsa512)), "512 bits"},
		{"P-256 PKCS #8", pemFile(t, "PRIVATE KEY", pkcs8(t, p256)), "unsupported key type"},
		{"P-256 SEC 1", pemFile(t, "EC PRIVATE KEY", sec1), "key"},
		{"missing file", filepath.Join(t.TempDir(), "absent.pem"), "absent.pem"},
		{"not PEM", writeTemp(t, "key.pem", []byte("this is not a key\n")), "no PEM block"},
		{"empty file", writeTemp(t, "key.pem", nil), "no PEM block"},
		{"PEM, not a key", pemFile(t, "PRIVATE KEY", []byte("garbage")), "not a PKCS #8 or PKCS #1 private key"},
		{"public key", pemFile(t, "PUBLIC KEY", func() []byte { d, _ := x509.MarshalPKIXPublicKey(&rsa1024.PublicKey); return d }()), "private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := message.LoadSigner("example.org", "s1", tc.path)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("LoadSigner: %v", err)
				}
				if s.Domain != "example.org" || s.Selector != "s1" || s.Key == nil {
					t.Errorf("LoadSigner = %+v", s)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadSigner accepted %s", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadSigner: %v, want %q", err, tc.want)
			}
		})
	}
	_, err = message.LoadSigner("example.org", "s1", filepath.Join(t.TempDir(), "absent.pem"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want an error matching fs.ErrNotExist", err)
	}
	path := pemFile(t, "PRIVATE KEY", pkcs8(t, edKey))
	for _, args := range [][3]string{{"", "s1", path}, {"example.org", "", path}, {"example.org", "s1", ""}} {
		if _, err := message.LoadSigner(args[0], args[1], args[2]); err == nil {
			t.Errorf("LoadSigner(%q, %q, %q) accepted", args[0], args[1], args[2])
		}
	}
}

func TestGenerateKeyKinds(t *testing.T) {
	for _, kind := range []string{"rsa", "ed25519", ""} {
		keyPEM, txt, err := message.GenerateKey(kind)
		if err != nil {
			t.Errorf("GenerateKey(%q): %v", kind, err)
			continue
		}
		block, _ := pem.Decode(keyPEM)
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Errorf("GenerateKey(%q): PEM %q", kind, keyPEM)
			continue
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Errorf("GenerateKey(%q): %v", kind, err)
			continue
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			if kind == "ed25519" || k.N.BitLen() != 2048 || !strings.Contains(txt, "k=rsa;") {
				t.Errorf("GenerateKey(%q): RSA key of %d bits, TXT %q", kind, k.N.BitLen(), txt)
			}
		case ed25519.PrivateKey:
			if kind != "ed25519" || !strings.Contains(txt, "k=ed25519;") {
				t.Errorf("GenerateKey(%q): Ed25519 key, TXT %q", kind, txt)
			}
		default:
			t.Errorf("GenerateKey(%q): key of type %T", kind, k)
		}
	}
	if _, _, err := message.GenerateKey("dsa"); err == nil {
		t.Errorf("GenerateKey(dsa) accepted")
	}
}

var txtString = regexp.MustCompile(`"([^"]*)"`)

func TestTXTRecord(t *testing.T) {
	for _, n := range []int{1, 254, 255, 256, 410, 510, 511, 1000} {
		value := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", n-min(n, 18))
		value = value[:n]
		for _, domain := range []string{"example.org", "example.org."} {
			rec := message.TXTRecord("s2026", domain, value)
			rr, err := dns.NewRR(rec)
			if err != nil {
				t.Errorf("%d octets: record %q does not parse: %v", n, rec, err)
				continue
			}
			txt, ok := rr.(*dns.TXT)
			if !ok {
				t.Errorf("%d octets: record %q is a %T", n, rec, rr)
				continue
			}
			if txt.Hdr.Name != "s2026._domainkey.example.org." {
				t.Errorf("record name %q", txt.Hdr.Name)
			}
			if got := strings.Join(txt.Txt, ""); got != value {
				t.Errorf("%d octets: strings join to %q", n, got)
			}
			// The record as printed: miekg/dns would split an overlong
			// string itself, a zone-file editor or a DNS host's form may not.
			strs := txtString.FindAllStringSubmatch(rec, -1)
			if want := (n + 254) / 255; len(strs) != want || len(txt.Txt) != want {
				t.Errorf("%d octets: %d strings in %q, want %d", n, len(strs), rec, want)
			}
			for _, s := range strs {
				if len(s[1]) > 255 {
					t.Errorf("%d octets: a string of %d octets", n, len(s[1]))
				}
			}
		}
	}
}
