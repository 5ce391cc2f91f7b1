package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Suppression kinds.
const (
	SuppressAddress = "address"
	SuppressDomain  = "domain"
)

// Suppression is an address, or a whole domain, that must not be mailed.
type Suppression struct {
	Value     string // lower-case address or domain
	Kind      string // SuppressAddress or SuppressDomain
	Reason    string
	Source    string
	CreatedAt time.Time
}

func checkKind(kind string) error {
	if kind != SuppressAddress && kind != SuppressDomain {
		return fmt.Errorf("suppression kind %q: want %s or %s", kind, SuppressAddress, SuppressDomain)
	}
	return nil
}

// AddSuppression records sup, replacing the reason and source of an
// existing entry for the same value.
func (s *Store) AddSuppression(ctx context.Context, sup Suppression) error {
	if err := checkKind(sup.Kind); err != nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	if sup.CreatedAt.IsZero() {
		sup.CreatedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO suppressions (value, kind, reason, source, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (value) DO UPDATE SET kind = excluded.kind, reason = excluded.reason, source = excluded.source`,
		strings.ToLower(sup.Value), sup.Kind, sup.Reason, sup.Source, sup.CreatedAt.Unix())
	if err != nil {
		return fmt.Errorf("store %s: add suppression %s: %w", s.path, sup.Value, err)
	}
	return nil
}

// SuppressionPut records one suppression inside UpdateSuppressions and
// reports whether it was new (false: an existing entry was updated).
type SuppressionPut func(Suppression) (added bool, err error)

// UpdateSuppressions runs fn in one transaction, giving it put to add or
// update entries, so that a large import is one commit and a failed one
// leaves the list as it was: nothing is written unless fn returns nil,
// and fn's own error is returned as it is. A new entry that names no
// source gets source. An updated entry keeps its created_at, and its
// reason and source where the new ones are empty, so adding a value again
// never erases why, and at whose request, it was suppressed.
func (s *Store) UpdateSuppressions(ctx context.Context, source string, fn func(put SuppressionPut) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s: update suppressions: %w", s.path, err)
	}
	defer tx.Rollback()
	exists, err := tx.PrepareContext(ctx, `SELECT 1 FROM suppressions WHERE value = ?`)
	if err != nil {
		return fmt.Errorf("store %s: update suppressions: %w", s.path, err)
	}
	defer exists.Close()
	upsert, err := tx.PrepareContext(ctx, `INSERT INTO suppressions (value, kind, reason, source, created_at)
		VALUES (?1, ?2, ?3, COALESCE(NULLIF(?4, ''), ?5), ?6)
		ON CONFLICT (value) DO UPDATE SET kind = excluded.kind,
			reason = COALESCE(NULLIF(excluded.reason, ''), reason),
			source = COALESCE(NULLIF(?4, ''), source)`)
	if err != nil {
		return fmt.Errorf("store %s: update suppressions: %w", s.path, err)
	}
	defer upsert.Close()
	now := time.Now()
	put := func(sup Suppression) (bool, error) {
		if err := checkKind(sup.Kind); err != nil {
			return false, fmt.Errorf("store %s: %s: %w", s.path, sup.Value, err)
		}
		value := strings.ToLower(sup.Value)
		if value == "" {
			return false, fmt.Errorf("store %s: empty suppression value", s.path)
		}
		if sup.CreatedAt.IsZero() {
			sup.CreatedAt = now
		}
		var one int
		err := exists.QueryRowContext(ctx, value).Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("store %s: look up suppression %s: %w", s.path, value, err)
		}
		added := errors.Is(err, sql.ErrNoRows)
		if _, err := upsert.ExecContext(ctx, value, sup.Kind, sup.Reason, sup.Source, source, sup.CreatedAt.Unix()); err != nil {
			return false, fmt.Errorf("store %s: add suppression %s: %w", s.path, value, err)
		}
		return added, nil
	}
	if err := fn(put); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s: update suppressions: %w", s.path, err)
	}
	return nil
}

// RemoveSuppression deletes the entry for value and says whether there was one.
func (s *Store) RemoveSuppression(ctx context.Context, value string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM suppressions WHERE value = ?`, strings.ToLower(value))
	if err != nil {
		return false, fmt.Errorf("store %s: remove suppression %s: %w", s.path, value, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// EachSuppression calls fn for every suppression, in value order, streaming
// the rows.
func (s *Store) EachSuppression(ctx context.Context, fn func(Suppression) error) error {
	return s.EachSuppressionOfKind(ctx, "", fn)
}

// EachSuppressionOfKind is EachSuppression for one kind only
// (SuppressAddress or SuppressDomain; "" for both).
func (s *Store) EachSuppressionOfKind(ctx context.Context, kind string, fn func(Suppression) error) error {
	if kind != "" {
		if err := checkKind(kind); err != nil {
			return fmt.Errorf("store %s: %w", s.path, err)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT value, kind, reason, source, created_at FROM suppressions
		WHERE ? = '' OR kind = ? ORDER BY value`, kind, kind)
	if err != nil {
		return fmt.Errorf("store %s: list suppressions: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var sup Suppression
		var at int64
		if err := rows.Scan(&sup.Value, &sup.Kind, &sup.Reason, &sup.Source, &at); err != nil {
			return fmt.Errorf("store %s: list suppressions: %w", s.path, err)
		}
		sup.CreatedAt = time.Unix(at, 0)
		if err := fn(sup); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store %s: list suppressions: %w", s.path, err)
	}
	return nil
}
