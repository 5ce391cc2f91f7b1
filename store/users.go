package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// User is someone who may relay after AUTH.
type User struct {
	Name    string
	Hash    string // bcrypt
	CRAM    string // the password itself, for CRAM-MD5; "" when not allowed
	Created time.Time
}

// PutUser adds a user, or with replace changes an existing one's password.
func (s *Store) PutUser(ctx context.Context, u User, replace bool) error {
	var cram any
	if u.CRAM != "" {
		cram = u.CRAM
	}
	q := `INSERT INTO users (name, hash, cram_secret, created_at) VALUES (?, ?, ?, ?)`
	if replace {
		q += ` ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, cram_secret = excluded.cram_secret`
	}
	_, err := s.db.ExecContext(ctx, q, u.Name, u.Hash, cram, time.Now().Unix())
	if err != nil {
		if !replace {
			if ok, _ := s.hasUser(ctx, u.Name); ok {
				return fmt.Errorf("user %q %w (--replace changes the password)", u.Name, ErrExists)
			}
		}
		return fmt.Errorf("store %s: user %s: %w", s.path, u.Name, err)
	}
	return nil
}

func (s *Store) hasUser(ctx context.Context, name string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE name = ?`, name).Scan(&n)
	return n > 0, err
}

// RemoveUser removes a user; it reports whether there was one.
func (s *Store) RemoveUser(ctx context.Context, name string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return false, fmt.Errorf("store %s: user %s: %w", s.path, name, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// LookupUser returns the user called name, or an ErrNotFound.
func (s *Store) LookupUser(ctx context.Context, name string) (User, error) {
	u := User{Name: name}
	var cram sql.NullString
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT hash, cram_secret, created_at FROM users WHERE name = ?`, name).Scan(&u.Hash, &cram, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %q %w", name, ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("store %s: user %s: %w", s.path, name, err)
	}
	u.CRAM, u.Created = cram.String, time.Unix(created, 0)
	return u, nil
}

// Users lists the users by name; their hashes and secrets are left out.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, cram_secret IS NOT NULL, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store %s: users: %w", s.path, err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var cram bool
		var created int64
		if err := rows.Scan(&u.Name, &cram, &created); err != nil {
			return nil, err
		}
		if cram {
			u.CRAM = "(set)"
		}
		u.Created = time.Unix(created, 0)
		out = append(out, u)
	}
	return out, rows.Err()
}
