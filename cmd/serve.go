package cmd

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relayctl/relayctl/relay"
	"github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

type serveOptions struct {
	listen, submission, smtps string
	tlsCert, tlsKey           string
	allowIPs, allowRanges     []string
	hostname, maxSize         string
	cfg                       relay.Config
	maxQueueAge, warnAfter    time.Duration
	cooldown                  time.Duration
	retry                     string
	connections               int
	via, helo, ca             string
	port                      int
	logFormat                 string
	dns                       dnsFlags
}

func newServeCmd(io *IOStreams, g *globalOptions) *cobra.Command {
	o := &serveOptions{cfg: relay.DefaultConfig}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a closed SMTP relay with a durable queue",
		Long: `serve accepts mail from your applications and delivers it the way run
delivers campaigns: direct to each domain's MX hosts, or through the
upstream of --via or relayctl.yaml, each provider under its limits, 4xx
retried on --retry-schedule, throttling providers paused.

It is closed by construction: a client relays only if it authenticated
(relayctl user add) or connects from an address given with --allow-ip (or
a range given with --allow-range). Everyone else gets "554 5.7.1 Relay
access denied". AUTH (PLAIN, LOGIN, CRAM-MD5) is offered only over TLS,
except on a loopback connection to --listen. --submission (port 587 style:
STARTTLS, AUTH required) and --smtps (465 style: TLS from the first byte)
need --tls-cert and --tls-key; TLS 1.2 is the minimum.

A message is committed to the database, synced to disk, before its 250:
a crash or power cut after it loses nothing, and a restart resumes the
queue. Messages with bare LF or CR line ends are refused (SMTP smuggling).
A recipient that bounces, or is still undelivered after --max-queue-age,
is reported to the envelope sender in an RFC 3464 notice; --warn-after
also sends one while delivery is still being retried. The null sender is
never sent a notice, so notices cannot loop.

One log line per session, per accepted message and per delivery attempt
goes to standard error (--log-format json for machines). Operate the queue
with relayctl queue, list users with relayctl user, and see who sends
what with relayctl clients. SIGINT or SIGTERM stops it gracefully: no new
connections, sessions and deliveries under way finish, exit 0.`,
		Example: `  relayctl user add app1 < password.txt
  relayctl serve --allow-ip 10.0.0.5 --listen 0.0.0.0:25 --via smtp://postmaster@mg.example.org:587
  relayctl serve --submission :587 --smtps :465 --tls-cert cert.pem --tls-key key.pem`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, args []string) error { return runServe(cmd, io, g, o) }),
	}
	f := c.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:2525", `address of the relay port ("" for none)`)
	f.StringVar(&o.submission, "submission", "", "address of a submission port: STARTTLS, then AUTH required (e.g. :587)")
	f.StringVar(&o.smtps, "smtps", "", "address of an implicit-TLS port, AUTH required (e.g. :465)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate chain for STARTTLS and --smtps")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringArrayVar(&o.allowIPs, "allow-ip", nil, "an address that may relay without AUTH (repeatable)")
	f.StringArrayVar(&o.allowRanges, "allow-range", nil, "a CIDR range that may relay without AUTH (repeatable; mind who else is in it)")
	f.StringVar(&o.hostname, "hostname", "", "this relay's name in its greeting, Received fields and notices (default: this host's name)")
	f.StringVar(&o.maxSize, "max-size", "25MB", "largest message accepted (SIZE)")
	f.IntVar(&o.cfg.MaxRecipients, "max-recipients", o.cfg.MaxRecipients, "recipients per message")
	f.IntVar(&o.cfg.MessagesPerMinute, "messages-per-minute", o.cfg.MessagesPerMinute, "messages a client (user, else address) may send a minute (0: no limit)")
	f.IntVar(&o.cfg.RecipientsPerHour, "recipients-per-hour", o.cfg.RecipientsPerHour, "recipients a client may send to an hour (0: no limit)")
	f.IntVar(&o.cfg.ConnsPerIP, "connections-per-ip", o.cfg.ConnsPerIP, "connections at once from one address (0: no limit)")
	f.DurationVar(&o.cfg.CommandTimeout, "command-timeout", o.cfg.CommandTimeout, "how long a client may take to send a command")
	f.DurationVar(&o.cfg.DataTimeout, "data-timeout", o.cfg.DataTimeout, "how long a client may fall silent within DATA")
	f.DurationVar(&o.maxQueueAge, "max-queue-age", 5*24*time.Hour, "give up on a recipient this long after the message arrived, and tell the sender")
	f.DurationVar(&o.warnAfter, "warn-after", 4*time.Hour, "tell the sender when a recipient is still undelivered this long after arrival (0: never)")
	f.StringVar(&o.retry, "retry-schedule", "", "waits between delivery attempts, e.g. 5m,10m,20m,40m,1h (the last repeats)")
	f.DurationVar(&o.cooldown, "cooldown", 30*time.Minute, "first pause of a provider that throttles (doubles each time)")
	f.IntVar(&o.connections, "connections", 10, "outgoing connections at once")
	f.StringVar(&o.via, "via", "", "direct, or an upstream URL smtp://user@host:587 / smtps://user@host:465 (default: relayctl.yaml's, else direct)")
	f.StringVar(&o.helo, "helo", "", "name to introduce ourselves with when delivering (default: relayctl.yaml's helo, else --hostname)")
	f.StringVar(&o.ca, "ca", "", "PEM file of CA certificates to trust besides the system's, when delivering")
	f.StringVar(&o.logFormat, "log-format", "text", "log lines as text (key=value) or json")
	f.IntVar(&o.port, "port", 0, "deliver to MX hosts on this port instead of 25 (testing)")
	f.MarkHidden("port")
	o.dns.registerResolver(f)
	return c
}

func runServe(cmd *cobra.Command, io *IOStreams, g *globalOptions, o *serveOptions) error {
	ctx := cmd.Context()
	cfg, err := g.config()
	if err != nil {
		return err
	}
	if err := o.resolve(); err != nil {
		return err
	}
	switch o.logFormat {
	case "text":
		o.cfg.Log = slog.New(slog.NewTextHandler(io.ErrOut, nil))
	case "json":
		o.cfg.Log = slog.New(slog.NewJSONHandler(io.ErrOut, nil))
	default:
		return usagef("--log-format %q: want text or json", o.logFormat)
	}
	policy := send.DefaultPolicy
	policy.MaxAge, policy.Cooldown = o.maxQueueAge, o.cooldown
	if o.retry != "" {
		if policy.Retry, err = parseSchedule(o.retry); err != nil {
			return usagef("--retry-schedule: %v", err)
		}
	}
	dialer, err := outboundDialer(cfg, o.via, firstNonEmpty(o.helo, cfg.HELO, o.cfg.Hostname), o.ca, send.DefaultTimeouts, o.port, o.dns)
	if err != nil {
		return err
	}
	table, err := cfg.ProviderTable()
	if err != nil {
		return usageError{err}
	}
	var ls []relay.Listener
	defer func() {
		for _, l := range ls {
			l.L.Close()
		}
	}()
	for _, p := range []struct {
		flag, addr string
		kind       relay.Kind
	}{{"--listen", o.listen, relay.Relay}, {"--submission", o.submission, relay.Submission}, {"--smtps", o.smtps, relay.SMTPS}} {
		if p.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			return usagef("%s: %v", p.flag, err)
		}
		ls = append(ls, relay.Listener{L: l, Kind: p.kind})
	}
	if len(ls) == 0 {
		return usagef("nothing to listen on: give --listen, --submission or --smtps")
	}
	st, err := store.Open(ctx, g.db, store.Durable)
	if err != nil {
		return err
	}
	defer st.Close()
	if users, err := st.Users(ctx); err == nil && len(users) == 0 && len(o.cfg.AllowIPs)+len(o.cfg.AllowRanges) == 0 {
		o.cfg.Log.Warn("nobody may relay: add a user (relayctl user add) or give --allow-ip")
	}
	d := &relay.Deliverer{Store: st, Opener: dialer, Direct: dialer.Upstream == nil, Providers: table, Policy: policy,
		WarnAfter: o.warnAfter, Connections: o.connections, Hostname: o.cfg.Hostname, Log: o.cfg.Log}
	if dialer.Resolver != nil {
		d.MX = relay.MXFrom(dialer.Resolver)
	}
	return relay.Run(ctx, st, relay.RunOptions{
		Server: relay.NewServer(o.cfg, st), Deliverer: d, Listeners: ls, Log: o.cfg.Log,
		Holder: fmt.Sprintf("relayctl serve (pid %d)", os.Getpid()), Host: hostname(), PID: os.Getpid(), Alive: processAlive,
	})
}

// resolve checks the flags and fills the server's configuration.
func (o *serveOptions) resolve() error {
	o.cfg.Hostname = firstNonEmpty(o.hostname, hostname())
	for _, a := range o.allowIPs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			if strings.Contains(a, "/") {
				return usagef("--allow-ip %q: one address only; a range goes in --allow-range", a)
			}
			return usagef("--allow-ip %q: not an IP address", a)
		}
		o.cfg.AllowIPs = append(o.cfg.AllowIPs, ip)
	}
	for _, r := range o.allowRanges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return usagef("--allow-range %q: want a CIDR range such as 10.0.0.0/24", r)
		}
		if p.Bits() == 0 {
			return usagef("--allow-range %q: that is every address, an open relay", r)
		}
		o.cfg.AllowRanges = append(o.cfg.AllowRanges, p.Masked())
	}
	size, err := parseSize(o.maxSize)
	if err != nil {
		return usagef("--max-size %q: %v", o.maxSize, err)
	}
	o.cfg.MaxSize = size
	if o.cfg.MaxRecipients < 1 {
		return usagef("--max-recipients must be at least 1")
	}
	if o.cfg.CommandTimeout <= 0 || o.cfg.DataTimeout <= 0 {
		return usagef("--command-timeout and --data-timeout must be positive")
	}
	if o.maxQueueAge <= 0 {
		return usagef("--max-queue-age must be positive")
	}
	if o.connections < 1 {
		return usagef("--connections must be at least 1")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return usagef("--tls-cert/--tls-key: %v", err)
		}
		o.cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if o.submission != "" || o.smtps != "" {
		return usagef("--submission and --smtps need --tls-cert and --tls-key")
	}
	return nil
}

// parseSize reads 25MB, 512KB, 10485760 (bytes); K and M are 1024s.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"MB", 1 << 20}, {"M", 1 << 20}, {"KB", 1 << 10}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size such as 25MB, 512KB or a number of bytes")
	}
	return n * mult, nil
}
