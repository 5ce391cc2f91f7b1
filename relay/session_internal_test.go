package relay

import (
	"net/netip"
	"testing"
)

// The rules for who may AUTH and relay, from addresses a loopback test
// cannot connect from.

func ruleSession(cfg Config, kind Kind, remote string, tls bool, user string) *session {
	return &session{s: &Server{cfg: cfg}, kind: kind, remote: netip.MustParseAddr(remote), tls: tls,
		stats: &sessionStats{user: user}}
}

func TestSessionAuthAllowed(t *testing.T) {
	for _, tc := range []struct {
		kind   Kind
		remote string
		tls    bool
		want   bool
	}{
		// Off loopback: only over TLS, whatever the port.
		{Relay, "192.0.2.1", false, false},
		{Relay, "192.0.2.1", true, true},
		{Submission, "192.0.2.1", false, false},
		{Submission, "192.0.2.1", true, true},
		{SMTPS, "192.0.2.1", false, false},
		{SMTPS, "192.0.2.1", true, true},
		{Relay, "2001:db8::1", false, false},
		// On loopback: in the clear only on the relay port.
		{Relay, "127.0.0.1", false, true},
		{Relay, "127.0.0.9", false, true},
		{Relay, "::1", false, true},
		{Relay, "127.0.0.1", true, true},
		{Submission, "127.0.0.1", false, false},
		{Submission, "127.0.0.1", true, true},
		{SMTPS, "::1", true, true},
	} {
		ss := ruleSession(Config{}, tc.kind, tc.remote, tc.tls, "")
		if got := ss.authAllowed(); got != tc.want {
			t.Errorf("%s from %s, TLS %v: authAllowed %v, want %v", tc.kind, tc.remote, tc.tls, got, tc.want)
		}
		// EHLO advertises AUTH exactly when it is allowed.
		if mechs := ss.AuthMechanisms(); (len(mechs) > 0) != tc.want {
			t.Errorf("%s from %s, TLS %v: AuthMechanisms %v", tc.kind, tc.remote, tc.tls, mechs)
		}
		if !tc.want {
			if _, err := ss.Auth("PLAIN"); err == nil {
				t.Errorf("%s from %s, TLS %v: Auth allowed", tc.kind, tc.remote, tc.tls)
			}
		}
	}
}

func TestSessionMayRelay(t *testing.T) {
	cfg := Config{
		AllowIPs:    []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::25")},
		AllowRanges: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}
	for _, tc := range []struct {
		kind   Kind
		remote string
		user   string
		want   bool
	}{
		{Relay, "192.0.2.1", "", true},
		{Relay, "2001:db8::25", "", true},
		{Relay, "198.51.100.77", "", true},
		{Relay, "192.0.2.2", "", false},
		{Relay, "203.0.113.5", "", false},
		{Relay, "127.0.0.1", "", false}, // loopback is not allowed by itself
		{Relay, "203.0.113.5", "alice", true},
		// AUTH is required on submission ports, allowed address or not.
		{Submission, "192.0.2.1", "", false},
		{Submission, "198.51.100.77", "", false},
		{Submission, "203.0.113.5", "alice", true},
		{SMTPS, "192.0.2.1", "", false},
		{SMTPS, "203.0.113.5", "alice", true},
	} {
		for _, tls := range []bool{false, true} {
			ss := ruleSession(cfg, tc.kind, tc.remote, tls, tc.user)
			if got := ss.mayRelay(); got != tc.want {
				t.Errorf("%s from %s, TLS %v, user %q: mayRelay %v, want %v", tc.kind, tc.remote, tls, tc.user, got, tc.want)
			}
		}
	}
}
