// Package extsort sorts (key, value) pairs in bounded memory: once its
// buffer holds about a given number of bytes it writes the buffer out as a
// sorted run file, and iteration merges the runs. relayctl uses it where a
// list's size must not decide its memory: de-duplication and job placement.
package extsort

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Sorter sorts (key, val) pairs by key, then val.
type Sorter struct {
	dir   string
	limit int
	buf   []Entry
	size  int
	runs  []string
}

// Entry is one sorted pair.
type Entry struct {
	Key string
	Val int64
}

// entryOverhead approximates what one entry costs besides its key's bytes:
// the entry itself, the string's allocation header and slice slack.
const entryOverhead = 48

func compareEntries(a, b Entry) int {
	if c := strings.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	return cmp.Compare(a.Val, b.Val)
}

// New returns a sorter that spills runs into dir (the system's temporary
// directory if "") once it holds about limit bytes.
func New(dir string, limit int) *Sorter {
	return &Sorter{dir: dir, limit: limit}
}

// Add adds a pair.
func (s *Sorter) Add(key string, val int64) error {
	s.buf = append(s.buf, Entry{Key: key, Val: val})
	s.size += len(key) + entryOverhead
	if s.size >= s.limit {
		return s.spill()
	}
	return nil
}

// spill writes the buffer as one sorted run.
func (s *Sorter) spill() error {
	slices.SortFunc(s.buf, compareEntries)
	f, err := os.CreateTemp(s.dir, "run-*")
	if err != nil {
		return fmt.Errorf("sort run: %w", err)
	}
	s.runs = append(s.runs, f.Name())
	w := bufio.NewWriterSize(f, 64<<10)
	var tmp [2 * binary.MaxVarintLen64]byte
	for _, e := range s.buf {
		n := binary.PutUvarint(tmp[:], uint64(len(e.Key)))
		n += binary.PutVarint(tmp[n:], e.Val)
		w.Write(tmp[:n])
		w.WriteString(e.Key)
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sort run: %w", err)
	}
	clear(s.buf)
	s.buf, s.size = s.buf[:0], 0
	return nil
}

// Sorted returns an iterator over everything added, in order. The sorter
// must not be added to afterwards.
func (s *Sorter) Sorted() (*Iter, error) {
	if len(s.runs) == 0 {
		slices.SortFunc(s.buf, compareEntries)
		return &Iter{mem: s.buf}, nil
	}
	if len(s.buf) > 0 {
		if err := s.spill(); err != nil {
			return nil, err
		}
	}
	s.buf = nil
	it := &Iter{}
	for _, name := range s.runs {
		f, err := os.Open(name)
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("sort run: %w", err)
		}
		r := &runReader{f: f, r: bufio.NewReaderSize(f, 32<<10)}
		it.files = append(it.files, r)
		ok, err := r.advance()
		if err != nil {
			it.Close()
			return nil, err
		}
		if ok {
			it.heap = append(it.heap, r)
		}
	}
	heap.Init(&it.heap)
	return it, nil
}

// Runs is how many run files the sorter has written.
func (s *Sorter) Runs() int { return len(s.runs) }

// RemoveRuns deletes the run files.
func (s *Sorter) RemoveRuns() {
	for _, name := range s.runs {
		os.Remove(name)
	}
	s.runs = nil
}

type runReader struct {
	f   *os.File
	r   *bufio.Reader
	cur Entry
}

func (rr *runReader) advance() (bool, error) {
	n, err := binary.ReadUvarint(rr.r)
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sort run %s: %w", rr.f.Name(), err)
	}
	v, err := binary.ReadVarint(rr.r)
	if err != nil {
		return false, fmt.Errorf("sort run %s: %w", rr.f.Name(), errors.Join(err, io.ErrUnexpectedEOF))
	}
	key := make([]byte, n)
	if _, err := io.ReadFull(rr.r, key); err != nil {
		return false, fmt.Errorf("sort run %s: %w", rr.f.Name(), err)
	}
	rr.cur = Entry{Key: string(key), Val: v}
	return true, nil
}

type runHeap []*runReader

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return compareEntries(h[i].cur, h[j].cur) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runReader)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Iter yields sorted entries from memory or by merging runs.
type Iter struct {
	mem   []Entry
	heap  runHeap
	files []*runReader
}

// Next returns the next entry, or false at the end.
func (it *Iter) Next() (Entry, bool, error) {
	if it.files == nil {
		if len(it.mem) == 0 {
			return Entry{}, false, nil
		}
		e := it.mem[0]
		it.mem = it.mem[1:]
		return e, true, nil
	}
	if len(it.heap) == 0 {
		return Entry{}, false, nil
	}
	top := it.heap[0]
	e := top.cur
	ok, err := top.advance()
	if err != nil {
		return Entry{}, false, err
	}
	if ok {
		heap.Fix(&it.heap, 0)
	} else {
		heap.Pop(&it.heap)
	}
	return e, true, nil
}

// Close releases the iterator's files.
func (it *Iter) Close() {
	for _, r := range it.files {
		r.f.Close()
	}
	it.files, it.heap, it.mem = nil, nil, nil
}
