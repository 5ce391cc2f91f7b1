package smtptest

import (
	"strings"
	"sync"

	"github.com/emersion/go-smtp"
)

// ErrRelayDenied is a closed relay's answer to an unauthenticated
// recipient outside its own domains, as Postfix words it.
var ErrRelayDenied = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relay access denied"}

// RelayLog records the envelope commands a server saw, to tell what an
// open-relay test did: in particular that it never sent DATA.
type RelayLog struct {
	mu      sync.Mutex
	mails   []string
	rcpts   []string
	refused []string
	data    int
}

// Mails returns the MAIL FROM addresses seen.
func (l *RelayLog) Mails() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.mails...)
}

// Rcpts returns every RCPT TO address seen, accepted or refused.
func (l *RelayLog) Rcpts() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.rcpts...)
}

// Refused returns the RCPT TO addresses refused.
func (l *RelayLog) Refused() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.refused...)
}

// Data returns how many messages came after a DATA command, accepted or
// not. (go-smtp hands a session the message once DATA has been answered
// 354; it is counted as soon as its end arrives.)
func (l *RelayLog) Data() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.data
}

// OpenRelay makes the server accept any recipient from anyone, the
// misconfiguration relayctl check --open-relay looks for. It replaces the
// hooks.
func (s *Server) OpenRelay() *RelayLog {
	return s.relay(nil)
}

// ClosedRelay makes the server answer as a mail exchanger for the domains
// local: a recipient elsewhere is refused with 554 5.7.1 Relay access
// denied. The test server's clients are unauthenticated here (Options
// without Users), so that is every recipient outside local. It replaces
// the hooks.
func (s *Server) ClosedRelay(local ...string) *RelayLog {
	return s.relay(func(to string) bool {
		at := strings.LastIndex(to, "@")
		for _, d := range local {
			if at >= 0 && strings.EqualFold(to[at+1:], d) {
				return true
			}
		}
		return false
	})
}

// relay sets hooks that record every envelope command; accept, when not
// nil, says which recipients are taken.
func (s *Server) relay(accept func(to string) bool) *RelayLog {
	l := &RelayLog{}
	s.SetHooks(Hooks{
		Mail: func(from string) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.mails = append(l.mails, from)
			return nil
		},
		Rcpt: func(to string) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.rcpts = append(l.rcpts, to)
			if accept != nil && !accept(to) {
				l.refused = append(l.refused, to)
				return ErrRelayDenied
			}
			return nil
		},
		Data: func(Message) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.data++
			return nil
		},
	})
	return l
}
