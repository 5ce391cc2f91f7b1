// Command smtpload is the load bench/serve.sh puts on an SMTP server to
// measure how many messages a second it accepts: -clients connections at
// once send -messages messages in all, each connection EHLO, then MAIL,
// RCPT and DATA in a loop, closing (QUIT) and reconnecting after -per-conn
// messages.
//
//	go run ./bench/smtpload -addr 127.0.0.1:2525 -clients 16 -messages 20000
//
// Each message is a transactional one of -size bytes (an order
// confirmation: Date, From, To, Subject, Message-ID and MIME fields, then
// plain text) to -rcpts recipients at example.net and example.org. The
// clients take the next message from one counter, so all of them stay busy
// to the end.
//
// A message counts as accepted only if the server answers 2xx to its final
// dot. Latency is that reply's: from closing the data (which sends the
// buffered end of the message and the dot) to the reply, which for a
// durable server is the time it takes to commit the message to disk. It
// prints one line: messages, clients, seconds, accepted messages a second
// and the latency's 50th and 99th percentiles (-json: one JSON object). Any
// refusal (a non-2xx reply to any command) or broken connection is counted
// and listed on stderr, and the exit status is then 1.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

type options struct {
	addr     string
	clients  int
	messages int64
	perConn  int
	size     int
	rcpts    int
	timeout  time.Duration
}

// result is the line smtpload prints.
type result struct {
	Messages int64   `json:"messages"`
	Accepted int64   `json:"accepted"`
	Failed   int64   `json:"failed"`
	Clients  int     `json:"clients"`
	Conns    int64   `json:"connections"`
	Seconds  float64 `json:"elapsed_s"`
	Rate     float64 `json:"msgs_per_s"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:2525", "SMTP server to load")
	flag.IntVar(&o.clients, "clients", 16, "connections at once")
	flag.Int64Var(&o.messages, "messages", 20000, "messages in all, shared among the clients")
	flag.IntVar(&o.perConn, "per-conn", 100, "messages a connection carries before QUIT and a new one")
	flag.IntVar(&o.size, "size", 2048, "bytes of each message, header fields included")
	flag.IntVar(&o.rcpts, "rcpts", 1, "recipients of each message")
	flag.DurationVar(&o.timeout, "timeout", time.Minute, "longest wait for a connection or a reply")
	asJSON := flag.Bool("json", false, "print the result as a JSON object")
	flag.Parse()
	if o.clients < 1 || o.messages < 1 || o.perConn < 1 || o.rcpts < 1 || o.size < 1024 {
		fmt.Fprintln(os.Stderr, "smtpload: -clients, -messages, -per-conn and -rcpts must be at least 1, -size at least 1024")
		os.Exit(2)
	}

	r, failures := load(o)
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(r)
	} else {
		fmt.Printf("messages %d clients %d elapsed %.2f s accepted %.0f msgs/s final-dot reply p50 %.2f ms p99 %.2f ms\n",
			r.Accepted, r.Clients, r.Seconds, r.Rate, r.P50, r.P99)
	}
	if r.Accepted != o.messages {
		fmt.Fprintf(os.Stderr, "smtpload: FAILED: %d of %d messages accepted, %d refused or broken:\n", r.Accepted, o.messages, r.Failed)
		reasons := make([]string, 0, len(failures))
		for k := range failures {
			reasons = append(reasons, k)
		}
		sort.Slice(reasons, func(i, j int) bool { return failures[reasons[i]] > failures[reasons[j]] })
		for _, k := range reasons {
			fmt.Fprintf(os.Stderr, "  %6d  %s\n", failures[k], k)
		}
		os.Exit(1)
	}
}

// tally is what the clients count together.
type tally struct {
	next, accepted, conns atomic.Int64
	mu                    sync.Mutex
	failures              map[string]int64 // by reply or error
	latencies             []time.Duration
}

func (t *tally) fail(what string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		t.failures[fmt.Sprintf("%s: %d %d.%d.%d %s", what, se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)]++
		return
	}
	t.failures[what+": "+err.Error()]++
}

func load(o options) (result, map[string]int64) {
	t := &tally{failures: map[string]int64{}}
	var wg sync.WaitGroup
	start := time.Now()
	for range o.clients {
		wg.Go(func() { client(o, t) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	slices.Sort(t.latencies)
	r := result{Messages: o.messages, Accepted: t.accepted.Load(), Clients: o.clients, Conns: t.conns.Load(),
		Seconds: elapsed.Seconds(), P50: ms(percentile(t.latencies, 50)), P99: ms(percentile(t.latencies, 99))}
	r.Failed = o.messages - r.Accepted
	r.Rate = float64(r.Accepted) / r.Seconds
	return r, t.failures
}

// client is one connection's loop: it takes the next message until all
// are taken, reconnecting after perConn messages or a broken connection.
// It gives up after three connections in a row fail before a message.
func client(o options, t *tally) {
	var c *smtp.Client
	defer func() {
		if c != nil {
			c.Quit()
		}
	}()
	var lat []time.Duration
	defer func() {
		t.mu.Lock()
		t.latencies = append(t.latencies, lat...)
		t.mu.Unlock()
	}()
	var buf bytes.Buffer
	sent, broken := 0, 0
	for {
		i := t.next.Add(1) - 1
		if i >= o.messages {
			return
		}
		if c != nil && sent >= o.perConn {
			c.Quit()
			c = nil
		}
		if c == nil {
			var err error
			if c, err = dial(o); err != nil {
				t.fail("connect", err)
				if broken++; broken >= 3 {
					t.mu.Lock()
					t.failures["client gave up after three failed connections"]++
					t.mu.Unlock()
					return
				}
				continue
			}
			t.conns.Add(1)
			sent = 0
		}
		rcpts := recipients(i, o.rcpts)
		compose(&buf, i, rcpts, o.size)
		d, err := transaction(c, rcpts, buf.Bytes())
		sent++
		var se *smtp.SMTPError
		switch {
		case err == nil:
			t.accepted.Add(1)
			lat = append(lat, d)
			broken = 0
		case errors.As(err, &se):
			// Refused: the connection is fine; start over with RSET.
			t.fail(stepName(err), err)
			if c.Reset() != nil {
				c.Close()
				c = nil
			}
		default:
			t.fail(stepName(err), err)
			c.Close()
			c = nil
		}
	}
}

// step names the command an error came from.
type step struct {
	what string
	err  error
}

func (s step) Error() string { return s.err.Error() }
func (s step) Unwrap() error { return s.err }

func stepName(err error) string {
	var s step
	if errors.As(err, &s) {
		return s.what
	}
	return "connection"
}

func dial(o options) (*smtp.Client, error) {
	conn, err := net.DialTimeout("tcp", o.addr, o.timeout)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout, c.SubmissionTimeout = o.timeout, o.timeout
	// Hello reads the greeting and sends EHLO.
	if err := c.Hello("smtpload.example.com"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// transaction sends one message and returns how long the reply to its
// final dot took. A 2xx other than 250 is an acceptance too.
func transaction(c *smtp.Client, rcpts []string, msg []byte) (time.Duration, error) {
	if err := c.Mail("orders@shop.example.com", &smtp.MailOptions{Size: int64(len(msg))}); err != nil {
		return 0, step{"MAIL", err}
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return 0, step{"RCPT", err}
		}
	}
	w, err := c.Data()
	if err != nil {
		return 0, step{"DATA", err}
	}
	if _, err := w.Write(msg); err != nil {
		return 0, step{"message", err}
	}
	start := time.Now()
	_, err = w.CloseWithResponse()
	d := time.Since(start)
	var se *smtp.SMTPError
	if err != nil && !(errors.As(err, &se) && se.Code/100 == 2) {
		return 0, step{"final dot", err}
	}
	return d, nil
}

var domains = [...]string{"example.net", "example.org"}

func recipients(i int64, n int) []string {
	out := make([]string, n)
	for j := range out {
		out[j] = fmt.Sprintf("customer%d.%d@%s", i, j, domains[(i+int64(j))%2])
	}
	return out
}

// compose writes message i, padded with order lines to size bytes.
func compose(buf *bytes.Buffer, i int64, rcpts []string, size int) {
	buf.Reset()
	now := time.Now()
	fmt.Fprintf(buf, "Date: %s\r\n", now.Format(time.RFC1123Z))
	buf.WriteString("From: \"Example Shop\" <orders@shop.example.com>\r\n")
	fmt.Fprintf(buf, "To: <%s>\r\n", strings.Join(rcpts, ">, <"))
	fmt.Fprintf(buf, "Subject: Your order #%d has shipped\r\n", 100000+i)
	fmt.Fprintf(buf, "Message-ID: <%d.%d@shop.example.com>\r\n", now.UnixNano(), i)
	buf.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	fmt.Fprintf(buf, "Hello,\r\n\r\nGood news: your order #%d is on its way. It should arrive within\r\n"+
		"three working days. Here is what is in the parcel:\r\n\r\n", 100000+i)
	tail := "\r\nTrack your parcel at https://shop.example.com/track/" + fmt.Sprint(100000+i) + "\r\n\r\n" +
		"Thank you for shopping with us.\r\nExample Shop customer service\r\n"
	for line := 1; buf.Len()+len(tail) < size; line++ {
		l := fmt.Sprintf("  %3d x Item %05d, colour blue, size M ........ EUR %4d.%02d\r\n", 1+line%3, (int(i)*7+line)%99999, 5+line%90, line%100)
		if room := size - len(tail) - buf.Len(); len(l) > room {
			// The last line fills exactly, so every message is size bytes.
			l = strings.Repeat(".", max(room-2, 0)) + "\r\n"
			if room < 2 {
				break
			}
		}
		buf.WriteString(l)
	}
	buf.WriteString(tail)
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[(len(sorted)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
