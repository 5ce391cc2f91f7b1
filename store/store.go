// Package store owns relayctl's SQLite database: the schema and its
// migrations, and every SQL statement the program runs. No other package
// imports database/sql.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is an open relayctl database.
type Store struct {
	db   *sql.DB
	path string

	applyMu    sync.Mutex
	applyStmts map[int]*sql.Stmt // Apply's, by rows
	markStmts  map[int]*sql.Stmt // Apply's for sending marks alone, by rows
}

// Option changes how Open opens the database.
type Option func(*openOptions)

type openOptions struct{ sync, cache string }

// Durable makes every commit survive power loss (synchronous=FULL: the WAL
// is synced at each commit), as a relay must before it answers 250. By
// default a commit survives a crash of the process but may be lost with
// the last moments before a power cut (synchronous=NORMAL), which costs a
// resumable run a few repeated messages at most.
//
// It also gives the page cache 16 MiB rather than 2: a relay's queue is
// read and written all day, not streamed through once like a campaign.
func Durable(o *openOptions) { o.sync, o.cache = "FULL", "-16384" }

// Open opens (creating if needed) the database at path and brings its schema
// up to date. The database runs in WAL mode with a busy timeout so that a
// reader such as `status` never fails because a run is writing.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := openOptions{sync: "NORMAL", cache: "-2048"}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("store %s: is a directory", path)
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(" + o.sync + ")", "cache_size(" + o.cache + ")"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// The path goes in a file: URI, where these three would be syntax.
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+escaped+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	for _, st := range s.applyStmts {
		st.Close()
	}
	for _, st := range s.markStmts {
		st.Close()
	}
	return s.db.Close()
}

// migrate applies, in order and each in its own transaction, the embedded
// migrations the database has not seen yet.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	latest := 0
	for _, f := range files {
		v, err := strconv.Atoi(strings.SplitN(path.Base(f), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad name", f)
		}
		latest = max(latest, v)
		if v <= current {
			continue
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().Unix())
			return err
		}); err != nil {
			return fmt.Errorf("migration %s: %w", path.Base(f), err)
		}
	}
	if current > latest {
		return fmt.Errorf("schema version %d is newer than this relayctl knows (%d): upgrade relayctl", current, latest)
	}
	return nil
}

// inTx runs fn in a transaction, committing if it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
