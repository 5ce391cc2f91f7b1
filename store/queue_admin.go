package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// QueueEntry is one queued message, as `relayctl queue list` shows it.
type QueueEntry struct {
	ID          int64
	Received    time.Time
	From        string
	Client      string
	User        string
	Size        int
	Recipients  int       // in all
	Waiting     int       // not yet delivered nor given up on
	NextAttempt time.Time // of the earliest waiting recipient; zero: now
	LastReply   string    // the latest reply of a waiting recipient
}

// queueEntrySelect reads the queue in one pass over the recipients, by
// message; only a waiting message's last reply is looked up on its own.
const queueEntrySelect = `SELECT m.id, m.received_at, m.mail_from, m.client, m.username, m.size, a.n, a.waiting, a.next,
	CASE WHEN a.waiting = 0 THEN '' ELSE COALESCE((SELECT reply FROM queue_recipients r WHERE r.message_id = m.id
		AND r.state IN ('pending', 'deferred') AND reply != '' ORDER BY last_attempt DESC LIMIT 1), '') END
	FROM queue_messages m JOIN (SELECT message_id, COUNT(*) AS n,
		SUM(state IN ('pending', 'deferred', 'sending')) AS waiting,
		COALESCE(MIN(CASE WHEN state IN ('pending', 'deferred') THEN next_attempt END), 0) AS next
		FROM queue_recipients GROUP BY message_id) a ON a.message_id = m.id`

func scanQueueEntry(row interface{ Scan(...any) error }) (QueueEntry, error) {
	var e QueueEntry
	var recv, next int64
	err := row.Scan(&e.ID, &recv, &e.From, &e.Client, &e.User, &e.Size, &e.Recipients, &e.Waiting, &next, &e.LastReply)
	e.Received = time.Unix(recv, 0)
	if next > 0 {
		e.NextAttempt = time.Unix(next, 0)
	}
	return e, err
}

// EachQueued calls fn for each queued message, oldest first.
func (s *Store) EachQueued(ctx context.Context, fn func(QueueEntry) error) error {
	rows, err := s.db.QueryContext(ctx, queueEntrySelect+` ORDER BY m.id`)
	if err != nil {
		return fmt.Errorf("store %s: queue: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanQueueEntry(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// QueueRecipient is one recipient of a queued message and how it stands.
type QueueRecipient struct {
	ID          int64
	Rcpt        string
	State       string
	Attempts    int
	NextAttempt time.Time
	LastAttempt time.Time
	Reply       string
}

// QueuedMessage returns a queued message, its recipients and its body.
func (s *Store) QueuedMessage(ctx context.Context, id int64) (QueueEntry, []QueueRecipient, []byte, error) {
	e, err := scanQueueEntry(s.db.QueryRowContext(ctx, queueEntrySelect+` WHERE m.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, nil, nil, fmt.Errorf("queued message %d %w", id, ErrNotFound)
	}
	if err != nil {
		return e, nil, nil, fmt.Errorf("store %s: queued message %d: %w", s.path, id, err)
	}
	var body []byte
	if err := s.db.QueryRowContext(ctx, `SELECT body FROM queue_bodies WHERE message_id = ?`, id).Scan(&body); err != nil {
		return e, nil, nil, fmt.Errorf("store %s: queued message %d: %w", s.path, id, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, rcpt, state, attempts, next_attempt, COALESCE(last_attempt, 0), reply
		FROM queue_recipients WHERE message_id = ? ORDER BY id`, id)
	if err != nil {
		return e, nil, nil, fmt.Errorf("store %s: queued message %d: %w", s.path, id, err)
	}
	defer rows.Close()
	var rs []QueueRecipient
	for rows.Next() {
		var r QueueRecipient
		var next, last int64
		if err := rows.Scan(&r.ID, &r.Rcpt, &r.State, &r.Attempts, &next, &last, &r.Reply); err != nil {
			return e, nil, nil, err
		}
		if next > 0 {
			r.NextAttempt = time.Unix(next, 0)
		}
		if last > 0 {
			r.LastAttempt = time.Unix(last, 0)
		}
		rs = append(rs, r)
	}
	return e, rs, body, rows.Err()
}

// RetryQueued makes the waiting recipients of the messages ids (of every
// message when ids is empty) due now, and with every=true ends the
// providers' pauses too. It returns how many recipients it touched.
func (s *Store) RetryQueued(ctx context.Context, ids []int64, every bool) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		q := `UPDATE queue_recipients SET next_attempt = 0 WHERE state IN ('pending', 'deferred')`
		args := make([]any, len(ids))
		if len(ids) > 0 {
			q += ` AND message_id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
			for i, id := range ids {
				args[i] = id
			}
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		c, _ := res.RowsAffected()
		n = int(c)
		if every {
			_, err = tx.ExecContext(ctx, `UPDATE queue_pauses SET until = 0`)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store %s: retry: %w", s.path, err)
	}
	return n, nil
}

// DeleteQueued removes messages from the queue, without notice to their
// senders. It returns the ids that were not there.
func (s *Store) DeleteQueued(ctx context.Context, ids []int64) (missing []int64, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `DELETE FROM queue_messages WHERE id = ?`, id)
			if err != nil {
				return err
			}
			if c, _ := res.RowsAffected(); c == 0 {
				missing = append(missing, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: delete: %w", s.path, err)
	}
	return missing, nil
}

// ClientDay is what one client sent through the relay on one UTC day.
type ClientDay struct {
	Day        string // 2006-01-02
	Client     string // IP address
	User       string // "" when it relayed by address, not AUTH
	Messages   int64
	Recipients int64
	Bytes      int64
}

// ClientDays returns the clients' daily totals from since (a day,
// 2006-01-02) on, newest day first, busiest client first.
func (s *Store) ClientDays(ctx context.Context, since string) ([]ClientDay, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT day, client, username, messages, recipients, bytes FROM client_days
		WHERE day >= ? ORDER BY day DESC, messages DESC, client, username`, since)
	if err != nil {
		return nil, fmt.Errorf("store %s: clients: %w", s.path, err)
	}
	defer rows.Close()
	var out []ClientDay
	for rows.Next() {
		var c ClientDay
		if err := rows.Scan(&c.Day, &c.Client, &c.User, &c.Messages, &c.Recipients, &c.Bytes); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
