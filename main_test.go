package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/relayctl/relayctl/cmd"
	"github.com/relayctl/relayctl/internal/dnstest"
	"github.com/relayctl/relayctl/sink"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"relayctl": func() { os.Exit(cmd.Run(context.Background(), os.Args[1:], cmd.System())) },
	})
}

// scriptZone is the DNS every script sees at $DNS: servfail.test answers
// SERVFAIL and any other name NXDOMAIN.
var scriptZone = []string{
	"ok.test. 300 IN MX 10 mx.ok.test.",
	"mx.ok.test. 300 IN A 127.0.0.1",
	"nullmx.test. 300 IN MX 0 .",
	"aonly.test. 300 IN A 192.0.2.1",
	`nohost.test. 300 IN TXT "no mail here"`,
	// doctor.txtar: doctor.test passes every check, warn.doctor.test
	// only warns (softfail, p=none), bad.doctor.test fails all but DMARC,
	// which it inherits from doctor.test.
	`doctor.test. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all"`,
	`doctor.test. 300 IN TXT "google-site-verification=0123456789"`,
	"doctor.test. 300 IN MX 10 mx.doctor.test.",
	"mx.doctor.test. 300 IN A 192.0.2.25",
	`d1._domainkey.doctor.test. 300 IN TXT "v=DKIM1; k=ed25519; p=OAEqb/gZ0hHirkH7l5gZL3A4Xf6Rhzh+eAYgOS9QI6s="`,
	`_dmarc.doctor.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@doctor.test"`,
	"bounce.doctor.test. 300 IN MX 10 mx.doctor.test.",
	`warn.doctor.test. 300 IN TXT "v=spf1 ip4:198.51.100.7 ~all"`,
	"warn.doctor.test. 300 IN A 192.0.2.26",
	`d1._domainkey.warn.doctor.test. 300 IN TXT "v=DKIM1; k=ed25519; p=OAEqb/gZ0hHirkH7l5gZL3A4Xf6Rhzh+eAYgOS9QI6s="`,
	`_dmarc.warn.doctor.test. 300 IN TXT "v=DMARC1; p=none"`,
	"bad.doctor.test. 300 IN MX 0 .",
	`d1._domainkey.bad.doctor.test. 300 IN TXT "v=DKIM1; k=ed25519; p=not*base64"`,
}

// TestScripts runs testdata/script/*.txtar. Each script gets its own DNS
// servers: $DNS with scriptZone, and $DNS_SILENT, which never answers.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			// Under Run, env.T() is the script's own *testing.T, so the
			// servers stop when the script ends.
			tb, ok := env.T().(testing.TB)
			if !ok {
				return errors.New("testscript.Env.T() does not implement testing.TB")
			}
			srv := dnstest.Start(tb)
			srv.Add(tb, scriptZone...)
			srv.Rcode("servfail.test", dns.RcodeServerFailure)
			silent := dnstest.Start(tb)
			silent.Silence("")
			// The capture server relayctl sink runs, for run: it keeps
			// every message in $WORK/sink.
			sk, err := sink.Listen("127.0.0.1:0", filepath.Join(env.WorkDir, "sink"))
			if err != nil {
				return err
			}
			go sk.Serve()
			env.Defer(func() { sk.Close() })
			env.Setenv("SMTP", sk.Addr)
			_, port, _ := strings.Cut(sk.Addr, ":")
			env.Setenv("SMTP_PORT", port)
			env.Setenv("DNS", srv.Addr)
			env.Setenv("DNS_SILENT", silent.Addr)
			// A script that forgets --resolver must still not ask real DNS.
			env.Setenv("RELAYCTL_RESOLVER", srv.Addr)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"crlf":     cmdCRLF,
			"bom":      cmdBOM,
			"printf":   cmdPrintf,
		},
	})
}

// exitcode N COMMAND [ARGS...] runs COMMAND and checks that it exits with
// status N; stdout and stderr are kept for the checks that follow.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// crlf FILE... turns the files' LF line ends into CR LF (txtar files are
// LF-only).
func cmdCRLF(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: crlf FILE...")
	}
	for _, f := range args {
		b := []byte(ts.ReadFile(f))
		ts.Check(os.WriteFile(ts.MkAbs(f), bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")), 0o644))
	}
}

// bom FILE... puts a UTF-8 byte-order mark at the start of the files.
func cmdBOM(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: bom FILE...")
	}
	for _, f := range args {
		ts.Check(os.WriteFile(ts.MkAbs(f), append([]byte("\ufeff"), ts.ReadFile(f)...), 0o644))
	}
}

// printf FILE TEXT writes TEXT, with Go escapes such as \x00 and \n
// decoded, to FILE: for bytes a txtar file cannot hold.
func cmdPrintf(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: printf FILE TEXT")
	}
	s, err := strconv.Unquote(`"` + args[1] + `"`)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(s), 0o644))
}
