package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Domain is a cached verdict on whether a domain can receive mail.
type Domain struct {
	Name      string
	Verdict   string
	MX        []string // MX hosts in preference order; empty for implicit MX
	Detail    string
	CheckedAt time.Time
}

// Domains returns the cached verdicts for those of names that were checked
// at or after notBefore.
func (s *Store) Domains(ctx context.Context, names []string, notBefore time.Time) (map[string]Domain, error) {
	out := make(map[string]Domain)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `SELECT verdict, mx, detail, checked_at FROM domains WHERE name = ? AND checked_at >= ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, n := range names {
			var d Domain
			var mx string
			var at int64
			err := stmt.QueryRowContext(ctx, n, notBefore.Unix()).Scan(&d.Verdict, &mx, &d.Detail, &at)
			if err == sql.ErrNoRows {
				continue
			}
			if err != nil {
				return err
			}
			d.Name, d.MX, d.CheckedAt = n, strings.Fields(mx), time.Unix(at, 0)
			out[n] = d
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read domain cache: %w", s.path, err)
	}
	return out, nil
}

// PutDomains records verdicts in the cache, replacing older ones.
func (s *Store) PutDomains(ctx context.Context, ds []Domain) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO domains (name, verdict, mx, detail, checked_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET verdict = excluded.verdict, mx = excluded.mx, detail = excluded.detail, checked_at = excluded.checked_at`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, d := range ds {
			if _, err := stmt.ExecContext(ctx, d.Name, d.Verdict, strings.Join(d.MX, " "), d.Detail, d.CheckedAt.Unix()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s: write domain cache: %w", s.path, err)
	}
	return nil
}
