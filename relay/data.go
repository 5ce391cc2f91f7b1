package relay

import (
	"bytes"
	"errors"
	"io"

	"github.com/emersion/go-smtp"
)

// errBareLineEnd refuses a message with a bare LF or CR: such line ends
// are how SMTP smuggling (CVE-2023-51764 and kin) hides a second message
// after a fake end of data that one server sees and the next does not.
var errBareLineEnd = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
	Message: "Message refused: bare LF or CR line ending (lines must end in CRLF)"}

// readMessage reads a message from DATA (or BDAT) after the trace field
// received, refusing it if it holds a bare LF or CR or exceeds max bytes.
// An *smtp.SMTPError is the reply to give; another error means the
// connection failed.
func readMessage(r io.Reader, received string, max int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(received)
	start := buf.Len()
	if _, err := buf.ReadFrom(r); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return nil, se // too large, from go-smtp's reader
		}
		return nil, err
	}
	b := buf.Bytes()
	if max > 0 && int64(len(b)-start) > max {
		return nil, smtp.ErrDataTooLarge
	}
	if bareLineEnd(b[start:]) {
		return nil, errBareLineEnd
	}
	return b, nil
}

// bareLineEnd reports whether b has an LF not after a CR, or a CR not
// before an LF.
func bareLineEnd(b []byte) bool {
	for i := 0; i < len(b); {
		j := bytes.IndexAny(b[i:], "\r\n")
		if j < 0 {
			return false
		}
		j += i
		if b[j] == '\n' || j+1 >= len(b) || b[j+1] != '\n' {
			return true
		}
		i = j + 2
	}
	return false
}
