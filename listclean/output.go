package listclean

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
)

// output is a CSV file written under a temporary name beside its final
// path and renamed into place by commit, so that a failed or interrupted
// run never leaves a half-written file where a complete one is expected.
type output struct {
	final string
	f     *os.File
	bw    *bufio.Writer
	w     *csv.Writer
}

// createOutput starts an output in the list's own dialect: delimiter, line
// ends and byte-order mark, so that the spreadsheet that made the list
// opens the result the same way.
func createOutput(final string, ft Format) (*output, error) {
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", final, unwrapErr(err))
	}
	o := &output{final: final, f: f, bw: bufio.NewWriterSize(f, 256<<10)}
	if ft.BOM {
		o.bw.WriteString("\ufeff")
	}
	o.w = csv.NewWriter(o.bw)
	o.w.Comma = ft.Delimiter
	o.w.UseCRLF = ft.CRLF
	return o, nil
}

func unwrapErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (o *output) write(rec []string) error {
	if err := o.w.Write(rec); err != nil {
		return fmt.Errorf("write %s: %w", o.final, err)
	}
	return nil
}

// finish flushes, syncs and closes the file, ready to be renamed.
func (o *output) finish() error {
	o.w.Flush()
	err := o.w.Error()
	if err == nil {
		err = o.bw.Flush()
	}
	if err == nil {
		err = o.f.Chmod(0o644)
	}
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", o.final, unwrapErr(err))
	}
	return nil
}

// rename moves the finished file into place.
func (o *output) rename() error {
	if err := os.Rename(o.f.Name(), o.final); err != nil {
		return fmt.Errorf("write %s: %w", o.final, unwrapErr(err))
	}
	return nil
}

// abort discards the file.
func (o *output) abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}
