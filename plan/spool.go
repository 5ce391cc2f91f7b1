package plan

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// spool holds the kept recipients between the pass that counts them per
// group and the pass that places them in jobs, on disk, so that planning a
// long list needs no more memory than a short one.
type spool struct {
	f *os.File
	w *bufio.Writer
	n int64
}

type spooled struct {
	row                          int64
	email, domain, group, fields string
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "relayctl-plan-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spool{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (s *spool) add(r spooled) error {
	var tmp [binary.MaxVarintLen64]byte
	s.w.Write(tmp[:binary.PutVarint(tmp[:], r.row)])
	for _, v := range []string{r.email, r.domain, r.group, r.fields} {
		s.w.Write(tmp[:binary.PutUvarint(tmp[:], uint64(len(v)))])
		if _, err := s.w.WriteString(v); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	s.n++
	return nil
}

// each reads the spooled recipients back in the order they were added.
func (s *spool) each(fn func(spooled) error) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	r := bufio.NewReaderSize(s.f, 256<<10)
	var buf []byte
	str := func() (string, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return "", err
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		_, err = io.ReadFull(r, buf)
		return string(buf), err
	}
	for i := int64(0); i < s.n; i++ {
		var rec spooled
		var err error
		if rec.row, err = binary.ReadVarint(r); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		for _, p := range []*string{&rec.email, &rec.domain, &rec.group, &rec.fields} {
			if *p, err = str(); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

func (s *spool) remove() {
	s.f.Close()
	os.Remove(s.f.Name())
}
