package relay_test

// Helpers for the deliverer's tests; their names start with dl so they
// stay clear of the other test files of the package.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/relayctl/relayctl/internal/smtptest"
	"github.com/relayctl/relayctl/relay"
	dlsend "github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

// dlT0 is where the tests' clocks start: a whole second, as the queue
// stores seconds.
var dlT0 = time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)

// dlLog is the deliverer's log: slog JSON lines in a buffer.
type dlLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *dlLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the lines whose msg is msg, decoded.
func (l *dlLog) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	data := bytes.Clone(l.b.Bytes())
	l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func (l *dlLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// dlEnv is a queue, a destination and a deliverer between them.
type dlEnv struct {
	t     *testing.T
	st    *store.Store
	dest  *smtptest.Server
	clock *testClock
	log   *dlLog
	d     *relay.Deliverer
}

// dlSetup opens a durable store and starts a destination; the deliverer
// it makes (through the destination as upstream, on a fake clock) is not
// running yet.
func dlSetup(t *testing.T) *dlEnv {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "relayctl.db"), store.Durable)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &dlEnv{t: t, st: st, dest: smtptest.Start(t, smtptest.Options{}), clock: &testClock{now: dlT0}, log: &dlLog{}}
	e.d = e.deliverer()
	return e
}

// deliverer returns a new deliverer on e's store, destination, clock and
// log.
func (e *dlEnv) deliverer() *relay.Deliverer {
	return &relay.Deliverer{
		Store:       e.st,
		Opener:      dlUpstream(e.dest),
		Policy:      dlsend.Policy{Retry: []time.Duration{time.Second}, MaxAge: time.Hour, Cooldown: time.Minute},
		Connections: 2,
		Hostname:    "relay.test",
		Log:         slog.New(slog.NewJSONHandler(e.log, nil)),
		Now:         e.clock.Now,
	}
}

// run starts d until the test ends.
func (e *dlEnv) run(d *relay.Deliverer) {
	e.t.Helper()
	d.Init()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Deliverer.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.t.Errorf("Deliverer.Run did not return within 30s of its context's end")
		}
	})
}

// dlBody is a small message with a subject and a Message-ID.
func dlBody(from, subject string) []byte {
	if from == "" {
		from = "MAILER-DAEMON@example.com"
	}
	id := strings.NewReplacer(" ", "-").Replace(strings.ToLower(subject))
	return fmt.Appendf(nil, "Subject: %s\r\nFrom: %s\r\nMessage-ID: <%s@example.com>\r\n\r\nhello\r\n", subject, from, id)
}

// enqueue queues a message received now by e's clock; it returns its id.
func (e *dlEnv) enqueue(from, subject string, rcpts ...string) int64 {
	e.t.Helper()
	ids, err := e.st.Enqueue(e.t.Context(), []store.Queued{{Received: e.clock.Now(), From: from, Client: "127.0.0.1",
		Body: dlBody(from, subject), Recipients: rcpts}})
	if err != nil {
		e.t.Fatal(err)
	}
	return ids[0]
}

// queued returns the queue, oldest first.
func (e *dlEnv) queued() []store.QueueEntry {
	return dlQueued(e.t, e.st)
}

func dlQueued(t *testing.T, st *store.Store) []store.QueueEntry {
	t.Helper()
	var out []store.QueueEntry
	if err := st.EachQueued(context.Background(), func(q store.QueueEntry) error { out = append(out, q); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// recipient returns a queued message's recipient, failing if it is gone.
func (e *dlEnv) recipient(id int64, rcpt string) store.QueueRecipient {
	e.t.Helper()
	_, rs, _, err := e.st.QueuedMessage(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rs {
		if r.Rcpt == rcpt {
			return r
		}
	}
	e.t.Fatalf("message %d has no recipient %s", id, rcpt)
	return store.QueueRecipient{}
}

// waitFor polls cond until it holds, failing the test after 10s.
func (e *dlEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	eventually(e.t, 10*time.Second, what, cond, e.log.String)
}

// messagesTo returns what the destination received for rcpt.
func dlMessagesTo(dest *smtptest.Server, rcpt string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range dest.Messages() {
		for _, to := range m.To {
			if to == rcpt {
				out = append(out, m)
			}
		}
	}
	return out
}

// dlReply is an SMTP reply for a hook to give.
func dlReply(code int, enh smtp.EnhancedCode, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: text}
}

// dlDSN is a received notice, parsed.
type dlDSN struct {
	top   message.Header
	types []string // of the parts, in order
	text  string   // the text/plain part
	// The message/delivery-status part: its per-message block, then a
	// block per recipient.
	perMessage textproto.Header
	recipients []textproto.Header
	headers    string // the text/rfc822-headers part
}

// dlParseDSN parses a notice as a mail client would, with go-message.
func dlParseDSN(t *testing.T, data []byte) dlDSN {
	t.Helper()
	e, err := message.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("notice: %v\n%s", err, data)
	}
	var d dlDSN
	d.top = e.Header
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("notice is not multipart:\n%s", data)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("notice part: %v\n%s", err, data)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("notice part: %v", err)
		}
		mt, _, _ := p.Header.ContentType()
		d.types = append(d.types, mt)
		switch mt {
		case "text/plain":
			d.text = string(body)
		case "message/delivery-status":
			r := bufio.NewReader(bytes.NewReader(body))
			for {
				if _, err := r.Peek(1); err == io.EOF {
					break
				}
				h, err := textproto.ReadHeader(r)
				if err != nil {
					t.Fatalf("delivery-status block: %v\n%s", err, body)
				}
				if d.perMessage.Len() == 0 && !h.Has("Final-Recipient") {
					d.perMessage = h
					continue
				}
				d.recipients = append(d.recipients, h)
			}
		case "text/rfc822-headers":
			d.headers = string(body)
		}
	}
	return d
}

// dlNotices returns what the destination received from the null sender.
func dlNotices(dest *smtptest.Server) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range dest.Messages() {
		if m.From == "" {
			out = append(out, m)
		}
	}
	return out
}
