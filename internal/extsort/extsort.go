// Package extsort sorts records in bounded memory: once its buffer holds
// about a given number of bytes it sorts the buffer in the background and
// writes it out as a run file while the next buffer fills, and iteration
// merges the runs. relayctl uses it where a list's length must not decide
// its memory: de-duplication and job placement.
package extsort

import (
	"bufio"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// Format tells a sorter how to order, measure and store its records.
type Format[T any] struct {
	// Compare orders records.
	Compare func(a, b T) int
	// Size is roughly the memory a record holds, in bytes.
	Size func(T) int
	// Append appends a record's encoding to b.
	Append func(b []byte, v T) []byte
	// Read reads one record; io.EOF at the end of a run.
	Read func(r *bufio.Reader) (T, error)
}

// Sorter sorts records of type T.
type Sorter[T any] struct {
	f      Format[T]
	dir    string
	limit  int
	buf    []T
	size   int
	runs   []string
	spills int        // runs written from the buffer
	spare  []T        // a buffer back from the background spill, for reuse
	done   chan []T   // the background spill's buffer, once written
	errc   chan error // the background spill's error
	busy   bool
}

// New returns a sorter that spills runs into dir (the system's temporary
// directory if "") once it holds about limit bytes.
func New[T any](dir string, limit int, f Format[T]) *Sorter[T] {
	return &Sorter[T]{f: f, dir: dir, limit: limit, done: make(chan []T, 1), errc: make(chan error, 1)}
}

// Add adds a record.
func (s *Sorter[T]) Add(v T) error {
	if s.buf == nil {
		// Size the buffer once, from the first record, rather than let
		// append's doublings leave garbage behind.
		s.buf = make([]T, 0, s.limit/max(1, s.f.Size(v))+1)
	}
	s.buf = append(s.buf, v)
	s.size += s.f.Size(v)
	if s.size >= s.limit {
		return s.spill()
	}
	return nil
}

// spill hands the buffer to a background goroutine that sorts it and
// writes it as a run, after waiting for the previous one.
func (s *Sorter[T]) spill() error {
	if err := s.wait(); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, "run-*")
	if err != nil {
		return fmt.Errorf("sort run: %w", err)
	}
	s.runs = append(s.runs, f.Name())
	s.spills++
	buf := s.buf
	s.buf, s.spare, s.size, s.busy = s.spare[:0], nil, 0, true
	go func() {
		err := s.writeRun(f, buf)
		clear(buf)
		s.done <- buf[:0]
		s.errc <- err
	}()
	return nil
}

// wait waits for a background spill, if any.
func (s *Sorter[T]) wait() error {
	if !s.busy {
		return nil
	}
	s.busy = false
	s.spare = <-s.done
	return <-s.errc
}

func (s *Sorter[T]) writeRun(f *os.File, buf []T) error {
	slices.SortFunc(buf, s.f.Compare)
	w := bufio.NewWriterSize(f, 64<<10)
	var b []byte
	for _, v := range buf {
		b = s.f.Append(b[:0], v)
		w.Write(b)
	}
	err := w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sort run: %w", err)
	}
	return nil
}

// Sorted returns an iterator over everything added, in order. The sorter
// must not be added to afterwards.
func (s *Sorter[T]) Sorted() (*Iter[T], error) {
	if err := s.wait(); err != nil {
		return nil, err
	}
	if len(s.runs) == 0 {
		slices.SortFunc(s.buf, s.f.Compare)
		return &Iter[T]{mem: s.buf}, nil
	}
	if len(s.buf) > 0 {
		if err := s.spill(); err != nil {
			return nil, err
		}
		if err := s.wait(); err != nil {
			return nil, err
		}
	}
	s.buf, s.spare = nil, nil
	// Merging opens every run at once: past maxFanIn, merge groups of
	// runs into longer ones first, so a huge input cannot exhaust the
	// process's file descriptors.
	for len(s.runs) > maxFanIn {
		if err := s.mergeRuns(maxFanIn); err != nil {
			return nil, err
		}
	}
	return s.open(s.runs)
}

// maxFanIn is how many runs one merge reads at once.
const maxFanIn = 64

// mergeRuns merges the first n runs into one new run at the end.
func (s *Sorter[T]) mergeRuns(n int) error {
	group := s.runs[:n]
	it, err := s.open(group)
	if err != nil {
		return err
	}
	defer it.Close()
	f, err := os.CreateTemp(s.dir, "run-*")
	if err != nil {
		return fmt.Errorf("sort run: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	var b []byte
	for {
		v, ok, err := it.Next()
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
		if !ok {
			break
		}
		b = s.f.Append(b[:0], v)
		w.Write(b)
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("sort run: %w", err)
	}
	for _, name := range group {
		os.Remove(name)
	}
	s.runs = append(slices.Clone(s.runs[n:]), f.Name())
	return nil
}

// open starts merging runs.
func (s *Sorter[T]) open(runs []string) (*Iter[T], error) {
	it := &Iter[T]{h: runHeap[T]{cmp: s.f.Compare}}
	for _, name := range runs {
		f, err := os.Open(name)
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("sort run: %w", err)
		}
		r := &runReader[T]{f: f, r: bufio.NewReaderSize(f, 32<<10), read: s.f.Read}
		it.files = append(it.files, r)
		ok, err := r.advance()
		if err != nil {
			it.Close()
			return nil, err
		}
		if ok {
			it.h.runs = append(it.h.runs, r)
		}
	}
	heap.Init(&it.h)
	return it, nil
}

// Runs is how many sorted runs the sorter has spilled from its buffer.
func (s *Sorter[T]) Runs() int { return s.spills }

// RemoveRuns deletes the run files.
func (s *Sorter[T]) RemoveRuns() {
	s.wait()
	for _, name := range s.runs {
		os.Remove(name)
	}
	s.runs = nil
}

type runReader[T any] struct {
	f    *os.File
	r    *bufio.Reader
	read func(*bufio.Reader) (T, error)
	cur  T
}

func (rr *runReader[T]) advance() (bool, error) {
	v, err := rr.read(rr.r)
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sort run %s: %w", rr.f.Name(), errors.Join(err, io.ErrUnexpectedEOF))
	}
	rr.cur = v
	return true, nil
}

type runHeap[T any] struct {
	runs []*runReader[T]
	cmp  func(a, b T) int
}

func (h runHeap[T]) Len() int           { return len(h.runs) }
func (h runHeap[T]) Less(i, j int) bool { return h.cmp(h.runs[i].cur, h.runs[j].cur) < 0 }
func (h runHeap[T]) Swap(i, j int)      { h.runs[i], h.runs[j] = h.runs[j], h.runs[i] }
func (h *runHeap[T]) Push(x any)        { h.runs = append(h.runs, x.(*runReader[T])) }
func (h *runHeap[T]) Pop() any {
	x := h.runs[len(h.runs)-1]
	h.runs = h.runs[:len(h.runs)-1]
	return x
}

// Iter yields sorted records from memory or by merging runs.
type Iter[T any] struct {
	mem   []T
	h     runHeap[T]
	files []*runReader[T]
}

// Next returns the next record, or false at the end.
func (it *Iter[T]) Next() (T, bool, error) {
	var zero T
	if it.files == nil {
		if len(it.mem) == 0 {
			return zero, false, nil
		}
		v := it.mem[0]
		it.mem = it.mem[1:]
		return v, true, nil
	}
	if len(it.h.runs) == 0 {
		return zero, false, nil
	}
	top := it.h.runs[0]
	v := top.cur
	ok, err := top.advance()
	if err != nil {
		return zero, false, err
	}
	if ok {
		heap.Fix(&it.h, 0)
	} else {
		heap.Pop(&it.h)
	}
	return v, true, nil
}

// Close releases the iterator's files.
func (it *Iter[T]) Close() {
	for _, r := range it.files {
		r.f.Close()
	}
	it.files, it.h.runs, it.mem = nil, nil, nil
}
