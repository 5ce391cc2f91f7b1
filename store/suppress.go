package store

import (
	"context"
	"database/sql"
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

// AddSuppression records sup, replacing the reason and source of an
// existing entry for the same value.
func (s *Store) AddSuppression(ctx context.Context, sup Suppression) error {
	if sup.Kind != SuppressAddress && sup.Kind != SuppressDomain {
		return fmt.Errorf("store %s: suppression kind %q", s.path, sup.Kind)
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
	rows, err := s.db.QueryContext(ctx, `SELECT value, kind, reason, source, created_at FROM suppressions ORDER BY value`)
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
	if err := rows.Err(); err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("store %s: list suppressions: %w", s.path, err)
	}
	return nil
}
