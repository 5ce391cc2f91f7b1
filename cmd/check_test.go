package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relayctl/relayctl/internal/smtptest"
)

const cliPassword = "cli-s3cret-Pa55"

// runCheckCLI runs relayctl check with args, the password in
// RELAYCTL_SMTP_PASSWORD and config as relayctl.yaml, and returns the
// exit code, stdout and stderr.
func runCheckCLI(t *testing.T, password, config string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("RELAYCTL_SMTP_PASSWORD", password)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relayctl.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	full := append([]string{"--config", cfg, "--db", filepath.Join(dir, "relayctl.db"), "check",
		"--helo", "relay.example.org", "--connect-timeout", "5s", "--command-timeout", "5s", "--data-timeout", "5s"}, args...)
	var out, errOut bytes.Buffer
	code := Run(context.Background(), full, &IOStreams{Out: &out, ErrOut: &errOut})
	if strings.Contains(out.String()+errOut.String(), password) && password != "" {
		t.Errorf("the password shows in the output:\n%s%s", &out, &errOut)
	}
	return code, out.String(), errOut.String()
}

// caFile writes the server's CA for --ca.
func caFile(t *testing.T, srv *smtptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, srv.CA, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckCLIStartTLS(t *testing.T) {
	for _, mech := range []string{"PLAIN", "LOGIN", "CRAM-MD5"} {
		t.Run(mech, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{TLS: true, Users: map[string]string{"postmaster": cliPassword}, Mechanisms: []string{mech}})
			url := fmt.Sprintf("smtp://postmaster@127.0.0.1:%d", srv.Port)
			code, out, errOut := runCheckCLI(t, cliPassword, "", url, "--ca", caFile(t, srv))
			if code != ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
			}
			for _, want := range []string{"STEP", "RESULT", "DETAIL", "220 mx.test", "STARTTLS", "TLS 1.3", "CN=smtptest, issued by CN=smtptest, expires",
				"verified against the system's roots and the --ca file", mech + " as postmaster: accepted", "every check passed"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestCheckCLIJSON: implicit TLS, the upstream from relayctl.yaml, a test
// message, and --json's object.
func TestCheckCLIJSON(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Implicit: true, Users: map[string]string{"postmaster": cliPassword}})
	config := fmt.Sprintf("via: smtps://postmaster@127.0.0.1:%d\ntls_ca: %s\nmessage:\n  return_path: bounces@example.org\n", srv.Port, caFile(t, srv))
	code, out, errOut := runCheckCLI(t, cliPassword, config, "--send-to", "someone@example.com", "--json")
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	keys := func(m any) []string {
		mm, _ := m.(map[string]any)
		var ks []string
		for k := range mm {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	for path, want := range map[string][]string{
		"":     {"auth", "banner", "extensions", "host", "ok", "port", "send", "tls"},
		"tls":  {"cipher", "issuer", "not_after", "subject", "verified", "version"},
		"auth": {"mechanism", "ok", "reply"},
		"send": {"reply", "to"},
	} {
		v := any(got)
		if path != "" {
			v = got[path]
		}
		if ks := keys(v); !slices.Equal(ks, want) {
			t.Errorf("%q has keys %v, want %v", path, ks, want)
		}
	}
	tls, auth, snd := got["tls"].(map[string]any), got["auth"].(map[string]any), got["send"].(map[string]any)
	if got["ok"] != true || tls["verified"] != true || auth["mechanism"] != "PLAIN" || auth["ok"] != true ||
		snd["to"] != "someone@example.com" || !strings.HasPrefix(snd["reply"].(string), "250") {
		t.Errorf("json %s", out)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].From != "bounces@example.org" || !bytes.Contains(msgs[0].Data, []byte("Subject: relayctl check\r\n")) {
		t.Errorf("server got %+v, want one test message from bounces@example.org", msgs)
	}
}

func TestCheckCLIWrongPassword(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: true, Users: map[string]string{"postmaster": "the-right-one"}})
	url := fmt.Sprintf("smtp://postmaster@127.0.0.1:%d", srv.Port)
	code, out, errOut := runCheckCLI(t, cliPassword, "", url, "--ca", caFile(t, srv))
	if code != ExitError {
		t.Errorf("exit %d, want %d", code, ExitError)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "535 5.7.8 Authentication failed") {
		t.Errorf("stderr %q, want one line with the server's 535", errOut)
	}
	if !strings.Contains(out, "FAIL") || strings.Contains(out, "every check passed") {
		t.Errorf("output:\n%s", out)
	}
}

// TestCheckCLIUntrusted: without --ca the test server's certificate does
// not verify, and check says so and fails.
func TestCheckCLIUntrusted(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: true, Users: map[string]string{"postmaster": cliPassword}})
	url := fmt.Sprintf("smtp://postmaster@127.0.0.1:%d", srv.Port)
	code, out, errOut := runCheckCLI(t, cliPassword, "", url, "--json")
	if code != ExitError || !strings.Contains(errOut, "x509: certificate signed by unknown authority") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got struct {
		OK  bool `json:"ok"`
		TLS struct {
			Verified bool   `json:"verified"`
			Error    string `json:"error"`
			Subject  string `json:"subject"`
		} `json:"tls"`
		Auth *struct{} `json:"auth"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.OK || got.TLS.Verified || !strings.Contains(got.TLS.Error, "unknown authority") || got.TLS.Subject != "CN=smtptest" || got.Auth != nil {
		t.Errorf("json %s", out)
	}
}

func TestCheckCLIUsage(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string
		args   []string
		want   string
	}{
		{"nothing configured", "", nil, "no upstream to check"},
		{"direct", "via: direct\n", nil, "no upstream to check"},
		{"bad scheme", "", []string{"http://127.0.0.1:25"}, "want smtp://"},
		{"password in URL", "", []string{"smtp://u:p@127.0.0.1:587"}, "not in the URL"},
		{"two URLs", "", []string{"smtp://127.0.0.1", "smtp://127.0.0.2"}, "accepts at most 1 arg"},
		{"no sender", "", []string{"smtp://127.0.0.1:587", "--send-to", "a@example.com"}, "--send-to needs a sender"},
		{"bad address", "", []string{"smtp://127.0.0.1:587", "--send-to", "nobody"}, "want a mail address"},
		{"rcpt without open relay", "", []string{"smtp://127.0.0.1:587", "--rcpt", "a@example.net"}, "--rcpt goes with --open-relay"},
		{"open relay and URL", "", []string{"--open-relay", "127.0.0.1", "smtp://127.0.0.1:587"}, "--open-relay tests HOST[:PORT] alone"},
		{"open relay bad port", "", []string{"--open-relay", "127.0.0.1:99999"}, "bad port"},
		{"open relay no host", "", []string{"--open-relay"}, "flag needs an argument"},
		{"bad timeout", "", []string{"--command-timeout", "0s"}, "must be positive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCheckCLI(t, "", c.config, c.args...)
			if code != ExitUsage || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, ExitUsage, c.want)
			}
		})
	}
}

// TestCheckCLIOpenRelay tells an open relay from a closed one, over
// STARTTLS and plain text, and the servers never see DATA.
func TestCheckCLIOpenRelay(t *testing.T) {
	for _, c := range []struct {
		name string
		tls  bool
		open bool
	}{
		{"open", false, true},
		{"closed", false, false},
		{"open over STARTTLS", true, true},
		{"closed over STARTTLS", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{TLS: c.tls})
			var log *smtptest.RelayLog
			if c.open {
				log = srv.OpenRelay()
			} else {
				log = srv.ClosedRelay("example.com")
			}
			target := fmt.Sprintf("127.0.0.1:%d", srv.Port)
			code, out, errOut := runCheckCLI(t, "", "", "--open-relay", target)
			verdict := "127.0.0.1 refused to relay: 554 5.7.1 Relay access denied"
			wantCode := ExitOK
			if c.open {
				verdict = "127.0.0.1 is an OPEN RELAY: it accepted a recipient at an outside domain without authentication"
				wantCode = ExitError
				if !strings.Contains(errOut, verdict) || strings.Count(errOut, "\n") != 1 {
					t.Errorf("stderr %q, want the verdict on one line", errOut)
				}
			} else if errOut != "" {
				t.Errorf("stderr %q", errOut)
			}
			if code != wantCode || !strings.Contains(out, verdict) {
				t.Errorf("exit %d (want %d), output:\n%s", code, wantCode, out)
			}
			if c.tls && (!strings.Contains(out, "relay (STARTTLS)") || !strings.Contains(out, "relay (plain text)")) {
				t.Errorf("not tested over both STARTTLS and plain text:\n%s", out)
			}
			if log.Data() != 0 || len(srv.Messages()) != 0 {
				t.Errorf("the server received DATA (%d) or messages (%d)", log.Data(), len(srv.Messages()))
			}
			if len(log.Rcpts()) == 0 {
				t.Error("the server saw no RCPT")
			}
		})
	}
}

func TestCheckCLIOpenRelayJSON(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	log := srv.ClosedRelay("example.com")
	code, out, errOut := runCheckCLI(t, "", "", "--open-relay", fmt.Sprintf("127.0.0.1:%d", srv.Port),
		"--from", "probe@example.org", "--rcpt", "someone@example.net", "--json")
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	var got struct {
		Open   bool `json:"open"`
		OK     bool `json:"ok"`
		Probes []struct {
			Channel, Variant, From, Rcpt, Reply string
			Accepted                            bool
		} `json:"probes"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.Open || !got.OK || len(got.Probes) != 2 || got.Probes[0].Rcpt != "someone@example.net" ||
		got.Probes[1].Rcpt != "someone%example.net@mx.test" || got.Probes[0].From != "probe@example.org" ||
		got.Probes[0].Reply != "554 5.7.1 Relay access denied" {
		t.Errorf("json %s", out)
	}
	if !slices.Equal(log.Mails(), []string{"probe@example.org"}) || log.Data() != 0 {
		t.Errorf("server saw MAIL %v, DATA %d", log.Mails(), log.Data())
	}
}
