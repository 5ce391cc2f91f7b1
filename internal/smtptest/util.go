package smtptest

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"encoding/pem"
)

func cramDigest(secret string, challenge []byte) string {
	m := hmac.New(md5.New, []byte(secret))
	m.Write(challenge)
	return hex.EncodeToString(m.Sum(nil))
}

func pemEncode(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
