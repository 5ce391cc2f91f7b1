package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Recipient states.
const (
	StatePending    = "pending"
	StateSending    = "sending"
	StateSent       = "sent"
	StateDeferred   = "deferred"
	StateBounced    = "bounced"
	StateFailed     = "failed"
	StateSuppressed = "suppressed"
)

// ErrNotFound is returned for a campaign that does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned when creating a campaign whose name is taken.
var ErrExists = errors.New("already exists")

// Campaign is a planned mailing.
type Campaign struct {
	ID         int64
	Name       string
	State      string
	ListPath   string
	CreatedAt  time.Time
	Template   string
	Columns    []string // the list columns the template uses
	PerJob     int
	Gap        time.Duration
	StartAt    time.Time
	NotAfter   time.Time // zero: no limit
	Conns      int
	RowsRead   int64
	Recipients int64
	Rejected   int64
	Reasons    map[string]int64
	Notes      []string

	PossibleDups int64  // messages a dead run may have sent already, resent
	StateDetail  string // why the campaign is in its state

	HTMLTemplate string // "" for none
	Settings     string // JSON: the message settings fixed at plan time
	Secret       []byte // keys the per-recipient tokens
}

// Attachment is a file sent with every message of a campaign.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// GroupLimits are the shaping limits of one group of a campaign.
type GroupLimits struct {
	Group            string
	Connections      int
	PerConnection    int
	PerMessage       int
	MaxConnectionAge time.Duration
	PerHour          int
	Recipients       int64
}

// Job is one batch of a campaign.
type Job struct {
	Seq        int
	NotBefore  time.Time
	State      string
	Recipients int64
	Providers  map[string]int64 // planned recipients by provider ("other" for domains of their own)
}

// Recipient is one planned delivery.
type Recipient struct {
	Row    int64
	Email  string
	Domain string
	Group  string
	Job    int
	Slot   float64
	Fields string // JSON object of the columns the template uses
}

// NewCampaign is everything CreateCampaign writes.
type NewCampaign struct {
	Campaign    *Campaign
	Groups      []GroupLimits
	Jobs        []Job
	Attachments []Attachment
	// Recipients calls add for every recipient; an error from add, or
	// its own, aborts the whole creation.
	Recipients func(add func(Recipient) error) error
}

// CreateCampaign writes a campaign, its jobs and recipients in one
// transaction: it exists whole or not at all. With replace, a campaign of
// the same name is deleted first, provided it has not sent anything.
func (s *Store) CreateCampaign(ctx context.Context, nc NewCampaign, replace bool) error {
	c := nc.Campaign
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// A bulk insert wants a big page cache; the connection goes back
		// to the pool with the usual one.
		if _, err := tx.ExecContext(ctx, `PRAGMA cache_size = -65536`); err != nil {
			return err
		}
		defer tx.ExecContext(context.WithoutCancel(ctx), `PRAGMA cache_size = -2048`)
		var oldID int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM campaigns WHERE name = ?`, c.Name).Scan(&oldID)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		case !replace:
			return fmt.Errorf("campaign %q %w", c.Name, ErrExists)
		default:
			var touched int64
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recipients WHERE campaign_id = ? AND state NOT IN ('pending', 'suppressed')`, oldID).Scan(&touched); err != nil {
				return err
			}
			if touched > 0 {
				return fmt.Errorf("campaign %q has %d recipients past pending: it has started sending, so it cannot be replaced; choose another name", c.Name, touched)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM campaigns WHERE id = ?`, oldID); err != nil {
				return err
			}
		}
		cols, _ := json.Marshal(c.Columns)
		reasons, _ := json.Marshal(c.Reasons)
		notes, _ := json.Marshal(nonNil(c.Notes))
		settings := c.Settings
		if settings == "" {
			settings = "{}"
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO campaigns (name, state, list_path, created_at, template, columns, per_job, gap_s, start_at, not_after,
			connections, rows_read, recipients, rejected, reasons, notes, html_template, settings, secret)
			VALUES (?, 'planned', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Name, c.ListPath, c.CreatedAt.Unix(), c.Template, string(cols), c.PerJob, int64(c.Gap/time.Second), c.StartAt.Unix(),
			nullTime(c.NotAfter), c.Conns, c.RowsRead, c.Recipients, c.Rejected, string(reasons), string(notes),
			c.HTMLTemplate, settings, nonNilBytes(c.Secret))
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		c.ID, c.State = id, "planned"
		for i, a := range nc.Attachments {
			if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_attachments VALUES (?, ?, ?, ?, ?)`, id, i+1, a.Name, a.ContentType, a.Data); err != nil {
				return err
			}
		}
		for _, g := range nc.Groups {
			if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, g.Group, g.Connections,
				g.PerConnection, g.PerMessage, int64(g.MaxConnectionAge/time.Second), g.PerHour, g.Recipients); err != nil {
				return err
			}
		}
		for _, j := range nc.Jobs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (campaign_id, seq, not_before, recipients) VALUES (?, ?, ?, ?)`,
				id, j.Seq, j.NotBefore.Unix(), j.Recipients); err != nil {
				return err
			}
			for p, n := range j.Providers {
				if _, err := tx.ExecContext(ctx, `INSERT INTO job_providers VALUES (?, ?, ?, ?)`, id, j.Seq, p, n); err != nil {
					return err
				}
			}
		}
		ins := &recipientInserter{ctx: ctx, tx: tx, campaign: id}
		defer ins.close()
		if err := nc.Recipients(ins.add); err != nil {
			return err
		}
		return ins.flush()
	})
	if err != nil {
		return fmt.Errorf("store %s: create campaign %q: %w", s.path, c.Name, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

const campaignColumns = `id, name, state, list_path, created_at, template, columns, per_job, gap_s, start_at, not_after,
	connections, rows_read, recipients, rejected, reasons, notes, html_template, settings, secret, possible_dups, state_detail`

func scanCampaign(row interface{ Scan(...any) error }) (*Campaign, error) {
	var c Campaign
	var created, gap, start int64
	var notAfter sql.NullInt64
	var cols, reasons, notes string
	if err := row.Scan(&c.ID, &c.Name, &c.State, &c.ListPath, &created, &c.Template, &cols, &c.PerJob, &gap, &start, &notAfter,
		&c.Conns, &c.RowsRead, &c.Recipients, &c.Rejected, &reasons, &notes, &c.HTMLTemplate, &c.Settings, &c.Secret, &c.PossibleDups, &c.StateDetail); err != nil {
		return nil, err
	}
	c.CreatedAt, c.Gap, c.StartAt = time.Unix(created, 0), time.Duration(gap)*time.Second, time.Unix(start, 0)
	if notAfter.Valid {
		c.NotAfter = time.Unix(notAfter.Int64, 0)
	}
	if err := errors.Join(json.Unmarshal([]byte(cols), &c.Columns), json.Unmarshal([]byte(reasons), &c.Reasons),
		json.Unmarshal([]byte(notes), &c.Notes)); err != nil {
		return nil, fmt.Errorf("campaign %s: %w", c.Name, err)
	}
	return &c, nil
}

// Campaigns lists every campaign, newest first.
func (s *Store) Campaigns(ctx context.Context) ([]*Campaign, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+campaignColumns+` FROM campaigns ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("store %s: list campaigns: %w", s.path, err)
	}
	defer rows.Close()
	var out []*Campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, fmt.Errorf("store %s: list campaigns: %w", s.path, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Campaign returns the named campaign with its jobs and groups.
func (s *Store) Campaign(ctx context.Context, name string) (*Campaign, []Job, []GroupLimits, error) {
	c, err := scanCampaign(s.db.QueryRowContext(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE name = ?`, name))
	if err == sql.ErrNoRows {
		return nil, nil, nil, fmt.Errorf("campaign %q %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store %s: campaign %q: %w", s.path, name, err)
	}
	jobs, err := s.jobs(ctx, c.ID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store %s: campaign %q: %w", s.path, name, err)
	}
	groups, err := s.groups(ctx, c.ID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store %s: campaign %q: %w", s.path, name, err)
	}
	return c, jobs, groups, nil
}

func (s *Store) jobs(ctx context.Context, id int64) ([]Job, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT j.seq, j.not_before, j.state, j.recipients, p.provider, p.recipients
		FROM jobs j LEFT JOIN job_providers p ON p.campaign_id = j.campaign_id AND p.seq = j.seq
		WHERE j.campaign_id = ? ORDER BY j.seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jobs []Job
	for rows.Next() {
		var j Job
		var nb int64
		var prov sql.NullString
		var n sql.NullInt64
		if err := rows.Scan(&j.Seq, &nb, &j.State, &j.Recipients, &prov, &n); err != nil {
			return nil, err
		}
		if len(jobs) == 0 || jobs[len(jobs)-1].Seq != j.Seq {
			j.NotBefore, j.Providers = time.Unix(nb, 0), map[string]int64{}
			jobs = append(jobs, j)
		}
		if prov.Valid {
			jobs[len(jobs)-1].Providers[prov.String] = n.Int64
		}
	}
	return jobs, rows.Err()
}

func (s *Store) groups(ctx context.Context, id int64) ([]GroupLimits, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT grp, connections, per_connection, per_message, max_conn_age_s, per_hour, recipients
		FROM campaign_groups WHERE campaign_id = ? ORDER BY recipients DESC, grp`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []GroupLimits
	for rows.Next() {
		var g GroupLimits
		var age int64
		if err := rows.Scan(&g.Group, &g.Connections, &g.PerConnection, &g.PerMessage, &age, &g.PerHour, &g.Recipients); err != nil {
			return nil, err
		}
		g.MaxConnectionAge = time.Duration(age) * time.Second
		out = append(out, g)
	}
	return out, rows.Err()
}

// EachRecipient streams a campaign's recipients in sending order: job by
// job, slot by slot.
func (s *Store) EachRecipient(ctx context.Context, campaignID int64, fn func(Recipient, string) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT row, email, domain, grp, job_seq, slot, fields, state FROM recipients
		WHERE campaign_id = ? ORDER BY job_seq, slot, grp`, campaignID)
	if err != nil {
		return fmt.Errorf("store %s: recipients: %w", s.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Recipient
		var state string
		if err := rows.Scan(&r.Row, &r.Email, &r.Domain, &r.Group, &r.Job, &r.Slot, &r.Fields, &state); err != nil {
			return fmt.Errorf("store %s: recipients: %w", s.path, err)
		}
		if err := fn(r, state); err != nil {
			return err
		}
	}
	return rows.Err()
}

// HasCampaign reports whether a campaign of that name exists.
func (s *Store) HasCampaign(ctx context.Context, name string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM campaigns WHERE name = ?`, name).Scan(&n); err != nil {
		return false, fmt.Errorf("store %s: campaign %q: %w", s.path, name, err)
	}
	return n > 0, nil
}

// recipientInserter writes recipients many rows to a statement: a bulk
// plan is mostly per-statement overhead otherwise.
type recipientInserter struct {
	ctx      context.Context
	tx       *sql.Tx
	campaign int64
	full     *sql.Stmt
	args     []any
}

const insertBatch = 128

func (ins *recipientInserter) add(r Recipient) error {
	ins.args = append(ins.args, ins.campaign, r.Job, r.Slot, r.Row, r.Email, r.Domain, r.Group, r.Fields)
	if len(ins.args) == insertBatch*8 {
		if ins.full == nil {
			var err error
			if ins.full, err = ins.tx.PrepareContext(ins.ctx, insertRecipients(insertBatch)); err != nil {
				return err
			}
		}
		if _, err := ins.full.ExecContext(ins.ctx, ins.args...); err != nil {
			return err
		}
		ins.args = ins.args[:0]
	}
	return nil
}

func (ins *recipientInserter) flush() error {
	if len(ins.args) == 0 {
		return nil
	}
	_, err := ins.tx.ExecContext(ins.ctx, insertRecipients(len(ins.args)/8), ins.args...)
	ins.args = ins.args[:0]
	return err
}

func (ins *recipientInserter) close() {
	if ins.full != nil {
		ins.full.Close()
	}
}

func insertRecipients(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO recipients (campaign_id, job_seq, slot, row, email, domain, grp, fields) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// Attachments returns a campaign's attachments in order.
func (s *Store) Attachments(ctx context.Context, campaignID int64) ([]Attachment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, content_type, data FROM campaign_attachments WHERE campaign_id = ? ORDER BY seq`, campaignID)
	if err != nil {
		return nil, fmt.Errorf("store %s: attachments: %w", s.path, err)
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		var a Attachment
		if err := rows.Scan(&a.Name, &a.ContentType, &a.Data); err != nil {
			return nil, fmt.Errorf("store %s: attachments: %w", s.path, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// FindRecipient returns the campaign's recipient with that address (any
// case) or, with email empty, from that list row.
func (s *Store) FindRecipient(ctx context.Context, campaignID int64, email string, row int64) (Recipient, error) {
	q := `SELECT row, email, domain, grp, job_seq, slot, fields FROM recipients WHERE campaign_id = ? AND `
	arg := any(row)
	if email != "" {
		q, arg = q+`lower(email) = lower(?)`, email
	} else {
		q += `row = ?`
	}
	var r Recipient
	err := s.db.QueryRowContext(ctx, q+` LIMIT 1`, campaignID, arg).Scan(&r.Row, &r.Email, &r.Domain, &r.Group, &r.Job, &r.Slot, &r.Fields)
	if err == sql.ErrNoRows {
		return r, fmt.Errorf("recipient %w", ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("store %s: recipient: %w", s.path, err)
	}
	return r, nil
}
