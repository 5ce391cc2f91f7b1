package plan_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/message"
	"github.com/relayctl/relayctl/plan"
	"github.com/relayctl/relayctl/store"
)

// testProviders maps reserved domains to providers, so that planning
// without MX checks groups them as it would real ones.
const testProviders = `
# ParseTable wants a complete table; these are the embedded defaults.
default: {connections: 10, per_connection: 100}
providers:
  - {name: microsoft, domains: [hotmail.test, outlook.test]}
  - {name: google, domains: [gmail.test]}
  - {name: yahoo, domains: [yahoo.test]}
`

var start = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func providerTable(t *testing.T, override string) *plan.Table {
	t.Helper()
	o, err := plan.ParseTable([]byte(override))
	if err != nil {
		t.Fatalf("ParseTable: %v", err)
	}
	tab, err := plan.DefaultTable().Override(o)
	if err != nil {
		t.Fatalf("Override: %v", err)
	}
	return tab
}

// planEnv is a directory for lists and templates, a store, and a
// temporary directory that must be empty again after every plan.
type planEnv struct {
	dir, tmp string
	st       *store.Store
}

func newPlanEnv(t *testing.T) *planEnv {
	t.Helper()
	e := &planEnv{dir: t.TempDir(), tmp: t.TempDir()}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "relayctl.db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	return e
}

func (e *planEnv) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const stdTemplate = "From: News <news@example.com>\n" +
	"Subject: Hello {{.first}}\n" +
	"\n" +
	"Dear {{.first}},\n"

// bigTemplate also uses an optional column.
const bigTemplate = "From: News <news@example.com>\n" +
	"Subject: Hello {{.first}}\n" +
	"\n" +
	"Dear {{.first}}{{if .company}} of {{.company}}{{end}},\n"

func tmpl(t *testing.T, src string) *message.Template {
	t.Helper()
	tm, err := message.ParseTemplate(src)
	if err != nil {
		t.Fatalf("ParseTemplate: %v", err)
	}
	return tm
}

// options plans list under name with the test provider table, jobs of
// 1,000, 10 minutes apart.
func (e *planEnv) options(t *testing.T, list, name string) plan.Options {
	return plan.Options{
		Clean:    listclean.Options{Input: list, TempDir: e.tmp},
		Name:     name,
		Template: tmpl(t, stdTemplate),
		PerJob:   1000, Gap: 10 * time.Minute, Start: start,
		Connections: 4, PerConnection: 100, PerMessage: 1,
		Table: providerTable(t, testProviders),
		Now:   func() time.Time { return start.Add(-time.Hour) },
	}
}

func (e *planEnv) plan(t *testing.T, opt plan.Options) *plan.Result {
	t.Helper()
	res, err := plan.Plan(context.Background(), e.st, opt)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	e.checkTempEmpty(t)
	return res
}

func (e *planEnv) checkTempEmpty(t *testing.T) {
	t.Helper()
	left, err := os.ReadDir(e.tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("the temporary directory holds %d files after planning, e.g. %s", len(left), left[0].Name())
	}
}

func (e *planEnv) campaigns(t *testing.T) []*store.Campaign {
	t.Helper()
	cs, err := e.st.Campaigns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (e *planEnv) recipients(t *testing.T, id int64) []store.Recipient {
	t.Helper()
	var out []store.Recipient
	err := e.st.EachRecipient(context.Background(), id, func(r store.Recipient, state string) error {
		if state != store.StatePending {
			t.Errorf("recipient %s is %s, want pending", r.Email, state)
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// keptRow is a row the generated list keeps.
type keptRow struct {
	email, first, company, group string
}

// bigList writes a list of 15,000 good rows, 800 of them at hotmail.test,
// and 50 rows to reject (syntax, duplicates, missing), in a fixed random
// order. It returns the kept rows by row number (the header is row 1).
func (e *planEnv) bigList(t *testing.T) (string, map[int64]keptRow) {
	t.Helper()
	type row struct {
		rec   []string
		group string // "" for a row to reject
	}
	var rows []row
	add := func(n int, domain, group string) {
		for range n {
			i := len(rows)
			company := ""
			if i%3 == 0 {
				company = fmt.Sprintf("Example %d Ltd", i)
			}
			rows = append(rows, row{[]string{fmt.Sprintf("user%05d@%s", i, domain), fmt.Sprintf("First%d", i), company}, group})
		}
	}
	add(800, "hotmail.test", "microsoft")
	add(3000, "gmail.test", "google")
	add(2100, "yahoo.test", "yahoo")
	add(2000, "example.com", "example.com")
	add(1000, "example.org", "example.org")
	add(999, "example.net", "example.net")
	for i := range 51 {
		d := fmt.Sprintf("d%02d.example", i)
		add(100, d, d)
	}
	add(1, "lonely.example", "lonely.example")
	good := len(rows) // 15,000
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })

	// Rejects: syntax errors anywhere, duplicates (another case, a
	// display name) after the row they repeat, and missing addresses.
	for i, bad := range []string{"not-an-address", "two@@example.com", "dot.@example.com", "x@-example.com",
		"x@example..com", "@example.com", "x@", "a b@example.com", "x@example.com.", "x@[192.0.2.1]"} {
		at := rng.IntN(len(rows))
		rows = slices.Insert(rows, at, row{rec: []string{bad, fmt.Sprintf("Bad%d", i), ""}})
	}
	for i := range 30 {
		src := rng.IntN(len(rows) - 1)
		for rows[src].group == "" {
			src = rng.IntN(len(rows) - 1)
		}
		dup := rows[src].rec[0]
		if i%2 == 0 {
			dup = strings.ToUpper(dup)
		} else {
			dup = "Someone <" + dup + ">"
		}
		at := src + 1 + rng.IntN(len(rows)-src)
		rows = slices.Insert(rows, at, row{rec: []string{dup, fmt.Sprintf("Dup%d", i), ""}})
	}
	for i := range 10 {
		rows = slices.Insert(rows, rng.IntN(len(rows)), row{rec: []string{"", fmt.Sprintf("Missing%d", i), ""}})
	}

	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write([]string{"email", "first", "company"})
	kept := map[int64]keptRow{}
	for i, r := range rows {
		w.Write(r.rec)
		if r.group != "" {
			kept[int64(i+2)] = keptRow{r.rec[0], r.rec[1], r.rec[2], r.group}
		}
	}
	w.Flush()
	if len(kept) != good || good != 15000 {
		t.Fatalf("generated %d good rows, want 15000", len(kept))
	}
	return e.write(t, "members.csv", b.String()), kept
}

// TestPlanBigList is the acceptance example end to end: 15,000
// recipients, 800 at one provider, in jobs of 1,000, stored and read back.
func TestPlanBigList(t *testing.T) {
	e := newPlanEnv(t)
	ctx := context.Background()
	list, kept := e.bigList(t)
	opt := e.options(t, list, "agm-2026")
	opt.Template = tmpl(t, bigTemplate)
	res := e.plan(t, opt)

	// The same rejects, for the same reasons, as clean.
	cleanOpt := listclean.Options{Input: list, TempDir: t.TempDir(), Store: e.st,
		Out: filepath.Join(t.TempDir(), "clean.csv"), Rejects: filepath.Join(t.TempDir(), "rejects.csv"), Warnings: filepath.Join(t.TempDir(), "warnings.csv")}
	sum, err := listclean.Clean(ctx, cleanOpt)
	if err != nil {
		t.Fatalf("Clean: %v", err)
	}
	if !maps.Equal(res.Summary.Reasons, sum.Reasons) {
		t.Errorf("plan's reasons %v, clean's %v", res.Summary.Reasons, sum.Reasons)
	}
	if sum.Reasons[listclean.ReasonSyntax] != 10 || sum.Reasons[listclean.ReasonDuplicate] != 30 || sum.Reasons[listclean.ReasonMissing] != 10 {
		t.Errorf("clean's reasons %v, want 10 syntax, 30 duplicate, 10 missing", sum.Reasons)
	}
	if res.Summary.Kept != 15000 || res.Summary.Rejected != 50 || res.Summary.Rows != 15050 {
		t.Errorf("summary: %d rows, %d kept, %d rejected; want 15050, 15000, 50", res.Summary.Rows, res.Summary.Kept, res.Summary.Rejected)
	}

	// Jobs: 15 of 1,000, 10 minutes apart, microsoft 53 or 54 in each.
	if len(res.Jobs) != 15 {
		t.Fatalf("%d jobs, want 15", len(res.Jobs))
	}
	c, jobs, groups, err := e.st.Campaign(ctx, "agm-2026")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 15 {
		t.Fatalf("%d jobs stored, want 15", len(jobs))
	}
	for i, j := range jobs {
		if j.Seq != i+1 || j.Recipients != 1000 || j.State != "pending" {
			t.Errorf("stored job %d: seq %d, %d recipients, %s; want seq %d, 1000, pending", i, j.Seq, j.Recipients, j.State, i+1)
		}
		if want := start.Add(time.Duration(i) * 10 * time.Minute); !j.NotBefore.Equal(want) {
			t.Errorf("job %d not before %s, want %s", j.Seq, j.NotBefore.UTC(), want)
		}
		if i > 0 {
			if d := j.NotBefore.Sub(jobs[i-1].NotBefore); d != 10*time.Minute {
				t.Errorf("jobs %d and %d are %s apart, want 10m", i, i+1, d)
			}
		}
		if n := j.Providers["microsoft"]; n != 53 && n != 54 {
			t.Errorf("job %d holds %d microsoft recipients, want 53 or 54", j.Seq, n)
		}
		var total int64
		for _, n := range j.Providers {
			total += n
		}
		if total != 1000 {
			t.Errorf("job %d: providers sum to %d, want 1000 (%v)", j.Seq, total, j.Providers)
		}
		if !maps.Equal(j.Providers, res.Jobs[i].Providers) || !j.NotBefore.Equal(res.Jobs[i].NotBefore) {
			t.Errorf("job %d stored as %+v, planned as %+v", j.Seq, j, res.Jobs[i])
		}
	}
	if c.Recipients != 15000 || c.Rejected != 50 || c.RowsRead != 15050 || !maps.Equal(c.Reasons, sum.Reasons) {
		t.Errorf("stored campaign: %d recipients, %d rejected, %d rows, reasons %v", c.Recipients, c.Rejected, c.RowsRead, c.Reasons)
	}
	if !slices.Equal(c.Columns, []string{"company", "first"}) {
		t.Errorf("stored columns %q, want company, first", c.Columns)
	}
	if c.Template != bigTemplate || c.ListPath != list || c.PerJob != 1000 || c.Gap != 10*time.Minute || !c.StartAt.Equal(start) || c.State != "planned" {
		t.Errorf("stored campaign %+v", c)
	}
	groupSize := map[string]int64{}
	for _, g := range groups {
		groupSize[g.Group] = g.Recipients
	}
	if groupSize["microsoft"] != 800 || groupSize["google"] != 3000 || groupSize["lonely.example"] != 1 || len(groups) != 58 {
		t.Errorf("stored groups: %d, microsoft %d, google %d, lonely.example %d; want 58, 800, 3000, 1",
			len(groups), groupSize["microsoft"], groupSize["google"], groupSize["lonely.example"])
	}

	// Recipients: exactly the kept rows, each once, in the planned jobs.
	rs := e.recipients(t, c.ID)
	if len(rs) != len(kept) {
		t.Errorf("%d recipients stored, want %d", len(rs), len(kept))
	}
	seen := map[int64]bool{}
	perJob := map[int]int64{}
	perJobGroup := map[int]map[string]int64{}
	for i, r := range rs {
		k, ok := kept[r.Row]
		switch {
		case !ok:
			t.Errorf("row %d (%s) stored, but the list rejects it", r.Row, r.Email)
			continue
		case seen[r.Row]:
			t.Errorf("row %d stored twice", r.Row)
		}
		seen[r.Row] = true
		if r.Email != k.email || r.Group != k.group || r.Domain != k.email[strings.IndexByte(k.email, '@')+1:] {
			t.Errorf("row %d stored as %s (%s, %s), want %s (%s)", r.Row, r.Email, r.Domain, r.Group, k.email, k.group)
		}
		var fields map[string]string
		if err := json.Unmarshal([]byte(r.Fields), &fields); err != nil {
			t.Fatalf("row %d fields %q: %v", r.Row, r.Fields, err)
		}
		if want := map[string]string{"first": k.first, "company": k.company}; !maps.Equal(fields, want) {
			t.Errorf("row %d fields %v, want %v", r.Row, fields, want)
		}
		if r.Slot < 0 || r.Slot >= 1 {
			t.Errorf("row %d slot %v", r.Row, r.Slot)
		}
		if i > 0 && (r.Job < rs[i-1].Job || r.Job == rs[i-1].Job && r.Slot < rs[i-1].Slot) {
			t.Errorf("EachRecipient: row %d (job %d slot %v) after job %d slot %v", r.Row, r.Job, r.Slot, rs[i-1].Job, rs[i-1].Slot)
		}
		perJob[r.Job]++
		if perJobGroup[r.Job] == nil {
			perJobGroup[r.Job] = map[string]int64{}
		}
		name := r.Group
		if !plan.IsProvider(name) {
			name = "other"
		}
		perJobGroup[r.Job][name]++
	}
	for row := range kept {
		if !seen[row] {
			t.Errorf("kept row %d (%s) not stored", row, kept[row].email)
		}
	}
	for _, j := range jobs {
		if perJob[j.Seq] != j.Recipients {
			t.Errorf("job %d: %d recipients stored, the job says %d", j.Seq, perJob[j.Seq], j.Recipients)
		}
		if !maps.Equal(perJobGroup[j.Seq], j.Providers) {
			t.Errorf("job %d: recipients by provider %v, the job says %v", j.Seq, perJobGroup[j.Seq], j.Providers)
		}
	}

	// The clean file lists the same addresses in the same order.
	f, err := os.Open(cleanOpt.Out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cleanRows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rs, func(a, b store.Recipient) int { return int(a.Row - b.Row) })
	if len(cleanRows)-1 != len(rs) {
		t.Fatalf("clean kept %d rows, plan %d", len(cleanRows)-1, len(rs))
	}
	for i, r := range rs {
		if cleanRows[i+1][0] != r.Email {
			t.Fatalf("kept row %d: clean has %s, plan %s", i+1, cleanRows[i+1][0], r.Email)
		}
	}
}

// TestPlanTemplateErrors: a template the list cannot fill stores nothing.
func TestPlanTemplateErrors(t *testing.T) {
	for _, tc := range []struct {
		name, list, template string
		want                 []string
	}{
		{"unknown field",
			"email,first\nann@example.com,Ann\n",
			"From: news@example.com\nSubject: Hi {{.frist}}\n\nHello\n",
			[]string{`"frist"`, "not a column"}},
		{"empty value",
			"email,first\nann@example.com,Ann\nbob@example.com,\ncat@example.com,  \n",
			stdTemplate,
			[]string{"2 recipients", "row 3: first is empty", "row 4: first is empty", "default"}},
		{"line break in a header field",
			"email,first\nann@example.com,Ann\n\"bob@example.com\",\"Bob\nBcc: victim@example.org\"\n",
			stdTemplate,
			[]string{"row 3", "first has a line break"}},
		{"CR LF in a header field",
			"email,first\r\nann@example.com,\"Ann\r\nBcc: victim@example.org\"\r\n",
			"From: news@example.com\nSubject: Hi {{.first | default \"you\"}}\n\nHello\n",
			[]string{"row 2", "first has a line break"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newPlanEnv(t)
			opt := e.options(t, e.write(t, "list.csv", tc.list), "c")
			opt.Template = tmpl(t, tc.template)
			_, err := plan.Plan(context.Background(), e.st, opt)
			var pe *plan.PlanError
			if !errors.As(err, &pe) {
				t.Fatalf("Plan = %v, want a *PlanError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if cs := e.campaigns(t); len(cs) != 0 {
				t.Errorf("%d campaigns stored after a refused plan", len(cs))
			}
			e.checkTempEmpty(t)
		})
	}
}

func TestPlanLineBreakInBodyField(t *testing.T) {
	e := newPlanEnv(t)
	list := e.write(t, "list.csv", "email,first,note\nann@example.com,Ann,\"two\nlines\"\n")
	opt := e.options(t, list, "c")
	opt.Template = tmpl(t, "From: news@example.com\nSubject: Hi {{.first}}\n\n{{.note}}\n")
	res := e.plan(t, opt)
	rs := e.recipients(t, res.Campaign.ID)
	if len(rs) != 1 || rs[0].Fields != `{"first":"Ann","note":"two\nlines"}` {
		t.Errorf("stored %+v, want ann with the note's line break", rs)
	}
}

func TestPlanMalformedTemplate(t *testing.T) {
	e := newPlanEnv(t)
	for _, tc := range []struct {
		src  string
		line string
	}{
		{"From: news@example.com\nSubject: Hi {{.first}\n\nHello\n", "line 2"},
		{"From: news@example.com\nSubject: Hi\n\nHello\n{{if .first}}\n{{.first | shout}}\n", "line 6"},
		{"From: news@example.com\nHello\n\nHello\n", "line 2"},
	} {
		path := e.write(t, "msg.eml", tc.src)
		_, err := plan.ReadTemplate(path, "")
		var pe *plan.PlanError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.line) {
			t.Errorf("ReadTemplate(%q) = %v, want a *PlanError naming the file and %s", tc.src, err, tc.line)
		}
	}
	if _, err := plan.ReadTemplate(filepath.Join(e.dir, "nonexistent.eml"), ""); err == nil || !strings.Contains(err.Error(), "nonexistent.eml") {
		t.Errorf("ReadTemplate of a missing file: %v", err)
	}
	if cs := e.campaigns(t); len(cs) != 0 {
		t.Errorf("%d campaigns stored", len(cs))
	}
}

func TestPlanNameTaken(t *testing.T) {
	e := newPlanEnv(t)
	ctx := context.Background()
	first := e.plan(t, e.options(t, e.write(t, "a.csv", "email,first\nann@example.com,Ann\nbob@example.com,Bob\n"), "autumn"))

	list2 := e.write(t, "b.csv", "email,first\ncat@example.org,Cat\ndan@example.org,Dan\neve@example.org,Eve\n")
	_, err := plan.Plan(ctx, e.st, e.options(t, list2, "autumn"))
	var pe *plan.PlanError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("second plan named autumn: %v, want a *PlanError saying it exists", err)
	}
	if cs := e.campaigns(t); len(cs) != 1 || cs[0].Recipients != 2 {
		t.Fatalf("campaigns after the refusal: %+v, want the first one only", cs)
	}

	// A refused replacement leaves the old campaign as it was.
	bad := e.options(t, e.write(t, "c.csv", "email,first\nfay@example.net,\n"), "autumn")
	bad.Replace = true
	if _, err := plan.Plan(ctx, e.st, bad); err == nil {
		t.Fatal("replacement with an empty first name accepted")
	}
	if cs := e.campaigns(t); len(cs) != 1 || cs[0].ID != first.Campaign.ID {
		t.Fatalf("campaigns after a refused replacement: %+v", cs)
	}
	if rs := e.recipients(t, first.Campaign.ID); len(rs) != 2 {
		t.Fatalf("the old campaign has %d recipients after a refused replacement, want 2", len(rs))
	}

	opt := e.options(t, list2, "autumn")
	opt.Replace = true
	second := e.plan(t, opt)
	cs := e.campaigns(t)
	if len(cs) != 1 || cs[0].Recipients != 3 || cs[0].ListPath != list2 {
		t.Fatalf("campaigns after --replace: %+v, want one of 3 recipients from b.csv", cs)
	}
	var emails []string
	for _, r := range e.recipients(t, second.Campaign.ID) {
		emails = append(emails, r.Email)
	}
	slices.Sort(emails)
	if !slices.Equal(emails, []string{"cat@example.org", "dan@example.org", "eve@example.org"}) {
		t.Errorf("recipients after --replace: %q", emails)
	}
	// SQLite may give the new campaign the old one's id; then the check
	// above has shown the old recipients gone.
	if second.Campaign.ID != first.Campaign.ID {
		if rs := e.recipients(t, first.Campaign.ID); len(rs) != 0 {
			t.Errorf("the replaced campaign still has %d recipients", len(rs))
		}
	}

	// Another name is fine.
	e.plan(t, e.options(t, list2, "winter"))
	if cs := e.campaigns(t); len(cs) != 2 {
		t.Errorf("%d campaigns, want 2", len(cs))
	}
}

func bulkList(n int, domain string) string {
	var b strings.Builder
	b.WriteString("email,first\n")
	for i := range n {
		fmt.Fprintf(&b, "u%d@%s,U%d\n", i, domain, i)
	}
	return b.String()
}

func TestPlanNotAfter(t *testing.T) {
	e := newPlanEnv(t)
	list := e.write(t, "list.csv", bulkList(30, "example.com"))
	opt := e.options(t, list, "c")
	opt.PerJob = 10 // 3 jobs: +0, +10m, +20m

	opt.NotAfter = start.Add(19 * time.Minute)
	_, err := plan.Plan(context.Background(), e.st, opt)
	var pe *plan.PlanError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "job 3") || !strings.Contains(err.Error(), "--not-after") {
		t.Fatalf("last job at +20m, not after +19m: %v, want a *PlanError naming job 3", err)
	}
	if cs := e.campaigns(t); len(cs) != 0 {
		t.Fatalf("%d campaigns stored after a refused plan", len(cs))
	}
	e.checkTempEmpty(t)

	opt.NotAfter = start.Add(-time.Minute)
	if _, err := plan.Plan(context.Background(), e.st, opt); !errors.As(err, &pe) {
		t.Errorf("not-after before start: %v, want a *PlanError", err)
	}

	// The last job may start exactly at the limit.
	opt.NotAfter = start.Add(20 * time.Minute)
	res := e.plan(t, opt)
	if len(res.Jobs) != 3 || !res.Jobs[2].NotBefore.Equal(opt.NotAfter) {
		t.Fatalf("jobs %+v", res.Jobs)
	}
	c, _, _, err := e.st.Campaign(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if !c.NotAfter.Equal(opt.NotAfter) {
		t.Errorf("stored not-after %s, want %s", c.NotAfter, opt.NotAfter)
	}
}

func TestPlanHourlyLimitNote(t *testing.T) {
	e := newPlanEnv(t)
	ctx := context.Background()
	tab := providerTable(t, testProviders+"  - {name: apple, domains: [icloud.test], per_hour: 100}\n")
	list := e.write(t, "list.csv", bulkList(300, "icloud.test")+"x@example.com,X\n")
	opt := e.options(t, list, "c")
	opt.Table = tab
	opt.PerJob = 101 // 3 jobs, 100 apple recipients each

	res := e.plan(t, opt)
	if len(res.Jobs) != 3 {
		t.Fatalf("%d jobs, want 3", len(res.Jobs))
	}
	notes := res.Campaign.Notes
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "apple:") {
		t.Fatalf("notes %q, want one about apple", notes)
	}
	m := regexp.MustCompile(`--gap (\S+)`).FindStringSubmatch(notes[0])
	if m == nil {
		t.Fatalf("note %q proposes no --gap", notes[0])
	}
	gap, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("note %q: proposed gap: %v", notes[0], err)
	}
	// 100 recipients a job at 100 an hour: the gap must be at least an
	// hour, and need not be more than a minute over.
	if gap < time.Hour || gap > time.Hour+time.Minute {
		t.Errorf("proposed gap %s, want about 1h", gap)
	}
	c, jobs, groups, err := e.st.Campaign(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Notes, notes) {
		t.Errorf("stored notes %q, want %q", c.Notes, notes)
	}
	for _, g := range groups {
		if want := map[string]int{"apple": 100}[g.Group]; g.PerHour != want {
			t.Errorf("group %s per hour %d, want %d", g.Group, g.PerHour, want)
		}
	}
	// Each job is estimated at an hour (100 at 100/h), then the gap.
	for i := 1; i < len(jobs); i++ {
		if d := jobs[i].NotBefore.Sub(jobs[i-1].NotBefore); d != time.Hour+10*time.Minute {
			t.Errorf("jobs %d and %d are %s apart, want 1h10m", i, i+1, d)
		}
	}

	// The proposed gap keeps to the limit: no note.
	opt.Name, opt.Gap = "c2", gap
	if res := e.plan(t, opt); len(res.Campaign.Notes) != 0 {
		t.Errorf("with --gap %s: notes %q, want none", gap, res.Campaign.Notes)
	}
}

func TestPlanRefusals(t *testing.T) {
	e := newPlanEnv(t)
	list := e.write(t, "list.csv", "email,first\nnot-an-address,X\n")
	for _, tc := range []struct {
		name string
		edit func(*plan.Options)
		want string
	}{
		{"all rejected", func(*plan.Options) {}, "no recipients left"},
		{"no name", func(o *plan.Options) { o.Name = "" }, "name"},
		{"per job 0", func(o *plan.Options) { o.PerJob = 0 }, "--per-job"},
		{"negative gap", func(o *plan.Options) { o.Gap = -time.Second }, "--gap"},
		{"no template", func(o *plan.Options) { o.Template = nil }, "template"},
	} {
		opt := e.options(t, list, "c")
		tc.edit(&opt)
		_, err := plan.Plan(context.Background(), e.st, opt)
		var pe *plan.PlanError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a *PlanError containing %q", tc.name, err, tc.want)
		}
	}
	if cs := e.campaigns(t); len(cs) != 0 {
		t.Errorf("%d campaigns stored", len(cs))
	}
}
