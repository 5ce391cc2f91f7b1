package sink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestSinkKeepsAFilePerRecipient(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	s, err := Listen("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	msg := "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("bounces@example.org", []string{"x@example.com", "y@example.net"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if n := s.Count(); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 2 {
		t.Fatalf("files %v, want one per recipient", files)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "000001-x@example.com.eml"))
	if want := "Return-Path: <bounces@example.org>\r\nDelivered-To: <x@example.com>\r\n" + msg; string(b) != want {
		t.Errorf("file = %q, want %q", b, want)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v after Close", err)
	}
}
