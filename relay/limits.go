package relay

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// window counts events over a sliding period, in buckets: what happened
// in the last minute (or hour), to the second (or minute).
type window struct {
	width  time.Duration // of a bucket
	counts []int
	last   int64 // index of the newest bucket, in widths since the epoch
}

func newWindow(period time.Duration, buckets int) *window {
	return &window{width: period / time.Duration(buckets), counts: make([]int, buckets)}
}

// add counts one event at now if the window holds fewer than limit.
func (w *window) add(now time.Time, limit int) bool {
	idx := now.UnixNano() / int64(w.width)
	n := int64(len(w.counts))
	// Clear the buckets that slid out since the last event.
	for i := w.last + 1; i <= idx && i <= w.last+n; i++ {
		w.counts[i%n] = 0
	}
	if idx > w.last {
		w.last = idx
	}
	total := 0
	for _, c := range w.counts {
		total += c
	}
	if total >= limit {
		return false
	}
	w.counts[idx%n]++
	return true
}

// rates holds each client's messages per minute and recipients per hour.
type rates struct {
	perMinute, perHour int

	mu      sync.Mutex
	clients map[string]*clientRate
}

type clientRate struct {
	messages, recipients *window
	seen                 time.Time
}

func newRates(perMinute, perHour int) *rates {
	return &rates{perMinute: perMinute, perHour: perHour, clients: map[string]*clientRate{}}
}

func (r *rates) client(name string, now time.Time) *clientRate {
	c := r.clients[name]
	if c == nil {
		// An idle client's counts are of no use after an hour: drop them
		// so the map does not grow with every address ever seen.
		if len(r.clients) > 1000 {
			for k, v := range r.clients {
				if now.Sub(v.seen) > time.Hour {
					delete(r.clients, k)
				}
			}
		}
		c = &clientRate{messages: newWindow(time.Minute, 60), recipients: newWindow(time.Hour, 60)}
		r.clients[name] = c
	}
	c.seen = now
	return c
}

// allowMessage counts a new message from client, or refuses it.
func (r *rates) allowMessage(client string, now time.Time) bool {
	if r.perMinute <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.client(client, now).messages.add(now, r.perMinute)
}

// allowRecipient counts a new recipient from client, or refuses it.
func (r *rates) allowRecipient(client string, now time.Time) bool {
	if r.perHour <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.client(client, now).recipients.add(now, r.perHour)
}

// connCounter limits each address's connections at once.
type connCounter struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

func (cc *connCounter) listener(l net.Listener, log *slog.Logger, kind Kind) net.Listener {
	return &countingListener{Listener: l, cc: cc, log: log, kind: kind}
}

type countingListener struct {
	net.Listener
	cc   *connCounter
	log  *slog.Logger
	kind Kind
}

// Accept returns the next connection within its address's limit; one over
// it is told so (421) and closed here.
func (l *countingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := netip.Addr{}
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			addr = ap.Addr().Unmap()
		}
		l.cc.mu.Lock()
		over := l.cc.max > 0 && l.cc.n[addr] >= l.cc.max
		if !over {
			l.cc.n[addr]++
		}
		l.cc.mu.Unlock()
		if over {
			l.log.Warn("session", "client", addr.String(), "port", l.kind.String(), "rejected", "too many connections")
			// On SMTPS the reply would come before TLS, where the client
			// cannot read it: the connection is just closed.
			if l.kind != SMTPS {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				c.Write([]byte("421 4.7.0 Too many connections from your address, try again later\r\n"))
			}
			c.Close()
			continue
		}
		cc := &countedConn{Conn: c, cc: l.cc, addr: addr, log: l.log}
		cc.stats.started, cc.stats.kind = time.Now(), l.kind
		return cc, nil
	}
}

// countedConn gives its address's slot back when it closes, and logs the
// session it carried.
type countedConn struct {
	net.Conn
	cc    *connCounter
	addr  netip.Addr
	log   *slog.Logger
	once  sync.Once
	stats sessionStats
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.cc.mu.Lock()
		if c.cc.n[c.addr]--; c.cc.n[c.addr] <= 0 {
			delete(c.cc.n, c.addr)
		}
		c.cc.mu.Unlock()
		st := &c.stats
		st.mu.Lock()
		defer st.mu.Unlock()
		args := []any{"client", c.addr.String(), "port", st.kind.String(), "helo", st.helo, "tls", st.tls,
			"user", st.user, "messages", st.messages, "recipients", st.recipients, "rejected", st.rejected,
			"duration", time.Since(st.started).Round(time.Millisecond).String()}
		if st.lastError != "" {
			args = append(args, "last_error", st.lastError)
		}
		c.log.Info("session", args...)
	})
	return err
}

// counted finds the countedConn under c (beneath TLS, if any).
func counted(c net.Conn) *countedConn {
	for {
		switch t := c.(type) {
		case *countedConn:
			return t
		case *tls.Conn:
			c = t.NetConn()
		default:
			return nil
		}
	}
}
