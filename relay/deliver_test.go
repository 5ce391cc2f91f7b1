package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/relay"
	dlsend "github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

// TestDeliverBounceNotifiesSender is the acceptance, end to end:
// a client relays a message to two recipients, the destination refuses
// one with 550 5.1.1; the other is delivered, and the sender gets an RFC
// 3464 notice from the null sender about the refused one only.
func TestDeliverBounceNotifiesSender(t *testing.T) {
	e := dlSetup(t)
	e.dest.SetHooks(smtptest.Hooks{Rcpt: func(to string) error {
		if to == "nobody@example.net" {
			return dlReply(550, smtp.EnhancedCode{5, 1, 1}, "No such user")
		}
		return nil
	}})
	e.d.Now = nil // the server stamps arrival with the real clock
	addr := dlServe(t, e.st, e.d)

	body := "Subject: Invoice 42\r\nFrom: App <app@example.com>\r\nMessage-ID: <invoice-42@example.com>\r\n\r\nYour invoice.\r\n"
	dlSubmit(t, addr, "app@example.com", []string{"a@example.net", "nobody@example.net"}, body)
	// The notice is queued in the commit that marks the bounce reported,
	// so an empty queue means it was delivered too.
	e.waitFor("the queue to empty", func() bool { return len(e.queued()) == 0 })

	got := dlMessagesTo(e.dest, "a@example.net")
	if len(got) != 1 || got[0].From != "app@example.com" || !strings.Contains(string(got[0].Data), "Subject: Invoice 42\r\n") {
		t.Errorf("a@example.net received %d messages (%+v), want the original once, from app@example.com", len(got), got)
	}
	if got := dlMessagesTo(e.dest, "nobody@example.net"); len(got) != 0 {
		t.Errorf("nobody@example.net received %d messages", len(got))
	}
	notices := dlNotices(e.dest)
	if len(notices) != 1 {
		t.Fatalf("destination received %d messages from <>, want 1 notice; all: %+v", len(notices), e.dest.Messages())
	}
	if n := notices[0]; !slices.Equal(n.To, []string{"app@example.com"}) {
		t.Errorf("notice went to %v, want the envelope sender app@example.com", n.To)
	}
	dsn := dlParseDSN(t, notices[0].Data)
	if mt, params, err := dsn.top.ContentType(); err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Errorf("notice Content-Type = %q, want multipart/report; report-type=delivery-status", dsn.top.Get("Content-Type"))
	}
	if want := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}; !slices.Equal(dsn.types, want) {
		t.Errorf("notice parts %v, want %v", dsn.types, want)
	}
	if got := dsn.top.Get("To"); got != "<app@example.com>" {
		t.Errorf("notice To: %q", got)
	}
	if got := dsn.perMessage.Get("Reporting-MTA"); got != "dns; relay.test" {
		t.Errorf("Reporting-MTA: %q, want dns; relay.test", got)
	}
	if len(dsn.recipients) != 1 {
		t.Fatalf("notice reports on %d recipients, want 1 (nobody@example.net)", len(dsn.recipients))
	}
	r := dsn.recipients[0]
	for field, want := range map[string]string{
		"Final-Recipient": "rfc822; nobody@example.net",
		"Action":          "failed",
		"Status":          "5.1.1",
		"Diagnostic-Code": "smtp; 550 5.1.1 No such user",
	} {
		if got := r.Get(field); got != want {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if !strings.Contains(dsn.headers, "Subject: Invoice 42\r\n") || !strings.Contains(dsn.headers, "Message-ID: <invoice-42@example.com>") {
		t.Errorf("text/rfc822-headers part lacks the original's Subject or Message-ID:\n%s", dsn.headers)
	}
	if strings.Contains(dsn.text, "a@example.net") || strings.Contains(fmt.Sprint(dsn.recipients), "a@example.net") {
		t.Errorf("notice mentions the delivered recipient a@example.net:\n%s", notices[0].Data)
	}

	results := map[string]string{}
	for _, a := range e.log.records(t, "attempt") {
		results[a["to"].(string)+" "+a["from"].(string)] = a["result"].(string)
	}
	want := map[string]string{"a@example.net app@example.com": "sent", "nobody@example.net app@example.com": "bounced", "app@example.com ": "sent"}
	if fmt.Sprint(results) != fmt.Sprint(want) {
		t.Errorf("attempts logged %v, want %v\n%s", results, want, e.log)
	}
}

// TestDeliverNoBounceLoops: the null sender is never sent a notice, so a
// bounce of a bounce ends there.
func TestDeliverNoBounceLoops(t *testing.T) {
	t.Run("from the null sender", func(t *testing.T) {
		e := dlSetup(t)
		var mu sync.Mutex
		var rcpts []string
		e.dest.SetHooks(smtptest.Hooks{Rcpt: func(to string) error {
			mu.Lock()
			defer mu.Unlock()
			rcpts = append(rcpts, to)
			return dlReply(550, smtp.EnhancedCode{5, 1, 1}, "No such user")
		}})
		e.enqueue("", "A bounce", "nobody@example.net")
		e.run(e.d)
		e.waitFor("the queue to empty", func() bool { return len(e.queued()) == 0 })
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(rcpts, []string{"nobody@example.net"}) {
			t.Errorf("destination saw RCPT TO %v, want nobody@example.net once and no notice", rcpts)
		}
		if n := e.log.records(t, "notice"); len(n) != 0 {
			t.Errorf("notices logged: %v", n)
		}
	})
	t.Run("notice bounces", func(t *testing.T) {
		e := dlSetup(t)
		var mu sync.Mutex
		var mails, rcpts []string
		e.dest.SetHooks(smtptest.Hooks{
			Mail: func(from string) error {
				mu.Lock()
				defer mu.Unlock()
				mails = append(mails, from)
				return nil
			},
			Rcpt: func(to string) error {
				mu.Lock()
				defer mu.Unlock()
				rcpts = append(rcpts, to)
				return dlReply(550, smtp.EnhancedCode{5, 1, 1}, "No such user")
			}})
		e.enqueue("gone@example.org", "Hello", "nobody@example.net")
		e.run(e.d)
		e.waitFor("the queue to empty", func() bool { return len(e.queued()) == 0 })
		mu.Lock()
		defer mu.Unlock()
		// The original bounces, its notice to gone@ bounces, and nothing
		// more is sent.
		if !slices.Equal(mails, []string{"gone@example.org", ""}) || !slices.Equal(rcpts, []string{"nobody@example.net", "gone@example.org"}) {
			t.Errorf("destination saw MAIL FROM %q, RCPT TO %q; want the original, then one notice from <> to gone@example.org", mails, rcpts)
		}
		if n := e.log.records(t, "notice"); len(n) != 1 {
			t.Errorf("%d notices logged, want 1: %v", len(n), n)
		}
		if len(e.dest.Messages()) != 0 {
			t.Errorf("destination accepted %d messages", len(e.dest.Messages()))
		}
	})
}

// TestDeliverRetriesThenDelivers: a 451 defers the recipient on the retry
// schedule; the next attempt delivers it, once, and each attempt has its
// log line.
func TestDeliverRetriesThenDelivers(t *testing.T) {
	e := dlSetup(t)
	var mu sync.Mutex
	datas := 0
	e.dest.SetHooks(smtptest.Hooks{Data: func(smtptest.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if datas++; datas == 1 {
			return dlReply(451, smtp.EnhancedCode{4, 3, 0}, "Try again later")
		}
		return nil
	}})
	id := e.enqueue("app@example.com", "Retry me", "a@example.net")
	e.run(e.d)

	var r store.QueueRecipient
	e.waitFor("the first attempt", func() bool { r = e.recipient(id, "a@example.net"); return r.Attempts > 0 })
	if r.State != store.StateDeferred || r.Attempts != 1 || r.Reply != "451 4.3.0 Try again later" ||
		!r.NextAttempt.Equal(dlT0.Add(time.Second)) || !r.LastAttempt.Equal(dlT0) {
		t.Errorf("after a 451: %+v; want deferred after 1 attempt at %s, next at %s", r, dlT0, dlT0.Add(time.Second))
	}
	if len(e.dest.Messages()) != 0 {
		t.Fatalf("the destination kept a message it refused")
	}

	e.clock.Advance(time.Second)
	e.d.Wake()
	e.waitFor("the queue to empty", func() bool { return len(e.queued()) == 0 })
	if got := e.dest.Messages(); len(got) != 1 || !slices.Equal(got[0].To, []string{"a@example.net"}) {
		t.Errorf("destination received %+v, want the message once", got)
	}
	attempts := e.log.records(t, "attempt")
	if len(attempts) != 2 {
		t.Fatalf("%d attempt lines, want 2:\n%s", len(attempts), e.log)
	}
	for i, want := range []struct {
		result, reply string
		level         string
	}{{"deferred", "451 4.3.0 Try again later", "WARN"}, {"sent", "250 2.0.0 OK: queued", "INFO"}} {
		a := attempts[i]
		if a["queue_id"] != float64(id) || a["from"] != "app@example.com" || a["to"] != "a@example.net" ||
			a["attempt"] != float64(i+1) || a["result"] != want.result || a["level"] != want.level ||
			!strings.HasPrefix(a["reply"].(string), want.reply) {
			t.Errorf("attempt %d logged %v; want queue_id %d, from, to, attempt %d, result %s, reply %s", i+1, a, id, i+1, want.result, want.reply)
		}
	}
}

// TestDeliverExpiry: a recipient still deferred once the queue lifetime
// (Policy.MaxAge, from arrival) has passed fails at its next attempt, and
// the sender gets a notice with status 4.4.7.
func TestDeliverExpiry(t *testing.T) {
	e := dlSetup(t)
	e.dest.SetHooks(smtptest.Hooks{Rcpt: func(to string) error {
		if to == "slow@example.net" {
			return dlReply(451, smtp.EnhancedCode{4, 3, 0}, "Mailbox busy")
		}
		return nil
	}})
	id := e.enqueue("app@example.com", "Expiring", "slow@example.net")
	e.run(e.d)
	attempted := func(n int) func() bool {
		return func() bool { return e.recipient(id, "slow@example.net").Attempts >= n }
	}
	e.waitFor("the first attempt", attempted(1))

	// Within the lifetime, a 451 is only a deferral.
	e.clock.Advance(59 * time.Minute)
	e.d.Wake()
	e.waitFor("the second attempt", attempted(2))
	if r := e.recipient(id, "slow@example.net"); r.State != store.StateDeferred {
		t.Fatalf("59 minutes after arrival: %+v, want deferred", r)
	}
	if len(dlNotices(e.dest)) != 0 {
		t.Fatalf("a notice went before the lifetime ran out")
	}

	e.clock.Advance(time.Minute)
	e.d.Wake()
	e.waitFor("the queue to empty", func() bool { return len(e.queued()) == 0 })
	notices := dlNotices(e.dest)
	if len(notices) != 1 || !slices.Equal(notices[0].To, []string{"app@example.com"}) {
		t.Fatalf("want one notice to app@example.com, got %+v", notices)
	}
	dsn := dlParseDSN(t, notices[0].Data)
	if len(dsn.recipients) != 1 {
		t.Fatalf("notice reports on %d recipients, want 1", len(dsn.recipients))
	}
	r := dsn.recipients[0]
	if r.Get("Final-Recipient") != "rfc822; slow@example.net" || r.Get("Action") != "failed" || r.Get("Status") != "4.4.7" {
		t.Errorf("notice says %v; want slow@example.net failed, status 4.4.7", r.Map())
	}
	if got := dsn.top.Get("Subject"); got != "Undelivered Mail Returned to Sender" {
		t.Errorf("Subject: %q", got)
	}
	// The notice says the time ran out, and what the server last said,
	// in the text and as the Diagnostic-Code.
	for _, want := range []string{"retried until the time allowed for it ran out", "The receiving server said: 451 4.3.0 Mailbox busy"} {
		if !strings.Contains(dsn.text, want) {
			t.Errorf("notice text lacks %q:\n%s", want, dsn.text)
		}
	}
	if got := r.Get("Diagnostic-Code"); got != "smtp; 451 4.3.0 Mailbox busy" {
		t.Errorf("Diagnostic-Code %q, want the last reply", got)
	}
	var results []string
	for _, a := range e.log.records(t, "attempt") {
		if a["to"] == "slow@example.net" {
			results = append(results, fmt.Sprint(a["result"], ": ", a["reply"]))
		}
	}
	want := []string{"deferred: 451 4.3.0 Mailbox busy", "deferred: 451 4.3.0 Mailbox busy", "failed: gave up after 1h0m0s: 451 4.3.0 Mailbox busy"}
	if !slices.Equal(results, want) {
		t.Errorf("attempts logged %q, want %q", results, want)
	}
}

// TestDeliverDelayWarning: with WarnAfter, a recipient still waiting that
// long after arrival makes one "delayed" notice, and only one.
func TestDeliverDelayWarning(t *testing.T) {
	e := dlSetup(t)
	e.d.WarnAfter = 10 * time.Minute
	e.dest.SetHooks(smtptest.Hooks{Rcpt: func(to string) error {
		if to == "slow@example.net" {
			return dlReply(451, smtp.EnhancedCode{4, 3, 0}, "Mailbox busy")
		}
		return nil
	}})
	id := e.enqueue("app@example.com", "Slow one", "slow@example.net")
	e.run(e.d)
	attempted := func(n int) func() bool {
		return func() bool { return e.recipient(id, "slow@example.net").Attempts >= n }
	}
	e.waitFor("the first attempt", attempted(1))
	e.clock.Advance(9 * time.Minute)
	e.d.Wake()
	e.waitFor("the second attempt", attempted(2))
	if n := dlNotices(e.dest); len(n) != 0 {
		t.Fatalf("a warning went 9 minutes after arrival (WarnAfter 10m): %+v", n)
	}

	e.clock.Advance(2 * time.Minute)
	e.d.Wake()
	// The outcome of the third attempt reads the clock: wait for it.
	e.waitFor("the warning and the third attempt", func() bool { return len(dlNotices(e.dest)) > 0 && attempted(3)() })
	// Each attempt follows a pass over the notices owed: two more passes.
	e.clock.Advance(time.Minute)
	e.d.Wake()
	e.waitFor("the fourth attempt", attempted(4))

	notices := dlNotices(e.dest)
	if len(notices) != 1 {
		t.Fatalf("%d notices, want one warning", len(notices))
	}
	dsn := dlParseDSN(t, notices[0].Data)
	if got := dsn.top.Get("Subject"); got != "Delayed Mail (still being retried)" {
		t.Errorf("Subject: %q", got)
	}
	if len(dsn.recipients) != 1 {
		t.Fatalf("warning reports on %d recipients, want 1", len(dsn.recipients))
	}
	r := dsn.recipients[0]
	if r.Get("Final-Recipient") != "rfc822; slow@example.net" || r.Get("Action") != "delayed" || r.Get("Status") != "4.3.0" {
		t.Errorf("warning says %v; want slow@example.net delayed, status 4.3.0", r.Map())
	}
	if until, err := time.Parse(time.RFC1123Z, r.Get("Will-Retry-Until")); err != nil || !until.Equal(dlT0.Add(time.Hour)) {
		t.Errorf("Will-Retry-Until: %q, want %s (arrival + MaxAge)", r.Get("Will-Retry-Until"), dlT0.Add(time.Hour).Format(time.RFC1123Z))
	}
	if q := e.queued(); len(q) != 1 || q[0].ID != id {
		t.Errorf("queue holds %+v, want only the original, still waiting", q)
	}
}

// TestDeliverResumesAfterRestart: recipients a stopped server left
// sending are delivered by the next one.
func TestDeliverResumesAfterRestart(t *testing.T) {
	e := dlSetup(t)
	id := e.enqueue("app@example.com", "Interrupted", "a@example.net", "b@example.org")
	_, rs, _, err := e.st.QueuedMessage(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var us []store.QueueUpdate
	for _, r := range rs {
		us = append(us, store.QueueUpdate{ID: r.ID, State: store.StateSending, At: dlT0})
	}
	if err := e.st.ApplyQueue(t.Context(), us); err != nil {
		t.Fatal(err)
	}
	// Sending is not due: only recovery makes it so.
	if due, err := e.st.DueQueue(t.Context(), dlT0.Add(time.Hour), 10, 1<<20); err != nil || len(due) != 0 {
		t.Fatalf("DueQueue with both sending: %v, %v; want none", due, err)
	}

	e.run(e.d)
	e.waitFor("the queue to empty", func() bool { return len(e.queued()) == 0 })
	for _, rcpt := range []string{"a@example.net", "b@example.org"} {
		if got := dlMessagesTo(e.dest, rcpt); len(got) != 1 {
			t.Errorf("%s received %d messages, want 1", rcpt, len(got))
		}
	}
	if rec := e.log.records(t, "recovered"); len(rec) != 1 || rec[0]["recipients"] != float64(2) {
		t.Errorf("recovery logged %v, want one line for 2 recipients", rec)
	}
}

// TestDeliverIdleReleasesUpstream: once the queue is empty the deliverer
// lets its upstream connections go. An upstream drops a connection idle
// for long (Postfix after 300 s), and a session kept open across the
// idle time made the next message's first attempt fail on it and wait
// out the first retry delay (5 minutes by default).
func TestDeliverIdleReleasesUpstream(t *testing.T) {
	e := dlSetup(t)
	e.enqueue("app@example.com", "First", "a@example.net")
	e.run(e.d)
	e.waitFor("the first message", func() bool { return len(e.dest.Messages()) == 1 })
	eventually(t, 10*time.Second, "the relay to close its upstream connection while idle",
		func() bool { return e.dest.Stats().Open == 0 },
		func() string { return fmt.Sprintf("%+v", e.dest.Stats()) })

	e.enqueue("app@example.com", "Second", "b@example.net")
	e.d.Wake()
	e.waitFor("the queue to empty", func() bool { return len(e.queued()) == 0 })
	for _, a := range e.log.records(t, "attempt") {
		if a["result"] != "sent" || a["attempt"] != float64(1) {
			t.Errorf("attempt %v, want each message sent at its first attempt", a)
		}
	}
}

// dlServe runs a relay server on 127.0.0.1 for st with deliverer d, until
// the test ends; it returns the address to submit to.
func dlServe(t *testing.T, st *store.Store, d *relay.Deliverer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := relay.DefaultConfig
	cfg.Hostname = "relay.test"
	cfg.AllowIPs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- relay.Run(ctx, st, relay.RunOptions{Server: relay.NewServer(cfg, st), Deliverer: d,
			Listeners: []relay.Listener{{L: ln, Kind: relay.Relay}}, Holder: "deliver test", Host: "test.example",
			PID: os.Getpid(), Grace: 5 * time.Second, Log: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("relay.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("relay.Run did not return within 30s of its context's end")
		}
	})
	return ln.Addr().String()
}

// dlSubmit relays one message through the server at addr, failing the
// test unless it is accepted.
func dlSubmit(t *testing.T, addr, from string, to []string, body string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := dlSend(c, from, to, body); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// dlSend runs one transaction on c.
func dlSend(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("MAIL FROM:<%s>: %w", from, err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return fmt.Errorf("RCPT TO:<%s>: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

// dlRoute opens each domain's sessions with its own opener, as direct
// delivery reaches each domain's own MX hosts.
type dlRoute map[string]dlsend.Opener

func (r dlRoute) Open(ctx context.Context, domain string) (*dlsend.Session, error) {
	return r[domain].Open(ctx, domain)
}

func dlUpstream(srv *smtptest.Server) *dlsend.Dialer {
	return &dlsend.Dialer{HELO: "relay.test", Timeouts: dlsend.Timeouts{Dial: 5 * time.Second, Command: 10 * time.Second, Final: 10 * time.Second},
		Upstream: &dlsend.Upstream{Host: "127.0.0.1", Port: srv.Port, Mode: dlsend.TLSNone}}
}

// TestDeliverSlowDestinationHoldsOnlyItsOwnMail: while one destination
// sits on a message, mail queued after it for another destination is
// delivered at once, in a round of its own.
func TestDeliverSlowDestinationHoldsOnlyItsOwnMail(t *testing.T) {
	e := dlSetup(t)
	slow := smtptest.Start(t, smtptest.Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow.SetHooks(smtptest.Hooks{Data: func(smtptest.Message) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	}})
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	d := e.deliverer()
	d.Direct, d.Connections = true, 4
	d.Opener = dlRoute{"slow.example.net": dlUpstream(slow), "example.org": dlUpstream(e.dest)}
	e.run(d)

	e.enqueue("app@example.com", "Held", "x@slow.example.net")
	d.Wake()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow destination never got its message")
	}
	e.enqueue("app@example.com", "Urgent", "y@example.org")
	d.Wake()
	e.waitFor("the second message, while the first is held", func() bool { return len(e.dest.Messages()) == 1 })
	if got := e.dest.Messages()[0].To; !slices.Equal(got, []string{"y@example.org"}) {
		t.Fatalf("delivered to %v", got)
	}
	close(release)
	released = true
	e.waitFor("the queue to empty", func() bool { return len(e.queued()) == 0 })
	if n := len(slow.Messages()); n != 1 {
		t.Errorf("the slow destination got %d messages, want 1", n)
	}
}

// TestRunOneServerPerQueue: while a server delivers a database's queue, a
// second one on the same database refuses to start (store.ErrLocked: the
// command exits 4) instead of delivering the same messages twice.
func TestRunOneServerPerQueue(t *testing.T) {
	e := dlSetup(t)
	addr := dlServe(t, e.st, e.deliverer())
	// A 250 means the first server got as far as serving: it holds the lock.
	dlSubmit(t, addr, "app@example.com", []string{"a@example.net"}, string(dlBody("app@example.com", "Locked")))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = relay.Run(ctx, e.st, relay.RunOptions{Server: relay.NewServer(relay.DefaultConfig, e.st), Deliverer: e.deliverer(),
		Listeners: []relay.Listener{{L: ln, Kind: relay.Relay}}, Holder: "second", Host: "test.example", PID: os.Getpid()})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second server: %v, want store.ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "another relayctl serve delivers this database's queue") {
		t.Errorf("error %q does not say what holds the lock", err)
	}
}

// TestDeliverGroupsByMX: with MX lookups, a company domain hosted by a
// provider is shaped as that provider: its throttling pauses the provider,
// named as such.
func TestDeliverGroupsByMX(t *testing.T) {
	e := dlSetup(t)
	e.dest.SetHooks(smtptest.Hooks{Rcpt: func(to string) error {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 28}, Message: "rate limited, try later"}
	}})
	d := e.deliverer()
	d.MX = func(_ context.Context, domain string) ([]string, error) {
		if domain == "corp.example" {
			return []string{"aspmx.l.google.com"}, nil
		}
		return nil, fmt.Errorf("%s: no such domain", domain)
	}
	e.run(d)
	e.enqueue("app@example.com", "Hosted", "ceo@corp.example")
	d.Wake()
	e.waitFor("the pause", func() bool { return len(e.log.records(t, "paused")) > 0 })
	if p := e.log.records(t, "paused")[0]; p["provider"] != "google" {
		t.Errorf("paused %v, want the provider google (corp.example's MX is Google's)", p)
	}
}
