package domaincheck

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/relayctl/relayctl/message"
)

// dkim checks the key published at SELECTOR._domainkey.DOMAIN: that there
// is one record, that it parses (RFC 6376 §3.6.1), and that its key is the
// one relayctl signs with.
func (c *checker) dkim(ctx context.Context) Check {
	ch := Check{Name: "dkim"}
	sel, d := c.o.Selector, c.o.Domain
	if sel == "" {
		ch.Result, ch.Detail = Fail, "no DKIM selector: give --selector and --dkim-key, or a dkim: section in relayctl.yaml; relayctl dkim keygen makes a key and prints its record"
		return ch
	}
	name := sel + "._domainkey." + d
	var want string
	if c.o.DKIMKey != nil {
		v, err := DKIMRecordValue(c.o.DKIMKey)
		if err != nil {
			ch.Result, ch.Detail = Fail, "the configured key: "+err.Error()
			return ch
		}
		want = v
		ch.Fix = message.TXTRecord(sel, d, want)
	}
	fail := func(format string, args ...any) Check {
		ch.Result, ch.Detail = Fail, fmt.Sprintf(format, args...)
		if want == "" {
			ch.Detail += "; publish the record relayctl dkim keygen printed for the key"
		}
		return ch
	}
	txts, err := c.dns.LookupTXT(ctx, name)
	switch {
	case err != nil && !isNotFound(err):
		ch.Fix = "" // DNS did not answer: nothing is known to be wrong
		ch.Result, ch.Detail = Fail, dnsError("TXT", name, err)
		return ch
	case len(txts) == 0:
		return fail("no DKIM record at %s: receivers cannot verify the signatures", name)
	case len(txts) > 1:
		return fail("%d TXT records at %s: receivers may pick either; keep one", len(txts), name)
	}
	pub, desc, err := parseDKIM(txts[0])
	if err != nil {
		return fail("the record at %s is broken: %v", name, err)
	}
	if c.o.DKIMKey != nil {
		if k, ok := c.o.DKIMKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
			return fail("the key published at %s (%s) is not the configured key: receivers would reject every signature", name, desc)
		}
		desc += ", the configured key"
	}
	if flags, _ := tagValueOf(txts[0], "t"); strings.Contains(flags, "y") {
		ch.Result, ch.Detail = Warn, fmt.Sprintf("%s: %s, but t=y (testing): receivers may treat signed mail as unsigned; remove t=y", name, desc)
		return ch
	}
	ch.Fix = ""
	ch.Result, ch.Detail = Pass, fmt.Sprintf("%s: %s", name, desc)
	if c.o.DKIMKey == nil {
		ch.Detail += " (not compared: give --dkim-key)"
	}
	return ch
}

// parseDKIM parses a DKIM key record and returns its public key and a
// short description of it.
func parseDKIM(record string) (crypto.PublicKey, string, error) {
	tags, err := parseTags(record)
	if err != nil {
		return nil, "", err
	}
	for i, t := range tags {
		switch {
		case t.name != "v":
		case i > 0:
			return nil, "", errors.New("v= must be the first tag")
		case t.value != "DKIM1":
			return nil, "", fmt.Errorf("v=%s, want v=DKIM1", t.value)
		}
	}
	k, _ := tagValue(tags, "k")
	if k == "" {
		k = "rsa"
	}
	p, ok := tagValue(tags, "p")
	switch {
	case !ok:
		return nil, "", errors.New("no p= tag (the public key)")
	case p == "":
		return nil, "", errors.New("p= is empty: the key is revoked")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(p), ""))
	if err != nil {
		return nil, "", fmt.Errorf("p= is not valid base64: %w", err)
	}
	switch k {
	case "rsa":
		pub, err := parseRSA(der)
		if err != nil {
			return nil, "", err
		}
		return pub, fmt.Sprintf("k=rsa, %d bits", pub.N.BitLen()), nil
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("an Ed25519 key is %d bytes, p= holds %d", ed25519.PublicKeySize, len(der))
		}
		return ed25519.PublicKey(der), "k=ed25519", nil
	}
	return nil, "", fmt.Errorf("k=%s: receivers know only rsa and ed25519", k)
}

// parseRSA reads an RSA key as RFC 6376 publishes it, a
// SubjectPublicKeyInfo, or as the bare RSAPublicKey some tools write.
func parseRSA(der []byte) (*rsa.PublicKey, error) {
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		pub, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("k=rsa but p= holds a %T", k)
		}
		return pub, nil
	}
	pub, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, errors.New("p= is not an RSA public key")
	}
	return pub, nil
}

func tagValueOf(record, name string) (string, bool) {
	tags, err := parseTags(record)
	if err != nil {
		return "", false
	}
	return tagValue(tags, name)
}

// DKIMRecordValue is the TXT value publishing pub, as relayctl dkim keygen
// prints it: "v=DKIM1; k=rsa; p=…" with RSA keys as SubjectPublicKeyInfo
// (RFC 6376 §3.6.1) and Ed25519 keys raw (RFC 8463 §4.2).
func DKIMRecordValue(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", fmt.Errorf("dkim key: %w", err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	}
	return "", fmt.Errorf("dkim key: unsupported key type %T", pub)
}
