// Package plan turns a recipient list into a campaign: the same checks as
// clean, then a split into jobs in which every provider's recipients are
// spread evenly, each job interleaving providers, with the shaping limits
// each provider tolerates, all stored so that a run never needs the list
// again.
package plan

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/store"
)

// Store is what planning needs from the database.
type Store interface {
	listclean.Store
	HasCampaign(ctx context.Context, name string) (bool, error)
	CreateCampaign(ctx context.Context, nc store.NewCampaign, replace bool) error
}

// Options configure a plan.
type Options struct {
	// Clean holds the list and the checks, as for relayctl clean; its
	// output paths are not used.
	Clean listclean.Options

	Name     string
	Replace  bool
	Template *message.Template // with its HTML alternative, if any

	// Attachments are sent with every message.
	Attachments []message.Attachment
	// Settings are the sender's choices (return path, VERP, unsubscribe,
	// Feedback-ID), fixed with the campaign.
	Settings message.Settings

	PerJob   int           // recipients per job at most
	Gap      time.Duration // between one job's end and the next's start
	Start    time.Time     // the first job's start
	NotAfter time.Time     // zero: jobs may start any time

	Connections   int // in total
	PerConnection int // messages per connection, at most (providers may want fewer)
	PerMessage    int // recipients per message, at most

	Table *Table
	Now   func() time.Time
}

// Result is a stored plan.
type Result struct {
	Campaign *store.Campaign
	Jobs     []store.Job
	Groups   []store.GroupLimits
	Summary  *listclean.Summary
}

// PlanError is a plan refused because of what the list or template hold.
type PlanError struct{ Msg string }

func (e *PlanError) Error() string { return e.Msg }

// maxOffenders is how many offending rows a refused plan lists.
const maxOffenders = 10

// sortMemory bounds the memory placing recipients in sending order takes.
const sortMemory = 32 << 20

// Plan checks the list, places every kept recipient in a job and stores
// the campaign. Nothing is stored unless everything succeeded.
func Plan(ctx context.Context, st Store, opt Options) (*Result, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := opt.validate(); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	// A composer checks, before the long passes, what every message needs:
	// one From address, usable settings.
	if _, err := message.NewComposer(message.Spec{Campaign: opt.Name, Template: opt.Template, Settings: opt.Settings,
		Attachments: opt.Attachments, Secret: secret}, opt.Now); err != nil {
		return nil, &PlanError{Msg: fmt.Sprintf("message: %v", err)}
	}
	if !opt.Replace {
		exists, err := st.HasCampaign(ctx, opt.Name)
		if err != nil {
			return nil, err
		}
		if exists {
			return nil, &PlanError{Msg: fmt.Sprintf("campaign %q already exists (plan again with --replace, or choose another --name)", opt.Name)}
		}
	}
	sp, err := newSpool(opt.Clean.TempDir)
	if err != nil {
		return nil, err
	}
	defer sp.remove()
	sink := &planSink{opt: &opt, spool: sp, counts: map[string]int64{}}
	opt.Clean.Store = st
	sum, err := listclean.Check(ctx, opt.Clean, sink)
	if err != nil {
		return nil, err
	}
	if sink.err != nil {
		return nil, sink.err
	}
	if len(sink.offenders) > 0 {
		msg := fmt.Sprintf("%s: the template cannot be filled for %d recipients: %s", opt.Clean.Input, sink.offending, strings.Join(sink.offenders, "; "))
		if sink.offending > int64(len(sink.offenders)) {
			msg += "; …"
		}
		if strings.Contains(msg, "is empty") {
			msg += ` (fill the column, or give the field a default: {{.name | default "…"}})`
		}
		return nil, &PlanError{Msg: msg}
	}
	if sum.Kept == 0 {
		return nil, &PlanError{Msg: fmt.Sprintf("%s: no recipients left after cleaning (%d rows, all rejected)", opt.Clean.Input, sum.Rows)}
	}

	split := NewSplit(sink.counts, opt.PerJob)
	groups := opt.groupLimits(split, sink.counts)
	jobs, notes := opt.schedule(split, groups)
	if !opt.NotAfter.IsZero() {
		if last := jobs[len(jobs)-1]; last.NotBefore.After(opt.NotAfter) {
			return nil, &PlanError{Msg: fmt.Sprintf("job %d would start at %s, after --not-after %s: widen --not-after, raise --per-job or shorten --gap",
				last.Seq, last.NotBefore.Format(time.RFC3339), opt.NotAfter.Format(time.RFC3339))}
		}
	}
	settings, err := json.Marshal(opt.Settings)
	if err != nil {
		return nil, err
	}
	c := &store.Campaign{
		Name: opt.Name, ListPath: absPath(opt.Clean.Input), CreatedAt: opt.Now(),
		Template: opt.Template.Source, HTMLTemplate: opt.Template.HTMLSource, Settings: string(settings), Secret: secret,
		Columns: sink.columns,
		PerJob:  opt.PerJob, Gap: opt.Gap, StartAt: opt.Start, NotAfter: opt.NotAfter, Conns: opt.Connections,
		RowsRead: sum.Rows, Recipients: sum.Kept, Rejected: sum.Rejected, Reasons: sum.Reasons, Notes: append([]string{}, notes...),
	}
	var atts []store.Attachment
	for _, a := range opt.Attachments {
		atts = append(atts, store.Attachment{Name: a.Name, ContentType: a.ContentType, Data: a.Data})
	}
	err = st.CreateCampaign(ctx, store.NewCampaign{
		Campaign: c, Groups: groups, Jobs: jobs, Attachments: atts,
		Recipients: func(add func(store.Recipient) error) error {
			return sp.inSendingOrder(split, opt.Clean.TempDir, sortMemory, func(r placed) error {
				return add(store.Recipient{Row: r.row, Email: r.email, Domain: r.domain, Group: r.group, Job: r.job, Slot: r.slot, Fields: r.fields})
			})
		},
	}, opt.Replace)
	if err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, &PlanError{Msg: fmt.Sprintf("campaign %q already exists (plan again with --replace, or choose another --name)", opt.Name)}
		}
		return nil, err
	}
	return &Result{Campaign: c, Jobs: jobs, Groups: groups, Summary: sum}, nil
}

func (opt *Options) validate() error {
	switch {
	case opt.Name == "":
		return &PlanError{Msg: "empty campaign name"}
	case opt.Template == nil:
		return &PlanError{Msg: "no message template"}
	case opt.PerJob < 1:
		return &PlanError{Msg: fmt.Sprintf("--per-job must be at least 1, got %d", opt.PerJob)}
	case opt.Gap < 0:
		return &PlanError{Msg: fmt.Sprintf("--gap must not be negative, got %s", opt.Gap)}
	case opt.Connections < 1:
		return &PlanError{Msg: fmt.Sprintf("--connections must be at least 1, got %d", opt.Connections)}
	case opt.PerConnection < 1:
		return &PlanError{Msg: fmt.Sprintf("--per-connection must be at least 1, got %d", opt.PerConnection)}
	case opt.PerMessage < 1:
		return &PlanError{Msg: fmt.Sprintf("--per-message must be at least 1, got %d", opt.PerMessage)}
	case !opt.NotAfter.IsZero() && !opt.NotAfter.After(opt.Start):
		return &PlanError{Msg: fmt.Sprintf("--not-after %s is not after --start %s", opt.NotAfter.Format(time.RFC3339), opt.Start.Format(time.RFC3339))}
	}
	if opt.Table == nil {
		opt.Table = DefaultTable()
	}
	return nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// planSink groups kept recipients, checks the template can be filled for
// each, and spools them for placing.
type planSink struct {
	opt       *Options
	spool     *spool
	counts    map[string]int64
	columns   []string // the template's columns, in header order
	index     []int    // their positions in the header
	offenders []string
	offending int64
	err       error
	values    map[string]string
}

func (s *planSink) Begin(ft listclean.Format) error {
	if err := s.opt.Template.CheckColumns(ft.Header); err != nil {
		return &PlanError{Msg: fmt.Sprintf("%s: %v", s.opt.Clean.Input, err)}
	}
	for _, f := range s.opt.Template.Fields() {
		i := slices.Index(ft.Header, f.Name)
		s.columns = append(s.columns, f.Name)
		s.index = append(s.index, i)
	}
	s.values = make(map[string]string, len(s.columns))
	return nil
}

func (s *planSink) Keep(row int64, rec []string, a listclean.Address, d listclean.DomainResult, _ []listclean.Warning) error {
	for i, c := range s.columns {
		s.values[c] = rec[s.index[i]]
	}
	if err := s.opt.Template.CheckValues(s.values); err != nil {
		s.offending++
		if len(s.offenders) < maxOffenders {
			s.offenders = append(s.offenders, fmt.Sprintf("row %d: %v", row, err))
		}
		return nil
	}
	if s.offending > 0 {
		return nil // the plan is refused; only count the rest
	}
	fields, err := json.Marshal(s.values)
	if err != nil {
		return err
	}
	group := s.opt.Table.Group(a.Domain, d.MX)
	s.counts[group]++
	return s.spool.add(spooled{row: row, email: a.String(), domain: a.Domain, group: group, fields: string(fields)})
}

func (s *planSink) Reject(int64, []string, string, string) error { return nil }

// groupLimits resolves each group's limits: the provider table's, capped
// by the command line's.
func (opt *Options) groupLimits(split *Split, counts map[string]int64) []store.GroupLimits {
	out := make([]store.GroupLimits, 0, len(counts))
	for _, g := range split.Groups() {
		l := opt.Table.LimitsFor(g)
		out = append(out, store.GroupLimits{
			Group:            g,
			Connections:      min(l.Connections, opt.Connections),
			PerConnection:    min(l.PerConnection, opt.PerConnection),
			PerMessage:       min(max(l.PerMessage, 1), opt.PerMessage),
			MaxConnectionAge: time.Duration(l.MaxConnectionAge),
			PerHour:          l.PerHour,
			Recipients:       counts[g],
		})
	}
	slices.SortStableFunc(out, func(a, b store.GroupLimits) int {
		if a.Recipients != b.Recipients {
			return int(b.Recipients - a.Recipients)
		}
		return strings.Compare(a.Group, b.Group)
	})
	return out
}

// schedule estimates each job's start: the first at Start, each next one
// Gap after the previous one's estimated end. A job's length is estimated
// from the hourly rates alone (a job without one is taken as instant). It
// also notes every provider whose hourly rate the gap cannot keep to.
func (opt *Options) schedule(split *Split, groups []store.GroupLimits) ([]store.Job, []string) {
	var notes []string
	limited := []store.GroupLimits{}
	for _, g := range groups {
		if g.PerHour > 0 {
			limited = append(limited, g)
			perJob := (g.Recipients + int64(split.Jobs) - 1) / int64(split.Jobs)
			// Each job sends its share at once, so a provider sees perJob
			// messages every gap: an hourly rate of perJob·1h/gap.
			if split.Jobs > 1 && (opt.Gap <= 0 || float64(perJob)*float64(time.Hour)/float64(opt.Gap) > float64(g.PerHour)) {
				need := time.Duration(math.Ceil(float64(perJob)*float64(time.Hour)/float64(g.PerHour)/float64(time.Minute))) * time.Minute
				rate := "back to back"
				if opt.Gap > 0 {
					rate = fmt.Sprintf("every %s is %.0f/h", opt.Gap, float64(perJob)*float64(time.Hour)/float64(opt.Gap))
				}
				notes = append(notes, fmt.Sprintf("%s: up to %d recipients a job %s, over its limit of %d/h: jobs will be slowed to keep to it; --gap %s keeps the schedule",
					g.Group, perJob, rate, g.PerHour, need))
			}
		}
	}
	jobs := make([]store.Job, split.Jobs)
	at := opt.Start
	for j := 1; j <= split.Jobs; j++ {
		job := store.Job{Seq: j, NotBefore: at, State: "pending", Recipients: split.JobSize(j), Providers: map[string]int64{}}
		for _, g := range split.Groups() {
			n := split.Count(g, j)
			if n == 0 {
				continue
			}
			name := g
			if !IsProvider(g) {
				name = "other"
			}
			job.Providers[name] += n
		}
		var length time.Duration
		for _, g := range limited {
			length = max(length, time.Duration(float64(split.Count(g.Group, j))/float64(g.PerHour)*float64(time.Hour)))
		}
		jobs[j-1] = job
		at = at.Add(length + opt.Gap)
	}
	return jobs, notes
}

// DefaultName is a campaign's name when --name is not given: the list's
// base name and the date.
func DefaultName(list string, now time.Time) string {
	base := strings.TrimSuffix(filepath.Base(list), filepath.Ext(list))
	return base + "-" + now.Format("2006-01-02")
}

// ReadTemplate reads and parses a message template file and, if htmlPath
// is not "", its HTML alternative.
func ReadTemplate(path, htmlPath string) (*message.Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &PlanError{Msg: fmt.Sprintf("--message %s: %v", path, unwrap(err))}
	}
	t, err := message.ParseTemplate(string(data))
	if err != nil {
		return nil, &PlanError{Msg: fmt.Sprintf("%s: %v", path, err)}
	}
	if htmlPath != "" {
		data, err := os.ReadFile(htmlPath)
		if err != nil {
			return nil, &PlanError{Msg: fmt.Sprintf("--html %s: %v", htmlPath, unwrap(err))}
		}
		if err := t.AddHTML(string(data)); err != nil {
			return nil, &PlanError{Msg: fmt.Sprintf("%s: %v", htmlPath, err)}
		}
	}
	return t, nil
}

// ReadAttachments reads the files to attach to every message.
func ReadAttachments(paths []string) ([]message.Attachment, error) {
	var out []message.Attachment
	var total int
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, &PlanError{Msg: fmt.Sprintf("--attach %s: %v", p, unwrap(err))}
		}
		if total += len(data); total > maxAttachments {
			return nil, &PlanError{Msg: fmt.Sprintf("--attach: %d bytes of attachments, more than %d MiB: every recipient would get them; link to the file instead", total, maxAttachments>>20)}
		}
		ct := mime.TypeByExtension(filepath.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(data)
		}
		out = append(out, message.Attachment{Name: filepath.Base(p), ContentType: ct, Data: data})
	}
	return out, nil
}

// maxAttachments bounds what a bulk message may carry: providers refuse
// large messages, and a campaign multiplies them.
const maxAttachments = 10 << 20

// MessageStore is what rebuilding a campaign's message needs.
type MessageStore interface {
	Attachments(ctx context.Context, campaignID int64) ([]store.Attachment, error)
}

// MessageSpec rebuilds a stored campaign's message: template, HTML,
// attachments, settings and secret. signer may be nil.
func MessageSpec(ctx context.Context, st MessageStore, c *store.Campaign, signer *message.Signer) (message.Spec, error) {
	spec := message.Spec{Campaign: c.Name, Secret: c.Secret, Signer: signer}
	t, err := message.ParseTemplate(c.Template)
	if err != nil {
		return spec, fmt.Errorf("campaign %s: template: %w", c.Name, err)
	}
	if c.HTMLTemplate != "" {
		if err := t.AddHTML(c.HTMLTemplate); err != nil {
			return spec, fmt.Errorf("campaign %s: html: %w", c.Name, err)
		}
	}
	spec.Template = t
	if err := json.Unmarshal([]byte(c.Settings), &spec.Settings); err != nil {
		return spec, fmt.Errorf("campaign %s: settings: %w", c.Name, err)
	}
	atts, err := st.Attachments(ctx, c.ID)
	if err != nil {
		return spec, err
	}
	for _, a := range atts {
		spec.Attachments = append(spec.Attachments, message.Attachment{Name: a.Name, ContentType: a.ContentType, Data: a.Data})
	}
	return spec, nil
}

// Values decodes a stored recipient's fields.
func Values(r store.Recipient) (map[string]string, error) {
	v := map[string]string{}
	if err := json.Unmarshal([]byte(r.Fields), &v); err != nil {
		return nil, fmt.Errorf("recipient row %d: fields: %w", r.Row, err)
	}
	return v, nil
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
