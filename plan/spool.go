package plan

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/relayctl/relayctl/internal/extsort"
)

// spool holds the kept recipients between the pass that counts them per
// group and the pass that places them in jobs, on disk, so that planning a
// long list needs no more memory than a short one.
type spool struct {
	f   *os.File
	w   *bufio.Writer
	n   int64
	buf []byte
}

type spooled struct {
	row                          int64
	email, domain, group, fields string
}

var errCorrupt = errors.New("corrupt record")

// encode appends r to b.
func (r spooled) encode(b []byte) []byte {
	b = binary.AppendVarint(b, r.row)
	for _, v := range []string{r.email, r.domain, r.group, r.fields} {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

func decode(b []byte) (spooled, error) {
	var r spooled
	row, n := binary.Varint(b)
	if n <= 0 {
		return r, errCorrupt
	}
	r.row, b = row, b[n:]
	for _, p := range []*string{&r.email, &r.domain, &r.group, &r.fields} {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return r, errCorrupt
		}
		*p, b = string(b[n:n+int(l)]), b[n+int(l):]
	}
	return r, nil
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, "relayctl-plan-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spool{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (s *spool) add(r spooled) error {
	s.buf = r.encode(s.buf[:0])
	var l [binary.MaxVarintLen64]byte
	s.w.Write(l[:binary.PutUvarint(l[:], uint64(len(s.buf)))])
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("spool: %w", err)
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
	for i := int64(0); i < s.n; i++ {
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if uint64(cap(buf)) < l {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		rec, err := decode(buf)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
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

// placed is a recipient with its place in the campaign.
type placed struct {
	spooled
	job  int
	slot float64
}

// inSendingOrder places every spooled recipient with split and yields
// them sorted by job and slot, the order of the recipients table's index,
// so that storing them appends to the index instead of scattering writes
// over it. The sort is external: memory stays bounded by sortMemory.
func (s *spool) inSendingOrder(split *Split, dir string, sortMemory int, fn func(placed) error) error {
	sorter := extsort.New(dir, sortMemory, placedFormat)
	defer sorter.RemoveRuns()
	next := map[string]int64{}
	var key []byte
	err := s.each(func(r spooled) error {
		i := next[r.group]
		next[r.group] = i + 1
		job, slot := split.Place(r.group, i)
		// Slots are in [0,1): their IEEE 754 bits sort as the numbers do.
		key = binary.BigEndian.AppendUint32(key[:0], uint32(job))
		key = binary.BigEndian.AppendUint64(key, math.Float64bits(slot))
		key = r.encode(key)
		return sorter.Add(string(key))
	})
	if err != nil {
		return err
	}
	it, err := sorter.Sorted()
	if err != nil {
		return fmt.Errorf("placing recipients: %w", err)
	}
	defer it.Close()
	for {
		e, ok, err := it.Next()
		if err != nil {
			return fmt.Errorf("placing recipients: %w", err)
		}
		if !ok {
			return nil
		}
		k := []byte(e)
		rec, err := decode(k[12:])
		if err != nil {
			return fmt.Errorf("placing recipients: %w", err)
		}
		p := placed{spooled: rec, job: int(binary.BigEndian.Uint32(k)), slot: math.Float64frombits(binary.BigEndian.Uint64(k[4:]))}
		if err := fn(p); err != nil {
			return err
		}
	}
}

// placedFormat stores a placed recipient as its sort key: job and slot,
// then the encoded record.
var placedFormat = extsort.Format[string]{
	Compare: strings.Compare,
	Size:    func(s string) int { return len(s) + 32 },
	Append: func(b []byte, s string) []byte {
		return append(binary.AppendUvarint(b, uint64(len(s))), s...)
	},
	Read: func(r *bufio.Reader) (string, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return "", err
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b), nil
	},
}
