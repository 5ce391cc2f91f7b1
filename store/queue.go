package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Queued is a message the relay accepted, to enqueue.
type Queued struct {
	Received   time.Time
	From       string // "" for the null sender
	Client     string // the client's IP address
	User       string // the authenticated user, if any
	Body       []byte
	Recipients []string
}

// Enqueue stores messages in one commit (durable when the store was opened
// with Durable) and counts them in their clients' daily totals. It returns
// their queue ids, in order.
func (s *Store) Enqueue(ctx context.Context, msgs []Queued) ([]int64, error) {
	ids := make([]int64, len(msgs))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i, m := range msgs {
			var err error
			if ids[i], err = insertQueued(ctx, tx, m); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO client_days VALUES (?, ?, ?, 1, ?, ?)
				ON CONFLICT (day, client, username) DO UPDATE SET messages = messages + 1,
					recipients = recipients + excluded.recipients, bytes = bytes + excluded.bytes`,
				m.Received.UTC().Format(time.DateOnly), m.Client, m.User, len(m.Recipients), len(m.Body)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: enqueue: %w", s.path, err)
	}
	return ids, nil
}

// insertQueued adds one message, its body and its recipients.
func insertQueued(ctx context.Context, tx *sql.Tx, m Queued) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO queue_messages (received_at, mail_from, client, username, size)
		VALUES (?, ?, ?, ?, ?)`, m.Received.Unix(), m.From, m.Client, m.User, len(m.Body))
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO queue_bodies (message_id, body) VALUES (?, ?)`, id, m.Body); err != nil {
		return 0, err
	}
	for _, r := range m.Recipients {
		if _, err := tx.ExecContext(ctx, `INSERT INTO queue_recipients (message_id, rcpt, domain) VALUES (?, ?, ?)`,
			id, r, domainOf(r)); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func domainOf(addr string) string {
	return strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
}

// QueueDue is a queued recipient whose delivery is due.
type QueueDue struct {
	ID        int64 // the recipient's
	MessageID int64
	Rcpt      string
	Domain    string
	From      string
	Client    string
	User      string
	Received  time.Time
	Size      int
	Attempts  int
}

// DueQueue returns up to limit recipients due by now (pending, or
// deferred until now or earlier), oldest message first, whose messages
// together hold at most maxBytes (and at least one message), leaving out
// those at the domains exclude (which other deliveries are serving).
func (s *Store) DueQueue(ctx context.Context, now time.Time, limit int, maxBytes int64, exclude ...string) ([]QueueDue, error) {
	q := `SELECT r.id, r.message_id, r.rcpt, r.domain, m.mail_from, m.client, m.username, m.received_at, m.size, r.attempts
		FROM queue_recipients r JOIN queue_messages m ON m.id = r.message_id
		WHERE r.state IN ('pending', 'deferred') AND r.next_attempt <= ?`
	args := []any{now.Unix()}
	if len(exclude) > 0 {
		q += ` AND r.domain NOT IN (?` + strings.Repeat(", ?", len(exclude)-1) + `)`
		for _, d := range exclude {
			args = append(args, d)
		}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY r.message_id, r.id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store %s: due queue: %w", s.path, err)
	}
	defer rows.Close()
	var out []QueueDue
	var bytes int64
	last := int64(0)
	for rows.Next() {
		var d QueueDue
		var recv int64
		if err := rows.Scan(&d.ID, &d.MessageID, &d.Rcpt, &d.Domain, &d.From, &d.Client, &d.User, &recv, &d.Size, &d.Attempts); err != nil {
			return nil, err
		}
		if d.MessageID != last {
			if bytes > 0 && bytes+int64(d.Size) > maxBytes {
				break
			}
			bytes += int64(d.Size)
			last = d.MessageID
		}
		d.Received = time.Unix(recv, 0)
		out = append(out, d)
	}
	return out, rows.Err()
}

// NextQueueDue returns when the next deferred recipient is due; zero if
// none waits.
func (s *Store) NextQueueDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt) FROM queue_recipients WHERE state IN ('pending', 'deferred')`).Scan(&next)
	if err != nil || !next.Valid {
		return time.Time{}, err
	}
	return time.Unix(next.Int64, 0), nil
}

// QueueBodies returns the bodies of the messages ids.
func (s *Store) QueueBodies(ctx context.Context, ids []int64) (map[int64][]byte, error) {
	out := make(map[int64][]byte, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500)
		err := s.eachRow(ctx, `SELECT message_id, body FROM queue_bodies WHERE message_id IN `+idList(ids[:n]), func(rows *sql.Rows) error {
			var id int64
			var b []byte
			if err := rows.Scan(&id, &b); err != nil {
				return err
			}
			out[id] = b
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store %s: queued messages: %w", s.path, err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// idList is ids as an SQL list, "(1, 2, 3)": numbers only, no injection.
func idList(ids []int64) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(')')
	return b.String()
}

func (s *Store) eachRow(ctx context.Context, q string, fn func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// QueueUpdate changes one queued recipient's state.
type QueueUpdate struct {
	ID          int64
	State       string
	Reply       string
	NextAttempt time.Time
	Attempted   bool
	At          time.Time // of the attempt
}

// ApplyQueue records updates in one commit.
func (s *Store) ApplyQueue(ctx context.Context, us []QueueUpdate) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE queue_recipients SET state = ?,
			reply = CASE WHEN ? = '' THEN reply ELSE ? END,
			next_attempt = ?, attempts = attempts + ?, last_attempt = CASE WHEN ? THEN ? ELSE last_attempt END
			WHERE id = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, u := range us {
			att := 0
			if u.Attempted {
				att = 1
			}
			if _, err := st.ExecContext(ctx, u.State, u.Reply, u.Reply, unixOrZero(u.NextAttempt), att, u.Attempted, u.At.Unix(), u.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s: queue update: %w", s.path, err)
	}
	return nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// RecoverQueue makes recipients left sending by a stopped or killed
// server due again: each may or may not have been delivered, and a copy
// too many is better than a message lost. It returns how many.
func (s *Store) RecoverQueue(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE queue_recipients SET state = 'deferred', next_attempt = 0,
		reply = 'interrupted during delivery (may have been delivered)' WHERE state = 'sending'`)
	if err != nil {
		return 0, fmt.Errorf("store %s: recover queue: %w", s.path, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// PauseQueueGroup records a provider's pause in delivering the queue.
func (s *Store) PauseQueueGroup(ctx context.Context, p Pause) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO queue_pauses VALUES (?, ?, ?, ?)
		ON CONFLICT (grp) DO UPDATE SET until = excluded.until, cooldown_s = excluded.cooldown_s, reason = excluded.reason`,
		p.Group, p.Until.Unix(), int64(p.Cooldown/time.Second), p.Reason)
	if err != nil {
		return fmt.Errorf("store %s: pause: %w", s.path, err)
	}
	return nil
}

// QueuePauses returns the queue's provider pauses, ended ones included.
func (s *Store) QueuePauses(ctx context.Context) (map[string]Pause, error) {
	return s.pauses(ctx, `SELECT grp, until, cooldown_s, reason FROM queue_pauses`)
}

// Notice is a queued message whose sender is owed a notice: recipients
// that failed for good, or have waited past the warning delay.
type Notice struct {
	MessageID  int64
	From       string
	Received   time.Time
	Recipients []NoticeRecipient
}

// NoticeRecipient is one recipient a notice reports on.
type NoticeRecipient struct {
	ID          int64
	Rcpt        string
	State       string // bounced or failed: a failure; otherwise a delay
	Reply       string
	LastAttempt time.Time
}

// Failed reports whether the recipient failed for good.
func (r NoticeRecipient) Failed() bool { return r.State == StateBounced || r.State == StateFailed }

// QueueNotices returns the messages whose senders are owed a notice:
// failed recipients not yet reported, and (unless warnBefore is zero)
// recipients of messages received before warnBefore, still undelivered
// and not yet warned about. With ids, only those messages are looked at.
func (s *Store) QueueNotices(ctx context.Context, warnBefore time.Time, ids ...int64) ([]Notice, error) {
	failed := `SELECT r.message_id, r.id FROM queue_recipients r
		WHERE r.state IN ('bounced', 'failed') AND r.notified < 2`
	delayed := `SELECT r.message_id, r.id FROM queue_messages m JOIN queue_recipients r ON r.message_id = m.id
		WHERE m.received_at < ? AND r.state IN ('pending', 'deferred') AND r.notified = 0`
	if len(ids) > 0 {
		failed += ` AND r.message_id IN ` + idList(ids)
		delayed += ` AND m.id IN ` + idList(ids)
	}
	q := failed
	var args []any
	if !warnBefore.IsZero() {
		q += ` UNION ALL ` + delayed
		args = append(args, warnBefore.Unix())
	}
	rows, err := s.db.QueryContext(ctx, `SELECT m.id, m.mail_from, m.received_at, r.id, r.rcpt, r.state, r.reply, COALESCE(r.last_attempt, 0)
		FROM (`+q+`) o JOIN queue_messages m ON m.id = o.message_id JOIN queue_recipients r ON r.id = o.id
		ORDER BY m.id, r.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store %s: notices: %w", s.path, err)
	}
	defer rows.Close()
	var out []Notice
	for rows.Next() {
		var n Notice
		var r NoticeRecipient
		var recv, last int64
		if err := rows.Scan(&n.MessageID, &n.From, &recv, &r.ID, &r.Rcpt, &r.State, &r.Reply, &last); err != nil {
			return nil, err
		}
		if last > 0 {
			r.LastAttempt = time.Unix(last, 0)
		}
		if len(out) == 0 || out[len(out)-1].MessageID != n.MessageID {
			n.Received = time.Unix(recv, 0)
			out = append(out, n)
		}
		out[len(out)-1].Recipients = append(out[len(out)-1].Recipients, r)
	}
	return out, rows.Err()
}

// Notified records, in one commit, a notice about recipients: the DSN
// itself (nil when none is due, for the null sender) goes in the queue,
// failed ones are marked reported and delayed ones warned about. It
// returns the DSN's queue id, or 0.
func (s *Store) Notified(ctx context.Context, dsn *Queued, failed, delayed []int64) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if dsn != nil {
			var err error
			if id, err = insertQueued(ctx, tx, *dsn); err != nil {
				return err
			}
		}
		for _, r := range failed {
			if _, err := tx.ExecContext(ctx, `UPDATE queue_recipients SET notified = 2 WHERE id = ?`, r); err != nil {
				return err
			}
		}
		for _, r := range delayed {
			if _, err := tx.ExecContext(ctx, `UPDATE queue_recipients SET notified = 1 WHERE id = ? AND notified = 0`, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store %s: notice: %w", s.path, err)
	}
	return id, nil
}

// PurgeQueue deletes the messages that are done: every recipient
// delivered, or failed and reported. With ids, only those messages are
// looked at. It returns how many went.
func (s *Store) PurgeQueue(ctx context.Context, ids ...int64) (int, error) {
	q := `DELETE FROM queue_messages WHERE NOT EXISTS (
		SELECT 1 FROM queue_recipients r WHERE r.message_id = queue_messages.id
		AND (r.state NOT IN ('sent', 'bounced', 'failed') OR (r.state != 'sent' AND r.notified < 2)))`
	if len(ids) > 0 {
		q += ` AND id IN ` + idList(ids)
	}
	res, err := s.db.ExecContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("store %s: purge queue: %w", s.path, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
