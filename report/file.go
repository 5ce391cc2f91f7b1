package report

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes a file the way a report must never be left half
// written: under a temporary name beside path, synced, then renamed over
// path. If write fails, or the process is stopped before the rename, path
// is untouched (a previous report there stays whole) and the temporary
// file is removed.
func WriteFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, pathErr(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, pathErr(err))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, pathErr(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, pathErr(err))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, pathErr(err))
	}
	return nil
}

// pathErr drops a *fs.PathError's own path, which names the temporary
// file rather than the one the user asked for.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
