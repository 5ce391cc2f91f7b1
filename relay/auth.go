package relay

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/emersion/go-sasl"
	"golang.org/x/crypto/bcrypt"

	"github.com/relayctl/relayctl/send"
	"github.com/relayctl/relayctl/store"
)

// HashPassword returns the bcrypt hash `relayctl user add` stores.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// users checks credentials against the store.
type users struct {
	st        *store.Store
	dummyOnce sync.Once
	dummy     []byte // a hash to spend time on for unknown users
}

func newUsers(st *store.Store) *users { return &users{st: st} }

var errBadCredentials = errors.New("bad username or password")

// verify checks a password. An unknown user costs as much time as a wrong
// password, so the answer's delay does not tell which names exist.
func (u *users) verify(ctx context.Context, name, password string) error {
	rec, err := u.st.LookupUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		u.dummyOnce.Do(func() { u.dummy, _ = bcrypt.GenerateFromPassword([]byte("relayctl"), bcrypt.DefaultCost) })
		bcrypt.CompareHashAndPassword(u.dummy, []byte(password))
		return errBadCredentials
	}
	if err != nil {
		return err
	}
	if bcrypt.CompareHashAndPassword([]byte(rec.Hash), []byte(password)) != nil {
		return errBadCredentials
	}
	return nil
}

// cramSecret returns the secret CRAM-MD5 needs; users added without
// --cram-md5 have none and cannot use it.
func (u *users) cramSecret(ctx context.Context, name string) (string, error) {
	rec, err := u.st.LookupUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return "", errBadCredentials
	}
	if err != nil {
		return "", err
	}
	if rec.CRAM == "" {
		return "", fmt.Errorf("user %q may not use CRAM-MD5 (added without --cram-md5)", name)
	}
	return rec.CRAM, nil
}

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login), which
// go-sasl offers only as a client: "Username:", then "Password:".
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) > 0 { // an initial response is the username
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(response))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}

// cramServer is CRAM-MD5 (RFC 2195): the client proves it knows the
// password without sending it, which means the server must keep the
// password itself, not a hash of it.
type cramServer struct {
	challenge string
	secret    func(user string) (string, error)
	done      func(user string, err error) error
	sent      bool
}

func newCRAMServer(host string, secret func(string) (string, error), done func(string, error) error) *cramServer {
	nonce := make([]byte, 12)
	rand.Read(nonce)
	return &cramServer{challenge: fmt.Sprintf("<%s@%s>", hex.EncodeToString(nonce), host), secret: secret, done: done}
}

func (c *cramServer) Next(response []byte) ([]byte, bool, error) {
	if !c.sent {
		c.sent = true
		return []byte(c.challenge), false, nil
	}
	user, digest, ok := strings.Cut(string(response), " ")
	if !ok {
		return nil, true, c.done(user, errors.New("malformed CRAM-MD5 response"))
	}
	secret, err := c.secret(user)
	if err != nil {
		return nil, true, c.done(user, err)
	}
	want := send.CRAMDigest(secret, []byte(c.challenge))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(digest))) {
		return nil, true, c.done(user, errBadCredentials)
	}
	return nil, true, c.done(user, nil)
}
