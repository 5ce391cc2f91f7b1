package message

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// Signer signs messages with DKIM (RFC 6376): rsa-sha256 or
// ed25519-sha256 (RFC 8463), relaxed/relaxed canonicalization.
type Signer struct {
	Domain   string
	Selector string
	Key      crypto.Signer
}

// signedHeaders are signed when present: what a receiver shows or acts on.
var signedHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
	"Reply-To", "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID"}

// LoadSigner reads a PEM private key (PKCS #8, or PKCS #1 for RSA).
func LoadSigner(domain, selector, keyFile string) (*Signer, error) {
	if domain == "" || selector == "" || keyFile == "" {
		return nil, errors.New("dkim: domain, selector and key are all needed")
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s: %w", keyFile, errors.Unwrap(err))
	}
	key, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s: %w", keyFile, err)
	}
	return &Signer{Domain: domain, Selector: selector, Key: key}, nil
}

func parsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return checkKey(k)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS #8 or PKCS #1 private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return checkKey(s)
}

func checkKey(k crypto.Signer) (crypto.Signer, error) {
	switch pk := k.Public().(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < 1024 {
			return nil, fmt.Errorf("RSA key of %d bits: receivers ignore DKIM keys under 1024 bits; use 2048", pk.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("unsupported key type %T: want RSA or Ed25519", pk)
	}
	return k, nil
}

// sign writes msg to w with a DKIM-Signature header in front.
func (s *Signer) sign(w io.Writer, msg []byte) error {
	present := presentHeaders(msg)
	var keys []string
	for _, k := range signedHeaders {
		if present[strings.ToLower(k)] {
			keys = append(keys, k)
		}
	}
	opts := &dkim.SignOptions{
		Domain: s.Domain, Selector: s.Selector, Signer: s.Key, Hash: crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: keys,
	}
	if err := dkim.Sign(w, bytes.NewReader(msg), opts); err != nil {
		return fmt.Errorf("dkim sign: %w", err)
	}
	return nil
}

// presentHeaders lists the lower-case names of msg's header fields.
func presentHeaders(msg []byte) map[string]bool {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	out := map[string]bool{}
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, _, ok := bytes.Cut(line, []byte(":")); ok {
			out[strings.ToLower(string(bytes.TrimSpace(k)))] = true
		}
	}
	return out
}

// GenerateKey makes a DKIM key pair: "rsa" (2048 bits) or "ed25519". It
// returns the private key as PKCS #8 PEM and the DNS TXT record's value.
func GenerateKey(kind string) (privatePEM []byte, txt string, err error) {
	var key crypto.Signer
	var k string
	switch kind {
	case "rsa", "":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		k = "rsa"
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
		k = "ed25519"
	default:
		return nil, "", fmt.Errorf("key type %q: want rsa or ed25519", kind)
	}
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", err
	}
	var pub []byte
	switch pk := key.Public().(type) {
	case *rsa.PublicKey:
		// RFC 6376 §3.6.1: RSA keys are published as SubjectPublicKeyInfo.
		if pub, err = x509.MarshalPKIXPublicKey(pk); err != nil {
			return nil, "", err
		}
	case ed25519.PublicKey:
		pub = pk // RFC 8463 §4.2: the raw 32-byte key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"v=DKIM1; k=" + k + "; p=" + base64.StdEncoding.EncodeToString(pub), nil
}

// TXTRecord formats a TXT value as a zone-file record, split into strings
// of at most 255 octets as DNS requires.
func TXTRecord(selector, domain, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, `"`+value[:255]+`"`)
		value = value[255:]
	}
	parts = append(parts, `"`+value+`"`)
	return fmt.Sprintf("%s._domainkey.%s. IN TXT ( %s )", selector, strings.TrimSuffix(domain, "."), strings.Join(parts, " "))
}
