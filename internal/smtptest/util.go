package smtptest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func cramDigest(secret string, challenge []byte) string {
	m := hmac.New(md5.New, []byte(secret))
	m.Write(challenge)
	return hex.EncodeToString(m.Sum(nil))
}

func pemEncode(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// CertFiles writes cfg's first certificate and its (ECDSA) key to PEM
// files in dir, for a server started from the command line, and returns
// their paths.
func CertFiles(t testing.TB, dir string, cfg *tls.Config) (certFile, keyFile string) {
	t.Helper()
	c := cfg.Certificates[0]
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pemEncode(c.Certificate[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
