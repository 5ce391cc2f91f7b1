package cmd

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/config"
	"github.com/relayctl/relayctl/domaincheck"
	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/message"
)

type doctorOptions struct {
	domain, selector, dkimKey, bounceDomain string
	relayIPs                                []string
	json                                    bool
	dns                                     dnsFlags
}

func newDoctorCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	o := &doctorOptions{}
	c := &cobra.Command{
		Use:   "doctor --domain DOMAIN [--relay-ip IP ...]",
		Short: "Check a sending domain's DNS: SPF, DKIM, DMARC, bounce MX, reverse DNS",
		Long: `doctor checks what receivers check before they trust mail from DOMAIN:
one SPF record that authorises every --relay-ip (evaluated in full:
include, redirect, a, mx, the 10-lookup limit), the DKIM key at
SELECTOR._domainkey.DOMAIN and that it is the key relayctl signs with, the
DMARC policy, an MX for the bounce domain, and forward-confirmed reverse
DNS for each relay IP. Each check passes, warns or fails; for each that
does not pass it prints the DNS record to publish.

The selector and key default to relayctl.yaml's dkim: section, the bounce
domain to the domain of message.return_path, else DOMAIN.

Exit codes: 0 no check failed (warnings allowed), 1 a check failed,
2 bad usage.`,
		Example: `  relayctl doctor --domain example.org --relay-ip 192.0.2.10
  relayctl doctor --domain example.org --relay-ip 192.0.2.10 --relay-ip 2001:db8::10 --selector s2026 --dkim-key s2026.pem --json`,
		Args: exactArgs(0, "no arguments (the domain is --domain)"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd.Context(), io, g, o)
		}),
	}
	f := c.Flags()
	f.StringVar(&o.domain, "domain", "", "the sending domain (the From address's)")
	f.StringArrayVar(&o.relayIPs, "relay-ip", nil, "an address the relay sends from (repeatable)")
	f.StringVar(&o.selector, "selector", "", "DKIM selector (default: relayctl.yaml's dkim.selector)")
	f.StringVar(&o.dkimKey, "dkim-key", "", "DKIM private key file to compare the published key with (default: relayctl.yaml's dkim.key)")
	f.StringVar(&o.bounceDomain, "bounce-domain", "", "the return path's domain (default: message.return_path's, else DOMAIN)")
	f.BoolVar(&o.json, "json", false, "print the checks as one JSON object")
	o.dns.registerResolver(f)
	return c
}

func runDoctor(ctx context.Context, io *IOStreams, g *globalOptions, o *doctorOptions) error {
	if o.domain == "" {
		return usagef("doctor needs --domain")
	}
	domain, err := domainFlag("--domain", o.domain)
	if err != nil {
		return err
	}
	opt := domaincheck.Options{Domain: domain, Timeout: o.dns.timeout}
	if o.bounceDomain != "" {
		if opt.BounceDomain, err = domainFlag("--bounce-domain", o.bounceDomain); err != nil {
			return err
		}
	}
	for _, s := range o.relayIPs {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return usagef("--relay-ip %q: not an IP address", s)
		}
		opt.RelayIPs = append(opt.RelayIPs, ip)
	}
	if o.dns.timeout <= 0 {
		return usagef("--dns-timeout must be positive, got %s", o.dns.timeout)
	}
	cfg, err := g.config()
	if err != nil {
		return err
	}
	opt.RelayName = cfg.HELO
	if opt.BounceDomain == "" {
		if _, d, ok := strings.Cut(cfg.Message.ReturnPath, "@"); ok {
			opt.BounceDomain = d
		}
	}
	if opt.Selector, opt.DKIMKey, err = doctorKey(cfg, domain, o.selector, o.dkimKey); err != nil {
		return usageError{err}
	}
	r, err := listclean.NewResolver(o.dns.resolver, o.dns.timeout)
	if err != nil {
		return usagef("--resolver: %v", err)
	}
	opt.DNS, opt.MailHosts = domaincheck.NewResolver(r), r
	rep, err := domaincheck.Run(ctx, opt)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if o.json {
		err = writeJSON(io.Out, doctorJSONOf(rep))
	} else {
		err = renderDoctor(io.Out, rep)
	}
	if err != nil {
		return err
	}
	if n := rep.Failed(); n > 0 {
		return fmt.Errorf("%s: %d of %d checks failed", rep.Domain, n, len(rep.Checks))
	}
	return nil
}

// domainFlag checks a domain by the mailbox grammar, which also turns an
// IDN into A-labels.
func domainFlag(flag, d string) (string, error) {
	a, err := listclean.ParseAddress("postmaster@"+strings.TrimSuffix(d, "."), listclean.SyntaxOptions{})
	if err != nil || strings.HasPrefix(a.Domain, "[") {
		return "", usagef("%s %q: not a domain name", flag, d)
	}
	return a.Domain, nil
}

// doctorKey returns the DKIM selector to check and the public key to
// compare the published one with: --dkim-key's, else the key of
// relayctl.yaml's dkim: section when it signs for domain, else none.
func doctorKey(cfg *config.Config, domain, selector, keyFile string) (string, crypto.PublicKey, error) {
	conf := cfg.DKIM
	if conf != nil && !strings.EqualFold(strings.TrimSuffix(conf.Domain, "."), strings.TrimSuffix(domain, ".")) {
		conf = nil
	}
	if selector == "" && conf != nil {
		selector = conf.Selector
	}
	var s *message.Signer
	var err error
	switch {
	case keyFile != "":
		if selector == "" {
			return "", nil, errors.New("--dkim-key needs --selector")
		}
		s, err = message.LoadSigner(domain, selector, keyFile)
	case conf != nil && conf.Key != "" && selector == conf.Selector:
		s, err = cfg.Signer()
	default:
		return selector, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	return selector, s.Key.Public(), nil
}
