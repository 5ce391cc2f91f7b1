package message

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// TestWriteHeaderMatchesGoMessage: writeHeader, the short-field fast path
// Compose uses for text-only messages, writes byte for byte what
// go-message's writer does, for values around the folding limit, with
// and without spaces to fold at, empty, encoded, and names that go-message
// canonicalises.
func TestWriteHeaderMatchesGoMessage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"Subject", "From", "To", "Message-ID", "MIME-Version", "Feedback-ID", "X-Campaign", "List-Unsubscribe", "content-type", "x-a"}
	value := func() string {
		var b strings.Builder
		n := rng.IntN(160)
		for b.Len() < n {
			switch rng.IntN(8) {
			case 0:
				b.WriteByte(' ')
			case 1:
				b.WriteString("=?utf-8?q?J=C3=BCrgen?=")
			default:
				b.WriteString(strings.Repeat("a", 1+rng.IntN(12)))
			}
		}
		return b.String()
	}
	for i := range 2000 {
		var fields []field
		for range 1 + rng.IntN(8) {
			fields = append(fields, field{keys[rng.IntN(len(keys))], value()})
		}
		var got bytes.Buffer
		if err := writeHeader(&got, fields); err != nil {
			t.Fatal(err)
		}
		var h gomessage.Header
		for j := len(fields) - 1; j >= 0; j-- {
			h.Add(fields[j].k, fields[j].v)
		}
		var want bytes.Buffer
		if err := textproto.WriteHeader(&want, h.Header); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Fatalf("case %d: writeHeader wrote\n%q\ngo-message writes\n%q", i, got.String(), want.String())
		}
	}
}
