// Command rawsend is the ceiling `relayctl run` is measured against: a
// bare go-smtp client loop that sends -n single-recipient messages over
// -conns connections, each carrying at most -per-conn, with no store, no
// template and no state.
//
//	go run ./bench/rawsend -addr 127.0.0.1:2525 -n 20000 -conns 8 -per-conn 1000
//
// Each message is the shape of the one bench/run.sh plans (the same
// headers, a first name in the subject and body), rendered just before it
// goes, to recipients at the same domains. It prints one line: messages,
// connections, seconds and messages per second.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2525", "SMTP server to send to")
	n := flag.Int("n", 20000, "messages")
	conns := flag.Int("conns", 8, "connections at once")
	perConn := flag.Int("per-conn", 1000, "messages per connection, at most")
	domains := flag.Int("domains", 4, "recipient domains (dN.example), as in bench/run.sh's list")
	flag.Parse()

	var next, opened atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, *conns)
	start := time.Now()
	for range *conns {
		wg.Go(func() {
			if err := sender(*addr, int64(*n), *perConn, *domains, &next, &opened); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		fmt.Fprintln(os.Stderr, "rawsend:", err)
		os.Exit(1)
	}
	fmt.Printf("sent %d messages over %d connections in %.2f s: %.0f msgs/s\n",
		*n, opened.Load(), elapsed.Seconds(), float64(*n)/elapsed.Seconds())
}

// sender is one connection's loop: it takes the next message number until
// all are sent, reconnecting after perConn messages.
func sender(addr string, n int64, perConn, domains int, next, opened *atomic.Int64) error {
	var c *smtp.Client
	sent := 0
	var buf bytes.Buffer
	defer func() {
		if c != nil {
			c.Quit()
		}
	}()
	for {
		i := next.Add(1) - 1
		if i >= n {
			return nil
		}
		if c != nil && sent >= perConn {
			c.Quit()
			c = nil
		}
		if c == nil {
			var err error
			if c, err = smtp.Dial(addr); err != nil {
				return err
			}
			if err := c.Hello("rawsend.example.org"); err != nil {
				return err
			}
			opened.Add(1)
			sent = 0
		}
		to := fmt.Sprintf("user%d@d%d.example", i, i%int64(domains))
		buf.Reset()
		fmt.Fprintf(&buf, "Date: %s\r\nFrom: \"Example Club\" <news@example.org>\r\nSubject: Hello Name%d\r\nTo: <%s>\r\n"+
			"Message-Id: <%d.%d@example.org>\r\nMime-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"+
			"Content-Transfer-Encoding: 7bit\r\n\r\nDear Name%d,\r\n\r\nThe spring meeting is on 12 April at the club house.\r\nSee you there.\r\n",
			time.Now().Format(time.RFC1123Z), i, to, time.Now().UnixNano(), i, i)
		if err := c.Mail("news@example.org", nil); err != nil {
			return err
		}
		if err := c.Rcpt(to, nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		sent++
	}
}
