package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// TallyBy says what Tallies groups a campaign's recipients by.
type TallyBy int

// What Tallies groups by.
const (
	ByGroup TallyBy = iota // the provider, or domain of its own
	ByJob
)

// Tally is a campaign's recipients of one group, or of one job, in one
// state.
type Tally struct {
	Group    string // with ByGroup
	Job      int    // with ByJob
	State    string
	N        int64
	Attempts int64
	// FirstAttempt is the earliest first attempt, FirstUpdate and
	// LastUpdate the earliest and latest state changes (zero if none).
	FirstAttempt, FirstUpdate, LastUpdate time.Time
}

// Tallies counts a campaign's recipients by group or job, and state. There
// is a row per group (or job) and state present: as many as the plan had
// groups or jobs, never one per recipient.
func (s *Store) Tallies(ctx context.Context, campaignID int64, by TallyBy) ([]Tally, error) {
	key := "grp"
	if by == ByJob {
		key = "job_seq"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+key+`, state, COUNT(*), SUM(attempts), COALESCE(MIN(first_attempt_at), 0),
		COALESCE(MIN(updated_at), 0), COALESCE(MAX(updated_at), 0)
		FROM recipients WHERE campaign_id = ? GROUP BY 1, 2 ORDER BY 1, 2`, campaignID)
	if err != nil {
		return nil, fmt.Errorf("store %s: tallies: %w", s.path, err)
	}
	defer rows.Close()
	var out []Tally
	for rows.Next() {
		var t Tally
		var first, fu, lu int64
		k := any(&t.Group)
		if by == ByJob {
			k = &t.Job
		}
		if err := rows.Scan(k, &t.State, &t.N, &t.Attempts, &first, &fu, &lu); err != nil {
			return nil, fmt.Errorf("store %s: tallies: %w", s.path, err)
		}
		t.FirstAttempt, t.FirstUpdate, t.LastUpdate = reportTime(first), reportTime(fu), reportTime(lu)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store %s: tallies: %w", s.path, err)
	}
	return out, nil
}

// SentBucket is how many of a group's recipients were sent within one
// bucket of a timeline.
type SentBucket struct {
	Index int // buckets since the origin
	Group string
	N     int64
}

// EachSentBucket streams the campaign's sent recipients counted per group
// and per bucket of width from origin, by the time each was recorded sent.
// SQLite does the counting: the rows are buckets times groups.
func (s *Store) EachSentBucket(ctx context.Context, campaignID int64, origin time.Time, width time.Duration, fn func(SentBucket) error) error {
	w := int64(width / time.Second)
	if w < 1 {
		return fmt.Errorf("store %s: sent per bucket: bucket width %s is under a second", s.path, width)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT (updated_at - ?) / ?, grp, COUNT(*) FROM recipients
		WHERE campaign_id = ? AND state = 'sent' AND updated_at >= ?
		GROUP BY 1, 2 ORDER BY 1, 2`, origin.Unix(), w, campaignID, origin.Unix())
	if err != nil {
		return fmt.Errorf("store %s: sent per bucket: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var b SentBucket
		if err := rows.Scan(&b.Index, &b.Group, &b.N); err != nil {
			return fmt.Errorf("store %s: sent per bucket: %w", s.path, err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store %s: sent per bucket: %w", s.path, err)
	}
	return nil
}

// Delivery is one recipient as a report lists it: where it stands and
// what the server last said.
type Delivery struct {
	Email    string
	Job      int
	Group    string
	State    string
	Attempts int
	Reply    string
	Updated  time.Time // the last state change; zero if none yet
}

// EachDelivery streams the campaign's recipients in sending order, job by
// job, or only those in state when state is not "". Nothing is held: a
// report of a million recipients reads them one at a time.
func (s *Store) EachDelivery(ctx context.Context, campaignID int64, state string, fn func(Delivery) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT email, job_seq, grp, state, attempts, reply, COALESCE(updated_at, 0)
		FROM recipients WHERE campaign_id = ? AND (? = '' OR state = ?) ORDER BY job_seq, slot, id`, campaignID, state, state)
	if err != nil {
		return fmt.Errorf("store %s: deliveries: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var d Delivery
		var updated int64
		if err := rows.Scan(&d.Email, &d.Job, &d.Group, &d.State, &d.Attempts, &d.Reply, &updated); err != nil {
			return fmt.Errorf("store %s: deliveries: %w", s.path, err)
		}
		d.Updated = reportTime(updated)
		if err := fn(d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store %s: deliveries: %w", s.path, err)
	}
	return nil
}

// BounceWidths returns the longest address and reply among the campaign's
// bounced recipients, in characters: a streamed table's column widths.
func (s *Store) BounceWidths(ctx context.Context, campaignID int64) (email, reply int, err error) {
	var e, r sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(length(email)), MAX(length(reply)) FROM recipients
		WHERE campaign_id = ? AND state = 'bounced'`, campaignID).Scan(&e, &r); err != nil {
		return 0, 0, fmt.Errorf("store %s: bounces: %w", s.path, err)
	}
	return int(e.Int64), int(r.Int64), nil
}

func reportTime(t int64) time.Time {
	if t <= 0 {
		return time.Time{}
	}
	return time.Unix(t, 0)
}
