package listclean

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// InputError is a problem with the list itself: unreadable, not CSV, no
// email column. It names the file and, where there is one, the line.
type InputError struct {
	Path string
	Line int // 0 when the problem is not on one line
	Msg  string
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

// emailColumnNames are the header names recognised as the address column,
// best first, compared after lower-casing and trimming.
var emailColumnNames = []string{"email", "e-mail", "email address", "e-mail address", "email_address", "emailaddress", "mail"}

// Format is what sniffing learnt about a list file.
type Format struct {
	Delimiter   rune
	BOM         bool // the file starts with a UTF-8 byte-order mark
	CRLF        bool // lines end in CR LF
	Header      []string
	EmailColumn int // index into Header
}

// listReader reads a list's records after its header. A goroutine parses
// the CSV ahead of the caller, a batch at a time, so that parsing and the
// caller's work share the machine's cores.
type listReader struct {
	f    *os.File
	br   *bufio.Reader
	r    *csv.Reader
	path string
	row  int64 // records read, the header being row 1
	size int64
	bom  int64

	batches  chan batch
	stop     chan struct{}
	stopOnce sync.Once
	cur      batch
	off      int64
}

// batch is records parsed ahead, then the error that ended them, if any.
type batch struct {
	recs   [][]string
	offset int64 // input offset after the batch
	err    error
}

const batchSize = 1024

func (lr *listReader) readAhead() {
	lr.r.ReuseRecord = false // records now outlive the next Read
	lr.batches, lr.stop = make(chan batch, 4), make(chan struct{})
	batches, stop := lr.batches, lr.stop
	go func() {
		defer close(batches)
		for {
			b := batch{recs: make([][]string, 0, batchSize)}
			for len(b.recs) < batchSize {
				rec, err := lr.r.Read()
				if err != nil {
					b.err = err
					break
				}
				b.recs = append(b.recs, rec)
			}
			b.offset = lr.r.InputOffset()
			select {
			case batches <- b:
			case <-stop:
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
}

// openList opens path and reads its header. delim 0 means sniff it;
// emailColumn "" means find it by name.
func openList(path string, delim rune, emailColumn string) (*listReader, Format, error) {
	var ft Format
	f, err := os.Open(path)
	if err != nil {
		return nil, ft, &InputError{Path: path, Msg: unwrapPathError(err)}
	}
	fail := func(line int, format string, args ...any) (*listReader, Format, error) {
		f.Close()
		return nil, ft, &InputError{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(0, "%s", unwrapPathError(err))
	}
	if fi.IsDir() {
		return fail(0, "is a directory")
	}
	br := bufio.NewReaderSize(f, 256<<10)
	head, err := br.Peek(64 << 10)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return fail(0, "%s", unwrapPathError(err))
	}
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		ft.BOM = true
		br.Discard(3)
		head = head[3:]
	}
	if len(bytes.TrimSpace(head)) == 0 {
		return fail(0, "empty file: want a CSV with a header row")
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return fail(0, "binary data (a NUL byte): not a CSV file")
	}
	firstLine := head
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		firstLine = head[:i]
		ft.CRLF = i > 0 && head[i-1] == '\r'
	}
	ft.Delimiter = delim
	if delim == 0 {
		ft.Delimiter = sniffDelimiter(firstLine)
	}
	r := csv.NewReader(br)
	r.Comma = ft.Delimiter
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return fail(0, "reading the header: %s", csvErrorText(err))
	}
	ft.Header = make([]string, len(header))
	for i, h := range header {
		ft.Header[i] = strings.TrimFunc(h, isSpace)
	}
	ft.EmailColumn = findEmailColumn(ft.Header, emailColumn)
	if ft.EmailColumn < 0 {
		if emailColumn != "" {
			return fail(1, "no column %q in the header (%s)", emailColumn, headerList(ft.Header))
		}
		return fail(1, "no email column in the header (%s); name it with --email-column", headerList(ft.Header))
	}
	lr := &listReader{f: f, br: br, r: r, path: path, row: 1, size: fi.Size()}
	if ft.BOM {
		lr.bom = 3
	}
	lr.readAhead()
	return lr, ft, nil
}

// read returns the next record or io.EOF.
func (lr *listReader) read() ([]string, error) {
	for len(lr.cur.recs) == 0 {
		if lr.cur.err != nil {
			return nil, lr.fail(lr.cur.err)
		}
		b, ok := <-lr.batches
		if !ok {
			return nil, io.EOF
		}
		lr.cur, lr.off = b, b.offset
	}
	rec := lr.cur.recs[0]
	lr.cur.recs = lr.cur.recs[1:]
	lr.row++
	return rec, nil
}

// fail turns the CSV reader's error into the list's.
func (lr *listReader) fail(err error) error {
	if err == io.EOF {
		return err
	}
	line := 0
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		line = pe.StartLine
	}
	return &InputError{Path: lr.path, Line: line, Msg: csvErrorText(err)}
}

// offset is how far into the file reading has got, for progress.
func (lr *listReader) offset() int64 { return lr.off + lr.bom }

func (lr *listReader) close() error {
	lr.stopOnce.Do(func() { close(lr.stop) })
	return lr.f.Close()
}

func csvErrorText(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error() + " (not valid CSV)"
	}
	return unwrapPathError(err)
}

func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// sniffDelimiter picks the one of , ; and tab that the header line uses
// most, outside quotes; a header of one column means comma.
func sniffDelimiter(line []byte) rune {
	counts := map[byte]int{}
	inQuote := false
	for _, c := range line {
		switch {
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == ',' || c == ';' || c == '\t'):
			counts[c]++
		}
	}
	best, n := byte(','), 0
	for _, c := range []byte{',', ';', '\t'} {
		if counts[c] > n {
			best, n = c, counts[c]
		}
	}
	return rune(best)
}

func findEmailColumn(header []string, want string) int {
	if want != "" {
		for i, h := range header {
			if strings.EqualFold(h, strings.TrimSpace(want)) {
				return i
			}
		}
		if n, err := strconv.Atoi(want); err == nil && n >= 1 && n <= len(header) {
			return n - 1
		}
		return -1
	}
	for _, name := range emailColumnNames {
		for i, h := range header {
			if strings.EqualFold(h, name) {
				return i
			}
		}
	}
	return -1
}

func headerList(h []string) string {
	const most = 8
	q := make([]string, 0, most+1)
	for i, c := range h {
		if i == most {
			q = append(q, fmt.Sprintf("… %d more", len(h)-most))
			break
		}
		q = append(q, strconv.Quote(c))
	}
	return "columns: " + strings.Join(q, ", ")
}

// ParseDelimiter reads a --delimiter value: one character, or "tab".
func ParseDelimiter(s string) (rune, error) {
	switch strings.ToLower(s) {
	case "tab", `\t`, "\t":
		return '\t', nil
	case ",", ";", "|":
		return rune(s[0]), nil
	}
	return 0, fmt.Errorf("delimiter %q: want one of , ; | tab", s)
}

// Sniff reads a list's header and format without reading its rows, so that
// a caller can check the columns before the long passes.
func Sniff(path string, delim rune, emailColumn string) (Format, error) {
	lr, ft, err := openList(path, delim, emailColumn)
	if err == nil {
		lr.close()
	}
	return ft, err
}
