// Package sink is a capture SMTP server: it accepts every message, keeps
// nothing but a copy (an .eml file per recipient, or just a count), and
// relays nothing. It is what `relayctl sink` runs for trying templates and
// runs without sending real mail, and what the CLI tests deliver to.
package sink

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Server is a running capture server.
type Server struct {
	// Addr is the address it listens on.
	Addr string

	dir   string
	srv   *smtp.Server
	ln    net.Listener
	count atomic.Int64
	seq   atomic.Int64
	// Received, if set, is told of each message kept.
	Received func(from string, to []string, size int, files []string)
	mu       sync.Mutex
}

// Listen starts listening on addr ("127.0.0.1:0" picks a port). Messages
// are written into dir, which is created; with dir "" they are only
// counted.
func Listen(addr, dir string) (*Server, error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sink: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Server{Addr: ln.Addr().String(), dir: dir, ln: ln}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "sink.relayctl.invalid"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 5*time.Minute, 5*time.Minute
	s.srv.MaxMessageBytes = 50 << 20
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	return s, nil
}

// Serve accepts connections until Close.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if err == smtp.ErrServerClosed {
		return nil
	}
	return err
}

// Close stops the server.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.ln.Close()
	return err
}

// Count is how many messages were received.
func (s *Server) Count() int64 { return s.count.Load() }

type session struct {
	s    *Server
	from string
	to   []string
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9@._+-]`)

// Data keeps one file per recipient, with the envelope in front as a
// delivering server would write it.
func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.count.Add(1)
	var files []string
	if ss.s.dir != "" {
		for _, rcpt := range ss.to {
			n := ss.s.seq.Add(1)
			name := filepath.Join(ss.s.dir, fmt.Sprintf("%06d-%s.eml", n, unsafe.ReplaceAllString(rcpt, "_")))
			var b bytes.Buffer
			fmt.Fprintf(&b, "Return-Path: <%s>\r\nDelivered-To: <%s>\r\n", ss.from, rcpt)
			b.Write(data)
			if err := writeFile(name, b.Bytes()); err != nil {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "sink cannot write: " + err.Error()}
			}
			files = append(files, name)
		}
	}
	if f := ss.s.Received; f != nil {
		ss.s.mu.Lock()
		f(ss.from, ss.to, len(data), files)
		ss.s.mu.Unlock()
	}
	return nil
}

// writeFile writes under a temporary name and renames, so a reader never
// sees half a message.
func writeFile(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
