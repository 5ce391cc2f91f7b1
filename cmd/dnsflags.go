package cmd

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/relayctl/relayctl/listclean"
)

// listFlags are how clean and plan read and check a list.
type listFlags struct {
	delimiter, emailColumn string
	allowIPLiteral         bool
	smtputf8               bool
	dns                    dnsFlags
}

func (l *listFlags) register(f *pflag.FlagSet) {
	f.StringVar(&l.delimiter, "delimiter", "", `field delimiter: , ; | or tab (default: sniffed)`)
	f.StringVar(&l.emailColumn, "email-column", "", "header name (or 1-based number) of the address column")
	f.BoolVar(&l.allowIPLiteral, "allow-ip-literal", false, "accept address literals such as user@[192.0.2.1]")
	f.BoolVar(&l.smtputf8, "smtputf8", false, "accept non-ASCII local parts (RFC 6531; the receiving servers must support SMTPUTF8)")
	l.dns.register(f)
}

func (l *listFlags) apply(opt *listclean.Options) error {
	opt.EmailColumn = l.emailColumn
	opt.Syntax = listclean.SyntaxOptions{AllowIPLiteral: l.allowIPLiteral, SMTPUTF8: l.smtputf8}
	if l.delimiter != "" {
		d, err := listclean.ParseDelimiter(l.delimiter)
		if err != nil {
			return usagef("--delimiter: %v", err)
		}
		opt.Delimiter = d
	}
	return l.dns.apply(opt)
}

// dnsFlags are the MX-check flags.
type dnsFlags struct {
	noMX        bool
	strict      bool
	resolver    string
	timeout     time.Duration
	concurrency int
	cacheTTL    time.Duration
}

func (d *dnsFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&d.noMX, "no-mx", false, "skip the MX checks (syntax, duplicates and suppressions only)")
	f.BoolVar(&d.strict, "strict", false, "reject addresses whose domain DNS could not verify (SERVFAIL, timeout)")
	d.registerResolver(f)
	f.IntVar(&d.concurrency, "dns-concurrency", 32, "domains checked at once")
	f.DurationVar(&d.cacheTTL, "dns-cache-ttl", 24*time.Hour, "reuse domain verdicts from the store this fresh (0: always ask DNS)")
}

// registerResolver adds only the flags that choose and bound the DNS
// server, for commands that look up but do not check lists.
func (d *dnsFlags) registerResolver(f *pflag.FlagSet) {
	f.StringVar(&d.resolver, "resolver", envOr("RELAYCTL_RESOLVER", ""), "DNS server HOST:PORT for every query (env RELAYCTL_RESOLVER; default: /etc/resolv.conf)")
	f.DurationVar(&d.timeout, "dns-timeout", 5*time.Second, "timeout of each DNS query (each is tried twice)")
}

func (d *dnsFlags) apply(opt *listclean.Options) error {
	opt.Strict = d.strict
	if d.noMX {
		return nil
	}
	if d.concurrency < 1 {
		return usagef("--dns-concurrency must be at least 1, got %d", d.concurrency)
	}
	if d.timeout <= 0 {
		return usagef("--dns-timeout must be positive, got %s", d.timeout)
	}
	r, err := listclean.NewResolver(d.resolver, d.timeout)
	if err != nil {
		return usagef("--resolver: %v", err)
	}
	opt.Resolver, opt.DNSConcurrency, opt.DNSCacheTTL = r, d.concurrency, d.cacheTTL
	return nil
}
