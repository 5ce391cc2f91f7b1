package listclean

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/relayctl/relayctl/store"
)

// The suppression list's values, the files suppress import reads and the
// CSV suppress export writes. Values are read exactly as clean reads a
// list's addresses, so that whatever clean would keep can be suppressed.

// ParseSuppression reads a suppression list value. A value with an @ is an
// address: normalised as Normalize and ParseAddress normalise a list's
// addresses ("Jane <Jane@Example.COM>" is jane@example.com), with address
// literals and UTF-8 local parts allowed, and its local part lower-cased
// as Address.Key does. Any other value is a domain, checked and converted
// to A-labels exactly as an address's domain is. kind, if not empty, is
// the kind the value must be: store.SuppressAddress or store.SuppressDomain.
//
// Only Value and Kind are set. A value that is not usable is a
// *SyntaxError.
func ParseSuppression(raw, kind string) (store.Suppression, error) {
	// As wide as clean can be made, so that anything clean could keep can
	// be suppressed.
	opt := SyntaxOptions{AllowIPLiteral: true, SMTPUTF8: true}
	s := Normalize(raw)
	if s == "" {
		return store.Suppression{}, syntaxErr("empty value")
	}
	if strings.Contains(s, "@") {
		if kind == store.SuppressDomain {
			return store.Suppression{}, syntaxErr("an address where a domain was expected")
		}
		a, err := ParseAddress(s, opt)
		if err != nil {
			return store.Suppression{}, err
		}
		return store.Suppression{Value: a.Key(), Kind: store.SuppressAddress}, nil
	}
	if kind == store.SuppressAddress {
		return store.Suppression{}, syntaxErr("no @")
	}
	a, err := ParseAddress("postmaster@"+s, opt)
	if err != nil {
		return store.Suppression{}, err
	}
	return store.Suppression{Value: a.Domain, Kind: store.SuppressDomain}, nil
}

// SuppressionRowError is a row of a suppression file that holds no usable
// value. It is reported and skipped: reading goes on after it.
type SuppressionRowError struct {
	Row   int64  // in a CSV the header is row 1; in a plain file every line counts
	Value string // the value as the row gives it, white space trimmed
	Err   error  // why: a *SyntaxError, or a bad created_at
}

func (e *SuppressionRowError) Error() string {
	return fmt.Sprintf("row %d: invalid %q: %v", e.Row, e.Value, e.Err)
}

func (e *SuppressionRowError) Unwrap() error { return e.Err }

// SuppressionReader reads a suppression file row by row. The file is
// either a CSV whose header names its value column, with optional reason,
// source and created_at columns (as WriteSuppressions writes them), or one
// value per line, blank lines and lines starting with # skipped. Its
// delimiter (comma, semicolon or tab) is sniffed from the first line, and
// a byte-order mark and CR LF line ends are allowed.
//
// The value column is the first found of: value (either kind); the names
// clean finds an address column by, or address (addresses only); domain
// (domains only). A file whose first line names none of these has no
// header.
type SuppressionReader struct {
	name string
	file *os.File // closed by Close; nil when the reader was given

	csv                            *csv.Reader // nil: one value per line
	col, reason, source, createdAt int         // columns; -1 if absent
	kind                           string      // the kind col must hold, "" either

	lines *bufio.Scanner
	first string // one value per line: the first line, already read
	row   int64  // rows (lines) read
}

// OpenSuppressions opens the suppression file at path, "-" meaning stdin,
// and reads its first line. A file that cannot be opened is an *InputError.
func OpenSuppressions(path string, stdin io.Reader) (*SuppressionReader, error) {
	if path == "-" {
		return NewSuppressionReader(stdin, "standard input")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &InputError{Path: path, Msg: unwrapPathError(err)}
	}
	sr, err := NewSuppressionReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	sr.file = f
	return sr, nil
}

// NewSuppressionReader reads a suppression file from r, and its first line
// at once, to tell a header from a first value. name is the file's name in
// messages.
func NewSuppressionReader(r io.Reader, name string) (*SuppressionReader, error) {
	sr := &SuppressionReader{name: name, col: -1, reason: -1, source: -1, createdAt: -1}
	br := bufio.NewReaderSize(r, 64<<10)
	first, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read %s: %w", name, unwrapErr(err))
	}
	first = strings.TrimPrefix(first, "\ufeff")
	delim := sniffDelimiter([]byte(first))
	header := suppressionHeader(first, delim)
	if sr.col, sr.kind = suppressionColumn(header); sr.col < 0 {
		// No header: one value per line, the first line among them.
		sr.first = first
		sr.lines = bufio.NewScanner(br)
		sr.lines.Buffer(make([]byte, 64<<10), 1<<20)
		return sr, nil
	}
	sr.reason = columnIndex(header, "reason")
	sr.source = columnIndex(header, "source")
	sr.createdAt = columnIndex(header, "created_at")
	sr.csv = csv.NewReader(io.MultiReader(strings.NewReader(first), br))
	sr.csv.Comma = delim
	sr.csv.FieldsPerRecord = -1
	sr.csv.LazyQuotes = true
	if _, err := sr.csv.Read(); err != nil { // the header
		return nil, &InputError{Path: name, Msg: err.Error()}
	}
	sr.row = 1
	return sr, nil
}

// suppressionHeader splits a first line into header names, unquoted and
// trimmed. Quotes are not parsed, so that a sloppy header (`"email" ,
// "reason"`) is still found; a quoted name holding the delimiter, though,
// shifts the names after it from the columns csv.Reader reads.
func suppressionHeader(line string, delim rune) []string {
	names := strings.Split(strings.TrimRight(line, "\r\n"), string(delim))
	for i, h := range names {
		names[i] = strings.TrimSpace(strings.Trim(strings.TrimSpace(h), `"`))
	}
	return names
}

// suppressionColumn finds the value column and the kind it must hold, or
// returns -1.
func suppressionColumn(header []string) (int, string) {
	if i := columnIndex(header, "value"); i >= 0 {
		return i, ""
	}
	if i := findEmailColumn(header, ""); i >= 0 {
		return i, store.SuppressAddress
	}
	if i := columnIndex(header, "address"); i >= 0 {
		return i, store.SuppressAddress
	}
	if i := columnIndex(header, "domain"); i >= 0 {
		return i, store.SuppressDomain
	}
	return -1, ""
}

// columnIndex is the first column named name, in any case, or -1.
func columnIndex(header []string, name string) int {
	return slices.IndexFunc(header, func(h string) bool { return strings.EqualFold(h, name) })
}

// Name is the file's name in messages: its path, or "standard input".
func (sr *SuppressionReader) Name() string { return sr.name }

// Close closes the file OpenSuppressions opened; a reader given to
// NewSuppressionReader is left open.
func (sr *SuppressionReader) Close() error {
	if sr.file == nil {
		return nil
	}
	return sr.file.Close()
}

// Next returns the next row's suppression: its Value and Kind, and the
// Reason, Source and CreatedAt its columns give (zero when absent or
// empty). A row without a usable value is a *SuppressionRowError, after
// which Next may be called again; io.EOF follows the last row. Any other
// error ends the file: an unreadable row is an *InputError.
func (sr *SuppressionReader) Next() (store.Suppression, error) {
	if sr.csv == nil {
		return sr.nextLine()
	}
	rec, err := sr.csv.Read()
	if err == io.EOF {
		return store.Suppression{}, err
	}
	if err != nil {
		return store.Suppression{}, &InputError{Path: sr.name, Msg: err.Error()}
	}
	sr.row++
	field := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	value := field(sr.col)
	sup, err := ParseSuppression(value, sr.kind)
	if err != nil {
		return store.Suppression{}, &SuppressionRowError{Row: sr.row, Value: value, Err: err}
	}
	sup.Reason, sup.Source = field(sr.reason), field(sr.source)
	if at := field(sr.createdAt); at != "" {
		if sup.CreatedAt, err = parseCreatedAt(at); err != nil {
			return store.Suppression{}, &SuppressionRowError{Row: sr.row, Value: value, Err: err}
		}
	}
	return sup, nil
}

func (sr *SuppressionReader) nextLine() (store.Suppression, error) {
	for {
		var line string
		switch {
		case sr.row == 0:
			line = sr.first
		case sr.lines.Scan():
			line = sr.lines.Text()
		case sr.lines.Err() != nil:
			return store.Suppression{}, &InputError{Path: sr.name, Msg: fmt.Sprintf("line %d: %v", sr.row+1, sr.lines.Err())}
		default:
			return store.Suppression{}, io.EOF
		}
		sr.row++
		line = strings.TrimSpace(strings.TrimPrefix(line, "\ufeff"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sup, err := ParseSuppression(line, "")
		if err != nil {
			return store.Suppression{}, &SuppressionRowError{Row: sr.row, Value: line, Err: err}
		}
		return sup, nil
	}
}

// parseCreatedAt reads a created_at cell: RFC 3339, as export writes it,
// or a bare date.
func parseCreatedAt(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("created_at %q: want RFC 3339 or YYYY-MM-DD", s)
}

// SuppressionLister is the part of the store that export and
// LoadSuppressions read.
type SuppressionLister interface {
	EachSuppression(ctx context.Context, fn func(store.Suppression) error) error
}

// WriteSuppressions writes the suppression list to w as CSV: a header, then
// value, kind, reason, source and created_at (RFC 3339, UTC) for each entry,
// in the order list gives them. SuppressionReader reads it back. It returns
// the number of entries written.
func WriteSuppressions(ctx context.Context, w io.Writer, list SuppressionLister) (int64, error) {
	cw := csv.NewWriter(w)
	n, err := writeSuppressionRecords(ctx, list, cw.Write)
	if err != nil {
		return 0, err
	}
	cw.Flush()
	return n, cw.Error()
}

// ExportSuppressions is WriteSuppressions to the file at path, written as
// clean writes its files: under a temporary name beside path, renamed into
// place only when complete, so that path never holds half a list. A path
// whose file cannot be created (its directory missing, say) is an
// *InputError.
func ExportSuppressions(ctx context.Context, path string, list SuppressionLister) (int64, error) {
	o, err := createOutput(path, Format{Delimiter: ','})
	if err != nil {
		cause := err
		if u := errors.Unwrap(err); u != nil {
			cause = u // without createOutput's "create PATH: "
		}
		return 0, &InputError{Path: path, Msg: cause.Error()}
	}
	n, err := writeSuppressionRecords(ctx, list, o.write)
	if err == nil {
		err = o.finish()
	}
	if err == nil {
		err = o.rename()
	}
	if err != nil {
		o.abort()
		return 0, err
	}
	return n, nil
}

func writeSuppressionRecords(ctx context.Context, list SuppressionLister, write func([]string) error) (int64, error) {
	if err := write([]string{"value", "kind", "reason", "source", "created_at"}); err != nil {
		return 0, err
	}
	var n int64
	err := list.EachSuppression(ctx, func(sup store.Suppression) error {
		n++
		return write([]string{sup.Value, sup.Kind, sup.Reason, sup.Source, sup.CreatedAt.UTC().Format(time.RFC3339)})
	})
	return n, err
}
