package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrLocked is returned when another live run holds a campaign.
var ErrLocked = errors.New("locked by another run")

// ErrLockLost is a heartbeat's error when another run took the lock over
// (this one was thought dead). It is an ErrLocked too.
var ErrLockLost = fmt.Errorf("%w: the run lock was taken over", ErrLocked)

// Lock is a held run lock: a campaign's, or the relay server's.
type Lock struct {
	s      *Store
	table  string // campaign_locks or server_locks
	col    string // its key column
	key    any
	holder string
}

// AcquireLock takes the campaign's run lock for holder. A lock whose
// heartbeat is older than stale, or whose holder on this host is dead
// (alive says so), is taken over.
func (s *Store) AcquireLock(ctx context.Context, campaignID int64, holder, host string, pid int, stale time.Duration, alive func(pid int) bool) (*Lock, error) {
	return s.acquire(ctx, &Lock{s: s, table: "campaign_locks", col: "campaign_id", key: campaignID, holder: holder}, host, pid, stale, alive)
}

// AcquireServerLock takes the lock named name (one relay server per
// database delivers its queue), on the same terms as AcquireLock.
func (s *Store) AcquireServerLock(ctx context.Context, name, holder, host string, pid int, stale time.Duration, alive func(pid int) bool) (*Lock, error) {
	return s.acquire(ctx, &Lock{s: s, table: "server_locks", col: "name", key: name, holder: holder}, host, pid, stale, alive)
}

func (s *Store) acquire(ctx context.Context, l *Lock, host string, pid int, stale time.Duration, alive func(pid int) bool) (*Lock, error) {
	now := time.Now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var hhost string
		var hpid int
		var beat int64
		err := tx.QueryRowContext(ctx, `SELECT host, pid, heartbeat FROM `+l.table+` WHERE `+l.col+` = ?`, l.key).Scan(&hhost, &hpid, &beat)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		default:
			dead := hhost == host && alive != nil && !alive(hpid)
			if !dead && now.Sub(time.Unix(beat, 0)) < stale {
				return fmt.Errorf("%w: pid %d on %s, last seen %s ago", ErrLocked, hpid, hhost, now.Sub(time.Unix(beat, 0)).Round(time.Second))
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO `+l.table+` (`+l.col+`, holder, host, pid, heartbeat) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (`+l.col+`) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid, heartbeat = excluded.heartbeat`,
			l.key, l.holder, host, pid, now.Unix())
		return err
	})
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, err
		}
		return nil, fmt.Errorf("store %s: lock: %w", s.path, err)
	}
	return l, nil
}

// Heartbeat says the holder is alive; it fails if the lock was taken over.
func (l *Lock) Heartbeat(ctx context.Context) error {
	res, err := l.s.db.ExecContext(ctx, `UPDATE `+l.table+` SET heartbeat = ? WHERE `+l.col+` = ? AND holder = ?`, time.Now().Unix(), l.key, l.holder)
	if err != nil {
		return fmt.Errorf("store %s: heartbeat: %w", l.s.path, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store %s: %w", l.s.path, ErrLockLost)
	}
	return nil
}

// Release gives the lock up.
func (l *Lock) Release(ctx context.Context) error {
	_, err := l.s.db.ExecContext(ctx, `DELETE FROM `+l.table+` WHERE `+l.col+` = ? AND holder = ?`, l.key, l.holder)
	return err
}

// Due is a recipient whose delivery is due.
type Due struct {
	ID             int64
	Row            int64
	Email, Domain  string
	Group          string
	Fields         string
	State          string
	Attempts       int
	FirstAttemptAt time.Time // zero before the first attempt
}

// Cursor is a position in a job's sending order.
type Cursor struct {
	Slot float64
	ID   int64
}

// Start is the cursor before a job's first recipient.
var Start = Cursor{Slot: -1}

// DueRecipients returns up to limit of job's recipients after cur, in
// sending order, that are pending, deferred and due by now, or left
// sending by a run that died; and the cursor after the last one.
func (s *Store) DueRecipients(ctx context.Context, campaignID int64, job int, now time.Time, cur Cursor, limit int) ([]Due, Cursor, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, row, email, domain, grp, fields, state, attempts, COALESCE(first_attempt_at, 0), slot
		FROM recipients WHERE campaign_id = ? AND job_seq = ? AND (slot > ? OR slot = ? AND id > ?)
		AND state IN ('pending', 'deferred', 'sending') AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
		ORDER BY slot, id LIMIT ?`, campaignID, job, cur.Slot, cur.Slot, cur.ID, now.Unix(), limit)
	if err != nil {
		return nil, cur, fmt.Errorf("store %s: due recipients: %w", s.path, err)
	}
	defer rows.Close()
	var list []Due
	for rows.Next() {
		var d Due
		var first int64
		if err := rows.Scan(&d.ID, &d.Row, &d.Email, &d.Domain, &d.Group, &d.Fields, &d.State, &d.Attempts, &first, &cur.Slot); err != nil {
			return nil, cur, fmt.Errorf("store %s: due recipients: %w", s.path, err)
		}
		cur.ID = d.ID
		if first > 0 {
			d.FirstAttemptAt = time.Unix(first, 0)
		}
		list = append(list, d)
	}
	return list, cur, rows.Err()
}

// CountDue counts what DueRecipients would return for the whole job.
func (s *Store) CountDue(ctx context.Context, campaignID int64, job int, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM recipients WHERE campaign_id = ? AND job_seq = ?
		AND state IN ('pending', 'deferred', 'sending') AND (next_attempt_at IS NULL OR next_attempt_at <= ?)`, campaignID, job, now.Unix()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store %s: due recipients: %w", s.path, err)
	}
	return n, nil
}

// Update is a change of one recipient's state.
type Update struct {
	ID          int64
	State       string
	Reply       string
	NextAttempt time.Time // for deferred
	Attempted   bool      // counts as an attempt
	// Suppress puts Email on the suppression list with Reason.
	Suppress bool
	Email    string
	Reason   string
}

// Apply writes updates in one transaction: a batch from every connection
// is one commit (group commit), durable when Apply returns.
func (s *Store) Apply(ctx context.Context, campaign string, updates []Update) error {
	if len(updates) == 0 {
		return nil
	}
	now := time.Now().Unix()
	// A run's batches are mostly sending marks, which a lighter statement
	// writes; when no recipient is updated twice the order does not
	// matter and they go apart.
	var marks []int64
	rest, rows := updates, 1 // a recipient updated twice: one by one, in order
	if distinct(updates) {
		rows = applyRows
		rest = make([]Update, 0, len(updates))
		for _, u := range updates {
			if u.State == StateSending && u.Reply == "" && !u.Attempted && u.NextAttempt.IsZero() && !u.Suppress {
				marks = append(marks, u.ID)
			} else {
				rest = append(rest, u)
			}
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for len(marks) > 0 {
			n := min(len(marks), applyRows)
			stmt, err := s.markStmt(ctx, n)
			if err != nil {
				return err
			}
			args := make([]any, 0, 1+n)
			args = append(args, now)
			for _, id := range marks[:n] {
				args = append(args, id)
			}
			if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
				return err
			}
			marks = marks[n:]
		}
		// Up to applyRows updates go in one statement: a statement's
		// execution costs as much again as the row it changes.
		for len(rest) > 0 {
			n := min(len(rest), rows)
			stmt, err := s.applyStmt(ctx, n)
			if err != nil {
				return err
			}
			args := make([]any, 0, 1+5*n)
			args = append(args, now)
			for _, u := range rest[:n] {
				var next any
				if !u.NextAttempt.IsZero() {
					next = u.NextAttempt.Unix()
				}
				att := 0
				if u.Attempted {
					att = 1
				}
				args = append(args, u.ID, u.State, u.Reply, next, att)
			}
			if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
				return err
			}
			rest = rest[n:]
		}
		for _, u := range updates {
			if !u.Suppress {
				continue
			}
			// Keyed as clean and suppress key addresses (SQLite's lower()
			// would leave a UTF-8 local part's capitals).
			if _, err := tx.ExecContext(ctx, `INSERT INTO suppressions (value, kind, reason, source, created_at) VALUES (?, 'address', ?, ?, ?)
				ON CONFLICT (value) DO NOTHING`, strings.ToLower(u.Email), u.Reason, campaign, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s: record outcomes: %w", s.path, err)
	}
	return nil
}

// applyRows is the most updates one statement carries.
const applyRows = 32

// distinct reports whether no recipient appears twice in us.
func distinct(us []Update) bool {
	if len(us) <= 16 {
		for i := 1; i < len(us); i++ {
			for j := range i {
				if us[j].ID == us[i].ID {
					return false
				}
			}
		}
		return true
	}
	seen := make(map[int64]bool, len(us))
	for _, u := range us {
		if seen[u.ID] {
			return false
		}
		seen[u.ID] = true
	}
	return true
}

// markStmt returns the statement marking n recipients sending, prepared
// once for the store.
func (s *Store) markStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if st := s.markStmts[n]; st != nil {
		return st, nil
	}
	ids := strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
	st, err := s.db.PrepareContext(ctx, `UPDATE recipients SET state = 'sending', next_attempt_at = NULL, updated_at = ?1 WHERE id IN (`+ids+`)`)
	if err != nil {
		return nil, err
	}
	if s.markStmts == nil {
		s.markStmts = map[int]*sql.Stmt{}
	}
	s.markStmts[n] = st
	return st, nil
}

// applyStmt returns the statement updating n recipients, prepared once
// for the store: a run commits thousands of times.
func (s *Store) applyStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if st := s.applyStmts[n]; st != nil {
		return st, nil
	}
	var rows strings.Builder
	for i := range n {
		if i > 0 {
			rows.WriteString(", ")
		}
		p := 2 + 5*i
		fmt.Fprintf(&rows, "(?%d, ?%d, ?%d, ?%d, ?%d)", p, p+1, p+2, p+3, p+4)
	}
	// ?1 is now; each row is id, state, reply ('' keeps the last one),
	// next attempt, and 1 if this was an attempt.
	st, err := s.db.PrepareContext(ctx, `UPDATE recipients SET state = v.column2,
		reply = CASE WHEN v.column3 = '' THEN recipients.reply ELSE v.column3 END,
		next_attempt_at = v.column4, attempts = recipients.attempts + v.column5,
		first_attempt_at = COALESCE(recipients.first_attempt_at, CASE WHEN v.column5 THEN ?1 END),
		updated_at = ?1
		FROM (VALUES `+rows.String()+`) AS v WHERE recipients.id = v.column1`)
	if err != nil {
		return nil, err
	}
	if s.applyStmts == nil {
		s.applyStmts = map[int]*sql.Stmt{}
	}
	s.applyStmts[n] = st
	return st, nil
}

// CountResent counts the recipients a dead run left sending, adds them to
// the campaign's possible duplicates and returns how many there were.
func (s *Store) CountResent(ctx context.Context, campaignID int64) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recipients WHERE campaign_id = ? AND state = 'sending'`, campaignID).Scan(&n); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE campaigns SET possible_dups = possible_dups + ? WHERE id = ?`, n, campaignID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", s.path, err)
	}
	return n, nil
}

// SetCampaignState records the campaign's state and why.
func (s *Store) SetCampaignState(ctx context.Context, campaignID int64, state, detail string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE campaigns SET state = ?, state_detail = ? WHERE id = ?`, state, detail, campaignID)
	if err != nil {
		return fmt.Errorf("store %s: campaign state: %w", s.path, err)
	}
	return nil
}

// SetJobState records a job's state; started and finished are set when
// not zero.
func (s *Store) SetJobState(ctx context.Context, campaignID int64, seq int, state string, started, finished time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = ?, started_at = COALESCE(?, started_at), finished_at = COALESCE(?, finished_at)
		WHERE campaign_id = ? AND seq = ?`, state, nullTime(started), nullTime(finished), campaignID, seq)
	if err != nil {
		return fmt.Errorf("store %s: job state: %w", s.path, err)
	}
	return nil
}

// JobTimes returns when each job started and finished (zero if not).
func (s *Store) JobTimes(ctx context.Context, campaignID int64) (map[int][2]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, COALESCE(started_at, 0), COALESCE(finished_at, 0) FROM jobs WHERE campaign_id = ?`, campaignID)
	if err != nil {
		return nil, fmt.Errorf("store %s: jobs: %w", s.path, err)
	}
	defer rows.Close()
	out := map[int][2]time.Time{}
	for rows.Next() {
		var seq int
		var a, b int64
		if err := rows.Scan(&seq, &a, &b); err != nil {
			return nil, err
		}
		var t [2]time.Time
		if a > 0 {
			t[0] = time.Unix(a, 0)
		}
		if b > 0 {
			t[1] = time.Unix(b, 0)
		}
		out[seq] = t
	}
	return out, rows.Err()
}

// Pause is a provider resting after throttling the sender.
type Pause struct {
	Group    string
	Until    time.Time
	Cooldown time.Duration
	Reason   string
}

// PauseGroup records a pause, replacing an older one.
func (s *Store) PauseGroup(ctx context.Context, campaignID int64, p Pause) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO provider_pauses VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (campaign_id, grp) DO UPDATE SET until = excluded.until, cooldown_s = excluded.cooldown_s, reason = excluded.reason`,
		campaignID, p.Group, p.Until.Unix(), int64(p.Cooldown/time.Second), p.Reason)
	if err != nil {
		return fmt.Errorf("store %s: pause: %w", s.path, err)
	}
	return nil
}

// Pauses returns the campaign's provider pauses, ended ones included (their
// cooldown doubles if the provider throttles again).
func (s *Store) Pauses(ctx context.Context, campaignID int64) (map[string]Pause, error) {
	return s.pauses(ctx, `SELECT grp, until, cooldown_s, reason FROM provider_pauses WHERE campaign_id = ?`, campaignID)
}

// pauses reads pauses from q's rows: group, until, cooldown, reason.
func (s *Store) pauses(ctx context.Context, q string, args ...any) (map[string]Pause, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store %s: pauses: %w", s.path, err)
	}
	defer rows.Close()
	out := map[string]Pause{}
	for rows.Next() {
		var p Pause
		var until, cd int64
		if err := rows.Scan(&p.Group, &until, &cd, &p.Reason); err != nil {
			return nil, err
		}
		p.Until, p.Cooldown = time.Unix(until, 0), time.Duration(cd)*time.Second
		out[p.Group] = p
	}
	return out, rows.Err()
}

// Counts are recipients by state, for the campaign and per job.
type Counts struct {
	Total map[string]int64
	Jobs  map[int]map[string]int64
}

// States lists every recipient state, in the order reports show them.
var States = []string{StatePending, StateSending, StateSent, StateDeferred, StateBounced, StateFailed, StateSuppressed}

// CampaignCounts counts a campaign's recipients by job and state.
func (s *Store) CampaignCounts(ctx context.Context, campaignID int64) (Counts, error) {
	c := Counts{Total: map[string]int64{}, Jobs: map[int]map[string]int64{}}
	for _, st := range States {
		c.Total[st] = 0
	}
	rows, err := s.db.QueryContext(ctx, `SELECT job_seq, state, COUNT(*) FROM recipients WHERE campaign_id = ? GROUP BY job_seq, state`, campaignID)
	if err != nil {
		return c, fmt.Errorf("store %s: counts: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var job int
		var state string
		var n int64
		if err := rows.Scan(&job, &state, &n); err != nil {
			return c, err
		}
		if c.Jobs[job] == nil {
			c.Jobs[job] = map[string]int64{}
			for _, st := range States {
				c.Jobs[job][st] = 0
			}
		}
		c.Jobs[job][state] += n
		c.Total[state] += n
	}
	return c, rows.Err()
}

// NextDue returns the earliest next attempt among the campaign's deferred
// recipients (zero if none).
func (s *Store) NextDue(ctx context.Context, campaignID int64) (time.Time, error) {
	var t sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM recipients WHERE campaign_id = ? AND state = 'deferred'`, campaignID).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("store %s: next due: %w", s.path, err)
	}
	if !t.Valid {
		return time.Time{}, nil
	}
	return time.Unix(t.Int64, 0), nil
}
