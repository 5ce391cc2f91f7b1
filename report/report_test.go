package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/relayctl/relayctl/report"
	"github.com/relayctl/relayctl/store"
)

// testProviders groups reserved domains as real providers would be.
const testProviders = `
default: {connections: 10, per_connection: 100}
providers:
  - {name: google, domains: [gmail.test]}
  - {name: microsoft, domains: [outlook.test]}
`

var start = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// fixture is a planned campaign in a fresh store.
type fixture struct {
	st   *store.Store
	name string
	id   int64
	// ids maps each address to its recipient id, for store.Apply.
	ids map[string]int64
}

// newFixture plans the addresses (in list order; first names Name<i>)
// into jobs of perJob, in a store in t.TempDir().
func newFixture(t *testing.T, perJob int, emails ...string) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("email,first_name\n")
	for i, e := range emails {
		fmt.Fprintf(&b, "%s,Name%d\n", e, i)
	}
	list := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "relayctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tpl, err := message.ParseTemplate("From: Club <news@example.org>\nSubject: Hi {{.first_name}}\n\nHello {{.first_name}}\n")
	if err != nil {
		t.Fatal(err)
	}
	over, err := plan.ParseTable([]byte(testProviders))
	if err != nil {
		t.Fatal(err)
	}
	table, err := plan.DefaultTable().Override(over)
	if err != nil {
		t.Fatal(err)
	}
	opt := plan.Options{Clean: listclean.Options{Input: list, TempDir: t.TempDir()}, Name: "spring", Template: tpl,
		PerJob: perJob, Gap: 10 * time.Minute, Start: start, Connections: 4, PerConnection: 100, PerMessage: 1,
		Table: table, Now: func() time.Time { return start.Add(-time.Hour) }}
	res, err := plan.Plan(ctx, st, opt)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, name: res.Campaign.Name, id: res.Campaign.ID, ids: map[string]int64{}}
	for _, j := range res.Jobs {
		due, _, err := st.DueRecipients(ctx, f.id, j.Seq, start.Add(1000*time.Hour), store.Start, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range due {
			f.ids[d.Email] = d.ID
		}
	}
	if len(f.ids) != len(emails) {
		t.Fatalf("planned %d recipients, want %d", len(f.ids), len(emails))
	}
	return f
}

// set records outcomes as a run would: state and reply for each address,
// one attempt each.
func (f *fixture) set(t *testing.T, outcomes map[string][2]string) {
	t.Helper()
	var ups []store.Update
	for email, o := range outcomes {
		id, ok := f.ids[email]
		if !ok {
			t.Fatalf("no recipient %s", email)
		}
		u := store.Update{ID: id, State: o[0], Reply: o[1], Attempted: true}
		if o[0] == store.StateDeferred {
			u.NextAttempt = time.Now().Add(time.Hour)
		}
		ups = append(ups, u)
	}
	if err := f.st.Apply(context.Background(), f.name, ups); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) load(t *testing.T) *report.Report {
	t.Helper()
	r, err := report.Load(context.Background(), f.st, f.name, start.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) render(t *testing.T, r *report.Report, format report.Format) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.Render(context.Background(), &b, format); err != nil {
		t.Fatalf("Render %s: %v", format, err)
	}
	return b.String()
}

// The standard campaign: eight recipients in jobs of three; five
// providers; every outcome.
var (
	stdList = []string{
		"ann@gmail.test", "bob@outlook.test", "cy@example.com",
		"dee@gmail.test", "eve@outlook.test", "fay@example.org",
		"gus@gmail.test", "hal@example.com",
	}
	stdOutcomes = map[string][2]string{
		"ann@gmail.test":   {store.StateSent, "250 2.0.0 OK: queued as A1"},
		"bob@outlook.test": {store.StateBounced, `550 5.1.1 "bob" is unknown, sorry`},
		"cy@example.com":   {store.StateSent, "250 2.0.0 OK"},
		"dee@gmail.test":   {store.StateDeferred, "451 4.7.1 Greylisted, try later"},
		"eve@outlook.test": {store.StateBounced, "552 5.2.2 Mailbox full\nover quota"},
		"fay@example.org":  {store.StateFailed, "gave up after 48h0m0s: 421 4.4.2 timeout"},
		"gus@gmail.test":   {store.StateSent, "250 ok"},
	}
)

func stdFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, 3, stdList...)
	f.set(t, stdOutcomes)
	ctx := context.Background()
	// Job 1 ran for 90 s, job 2 is running, job 3 has not started.
	if err := f.st.SetJobState(ctx, f.id, 1, "done", start, start.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetJobState(ctx, f.id, 2, "running", start.Add(100*time.Minute), time.Time{}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadSummary(t *testing.T) {
	f := stdFixture(t)
	r := f.load(t)
	if r.Campaign != "spring" || r.State != "planned" {
		t.Errorf("campaign %q state %q", r.Campaign, r.State)
	}
	tot := r.Total
	if tot.Recipients != 8 || tot.Sent != 3 || tot.Bounced != 2 || tot.Deferred != 1 || tot.Failed != 1 || tot.Pending != 1 || tot.Attempts != 7 {
		t.Errorf("total %+v", tot)
	}
	var names []string
	for _, p := range r.Providers {
		names = append(names, fmt.Sprintf("%s:%d/%d", p.Name, p.Sent, p.Recipients))
	}
	// Most recipients first, then by name.
	if got, want := strings.Join(names, " "), "google:2/3 example.com:1/2 microsoft:0/2 example.org:0/1"; got != want {
		t.Errorf("providers %s, want %s", got, want)
	}
	if len(r.Jobs) != 3 {
		t.Fatalf("%d jobs, want 3", len(r.Jobs))
	}
	j1, j2, j3 := r.Jobs[0], r.Jobs[1], r.Jobs[2]
	if j1.State != "done" || j1.Duration != 90*time.Second || j1.Recipients != 3 {
		t.Errorf("job 1: %s, %s, %d recipients", j1.State, j1.Duration, j1.Recipients)
	}
	// Running: up to the report's time, 2 h after the start.
	if j2.State != "running" || j2.Duration != 20*time.Minute {
		t.Errorf("job 2: %s, %s", j2.State, j2.Duration)
	}
	if j3.State != "pending" || j3.Duration != 0 || !j3.Started.IsZero() || j3.NotBefore.IsZero() {
		t.Errorf("job 3: %+v", j3)
	}
	if j1.Sent+j2.Sent+j3.Sent != 3 || j1.Attempts+j2.Attempts+j3.Attempts != 7 {
		t.Errorf("jobs' tallies do not add up: %+v %+v %+v", j1.Tally, j2.Tally, j3.Tally)
	}
	// 2 sent by google in under a second: a rate over one second.
	if got := r.Providers[0].RatePerMinute(); got != 120 {
		t.Errorf("google's rate %v/min, want 120", got)
	}
}

func TestLoadUnknownCampaign(t *testing.T) {
	f := newFixture(t, 3, "ann@example.com")
	_, err := report.Load(context.Background(), f.st, "nosuch", time.Now())
	if !errors.Is(err, store.ErrNotFound) || err.Error() != `campaign "nosuch" not found` {
		t.Fatalf("Load(nosuch) = %v, want campaign \"nosuch\" not found", err)
	}
}

// stamps matches the times the store recorded, which are the test's own.
var stamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// checkStamps checks every recorded time lies within the test's run and
// replaces it with TIME, except the planned ones (2026-12-01).
func checkStamps(t *testing.T, out string, from time.Time) string {
	t.Helper()
	return stamps.ReplaceAllStringFunc(out, func(s string) string {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		if tm.Year() == 2026 && tm.Month() == 12 {
			return s // planned, or the report's fixed time
		}
		if tm.Before(from.Truncate(time.Second)) || tm.After(time.Now()) {
			t.Errorf("time %s is not within the test's run", s)
		}
		return "TIME"
	})
}

// sortedRows sorts a CSV's records after its header, as written: the
// sending order within a job is the plan's to choose.
func sortedRows(t *testing.T, out string) string {
	t.Helper()
	cr := csv.NewReader(strings.NewReader(out))
	var raw []string
	from := int64(0)
	for {
		_, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, out[from:cr.InputOffset()])
		from = cr.InputOffset()
	}
	slices.Sort(raw[1:])
	return strings.Join(raw, "")
}

func TestCSV(t *testing.T) {
	began := time.Now()
	f := stdFixture(t)
	out := checkStamps(t, f.render(t, f.load(t), report.CSV), began)
	want := "email,job,provider,state,attempts,reply,updated\r\n" +
		"ann@gmail.test,1,google,sent,1,250 2.0.0 OK: queued as A1,TIME\r\n" +
		`bob@outlook.test,1,microsoft,bounced,1,"550 5.1.1 ""bob"" is unknown, sorry",TIME` + "\r\n" +
		"cy@example.com,1,example.com,sent,1,250 2.0.0 OK,TIME\r\n" +
		"dee@gmail.test,2,google,deferred,1,\"451 4.7.1 Greylisted, try later\",TIME\r\n" +
		"eve@outlook.test,2,microsoft,bounced,1,\"552 5.2.2 Mailbox full\r\nover quota\",TIME\r\n" +
		"fay@example.org,3,example.org,failed,1,gave up after 48h0m0s: 421 4.4.2 timeout,TIME\r\n" +
		"gus@gmail.test,3,google,sent,1,250 ok,TIME\r\n" +
		"hal@example.com,2,example.com,pending,0,,\r\n"
	if got := sortedRows(t, out); got != want {
		t.Errorf("CSV, rows sorted:\n%s\nwant:\n%s", got, want)
	}
	// It reads back as RFC 4180, in sending order: job by job.
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 9 {
		t.Fatalf("%d records, want 9", len(recs))
	}
	for i := 2; i < len(recs); i++ {
		if recs[i][1] < recs[i-1][1] {
			t.Errorf("row %d of job %s follows one of job %s", i, recs[i][1], recs[i-1][1])
		}
	}
	replies := map[string]string{}
	for _, r := range recs[1:] {
		replies[r[0]] = r[5]
	}
	if replies["bob@outlook.test"] != `550 5.1.1 "bob" is unknown, sorry` || replies["eve@outlook.test"] != "552 5.2.2 Mailbox full\nover quota" {
		t.Errorf("replies read back: %q", replies)
	}
}

func TestJSON(t *testing.T) {
	began := time.Now()
	f := stdFixture(t)
	out := f.render(t, f.load(t), report.JSON)
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "}\n") {
		t.Errorf("not one object on one line: %q", out)
	}
	var doc struct {
		Campaign  string `json:"campaign"`
		State     string `json:"state"`
		Generated string `json:"generated"`
		Summary   struct {
			Total     map[string]any   `json:"total"`
			Providers []map[string]any `json:"providers"`
			Jobs      []map[string]any `json:"jobs"`
		} `json:"summary"`
		Bounces    []map[string]any `json:"bounces"`
		Recipients []map[string]any `json:"recipients"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if doc.Campaign != "spring" || doc.State != "planned" || doc.Generated != "2026-12-01T10:00:00Z" {
		t.Errorf("head: %q %q %q", doc.Campaign, doc.State, doc.Generated)
	}
	if len(doc.Summary.Providers) != 4 || len(doc.Summary.Jobs) != 3 || len(doc.Recipients) != 8 || len(doc.Bounces) != 2 {
		t.Fatalf("%d providers, %d jobs, %d recipients, %d bounces", len(doc.Summary.Providers), len(doc.Summary.Jobs), len(doc.Recipients), len(doc.Bounces))
	}
	byEmail := map[string]map[string]any{}
	for _, r := range doc.Recipients {
		byEmail[r["email"].(string)] = r
	}
	norm := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return checkStamps(t, string(b), began)
	}
	golden := []struct {
		got  any
		want string
	}{
		{doc.Summary.Total, `{"attempts":7,"bounced":2,"deferred":1,"duration_s":0,"failed":1,"first_attempt":"TIME","last_change":"TIME","pending":1,"rate_per_min":180,"recipients":8,"sending":0,"sent":3,"suppressed":0}`},
		{doc.Summary.Providers[2], `{"attempts":2,"bounced":2,"deferred":0,"duration_s":0,"failed":0,"first_attempt":"TIME","last_change":"TIME","pending":0,"provider":"microsoft","rate_per_min":0,"recipients":2,"sending":0,"sent":0,"suppressed":0}`},
		{doc.Summary.Jobs[0], `{"attempts":3,"bounced":1,"deferred":0,"duration_s":90,"failed":0,"finished":"2026-12-01T08:01:30Z","first_attempt":"TIME","last_change":"TIME","not_before":"2026-12-01T08:00:00Z","pending":0,"rate_per_min":1.33,"recipients":3,"sending":0,"sent":2,"seq":1,"started":"2026-12-01T08:00:00Z","state":"done","suppressed":0}`},
		{doc.Summary.Jobs[2]["state"], `"pending"`},
		{doc.Bounces[0], `{"attempts":1,"code":550,"email":"bob@outlook.test","enhanced_code":"5.1.1","job":1,"provider":"microsoft","reply":"550 5.1.1 \"bob\" is unknown, sorry","text":"\"bob\" is unknown, sorry","updated":"TIME"}`},
		{doc.Bounces[1]["enhanced_code"], `"5.2.2"`},
		{byEmail["ann@gmail.test"], `{"attempts":1,"email":"ann@gmail.test","job":1,"provider":"google","reply":"250 2.0.0 OK: queued as A1","state":"sent","updated":"TIME"}`},
		{byEmail["hal@example.com"], `{"attempts":0,"email":"hal@example.com","job":2,"provider":"example.com","reply":"","state":"pending","updated":""}`},
	}
	for i, g := range golden {
		if got := norm(g.got); got != g.want {
			t.Errorf("%d: got  %s\nwant %s", i, got, g.want)
		}
	}
}

func TestTable(t *testing.T) {
	f := stdFixture(t)
	out := f.render(t, f.load(t), report.Table)
	for _, want := range []string{
		"Campaign spring: planned\n8 recipients: 3 sent, 1 deferred, 2 bounced, 1 failed, 0 suppressed, 1 pending\n",
		"By provider", "By job", "Bounces (2)",
		"│  PROVIDER   │ RECIPIENTS │ SENT │ DEFERRED │ BOUNCED │ FAILED │ SUPPRESSED │ PENDING │ DURATION │ RATE  │",
		"│ google      │ 3          │ 2    │ 1        │ 0       │ 0      │ 0          │ 0       │ 0s       │ 2.0/s │",
		"│ microsoft   │ 2          │ 0    │ 0        │ 2       │ 0      │ 0          │ 0       │ 0s       │ -     │",
		"│ all         │ 8          │ 3    │ 1        │ 2       │ 1      │ 0          │ 1       │ 0s       │ 3.0/s │",
		"│ 1   │ done    │ 3          │ 2    │ 0        │ 1       │ 0      │ 0          │ 0       │ 1m30s    │ 1.3/min │",
		"│ 2   │ running │ 3          │ 0    │ 1        │ 1       │ 0      │ 0          │ 1       │ 20m0s    │ -       │",
		"│ 3   │ pending │ 2          │ 1    │ 0        │ 0       │ 1      │ 0          │ 0       │ -        │ -       │",
		"│ bob@outlook.test │ 1   │ microsoft │ 550 5.1.1 │ \"bob\" is unknown, sorry           │",
		"│ eve@outlook.test │ 2   │ microsoft │ 552 5.2.2 │ Mailbox full                      │\n│                  │     │           │           │ over quota                        │",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// A server's words cannot drive the terminal.
	e := newFixture(t, 3, "ann@example.com")
	e.set(t, map[string][2]string{"ann@example.com": {store.StateBounced, "550 5.1.1 \x1b[2Jgone\x07"}})
	if out := e.render(t, e.load(t), report.Table); strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, "\uFFFD[2Jgone\uFFFD") {
		t.Errorf("control characters reach the terminal:\n%q", out)
	}
	// A campaign without bounces says so.
	g := newFixture(t, 3, "ann@example.com")
	g.set(t, map[string][2]string{"ann@example.com": {store.StateSent, "250 ok"}})
	if out := g.render(t, g.load(t), report.Table); !strings.Contains(out, "No bounces.") {
		t.Errorf("no 'No bounces.':\n%s", out)
	}
}

func TestHTML(t *testing.T) {
	f := stdFixture(t)
	// A server's reply is not to be trusted: it must come out as text.
	f.set(t, map[string][2]string{"bob@outlook.test": {store.StateBounced, `550 5.1.1 <script>alert("x")</script> & <b>bold</b>`}})
	out := f.render(t, f.load(t), report.HTML)
	if n := strings.Count(out, "<svg"); n != 3 {
		t.Errorf("%d <svg> elements, want 3", n)
	}
	for _, bad := range []string{"<script", "<b>bold", "http://", "https://", "src=", "<link", "@import", "url("} {
		if strings.Contains(out, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;",
		"<h1>Delivery report: spring</h1>", "Bounces (2)", "one bar per second", "messages sent per second",
		"job 3", "microsoft",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func TestHTMLNothingSent(t *testing.T) {
	f := newFixture(t, 3, "ann@example.com", "bob@example.org")
	out := f.render(t, f.load(t), report.HTML)
	if strings.Count(out, "<svg") != 3 || !strings.Contains(out, "Nothing sent yet.") || !strings.Contains(out, "No bounces.") {
		t.Errorf("page of a planned campaign:\n%s", out)
	}
}

// Past eight providers, the timeline sums the rest, and every message
// is counted once.
func TestTimelineFoldsProviders(t *testing.T) {
	var list []string
	outcomes := map[string][2]string{}
	for i := range 12 {
		for k := range i + 1 {
			e := fmt.Sprintf("u%d@d%02d.example", k, i)
			list = append(list, e)
			outcomes[e] = [2]string{store.StateSent, "250 ok"}
		}
	}
	f := newFixture(t, 1000, list...)
	f.set(t, outcomes)
	out := f.render(t, f.load(t), report.HTML)
	if !strings.Contains(out, "others (4)") {
		t.Errorf("no 'others (4)' in the timeline's legend")
	}
	// d00 to d03 sent 1+2+3+4 = 10, all in one second.
	if !strings.Contains(out, "others (4): 10 sent in the second from") {
		t.Errorf("the folded providers' bar is not 10 messages")
	}
	if !strings.Contains(out, "d11.example: 12 sent in the second from") {
		t.Errorf("the biggest provider's bar is not 12 messages")
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	f := newFixture(t, 3, "ann@example.com")
	err := f.load(t).Render(context.Background(), &bytes.Buffer{}, "pdf")
	if err == nil || !strings.Contains(err.Error(), `unknown report format "pdf"`) {
		t.Errorf("Render(pdf) = %v", err)
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"table", "csv", "json", "html", "HTML", " csv "} {
		if _, err := report.ParseFormat(s); err != nil {
			t.Errorf("ParseFormat(%q): %v", s, err)
		}
	}
	if _, err := report.ParseFormat("xml"); err == nil || err.Error() != `unknown report format "xml" (want table, csv, json, html)` {
		t.Errorf("ParseFormat(xml) = %v", err)
	}
}

func TestParseReply(t *testing.T) {
	for _, c := range []struct {
		in   string
		want report.Reply
	}{
		{"550 5.1.1 No such user", report.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such user"}},
		{"552 5.2.2", report.Reply{Code: 552, Enhanced: "5.2.2"}},
		{"554 Transaction failed", report.Reply{Code: 554, Text: "Transaction failed"}},
		{"550", report.Reply{Code: 550}},
		{"550-5.7.1 Blocked", report.Reply{Code: 550, Enhanced: "5.7.1", Text: "Blocked"}},
		{"550 4.1.1 mismatched class", report.Reply{Code: 550, Text: "4.1.1 mismatched class"}},
		{"550 5.123.456 long", report.Reply{Code: 550, Enhanced: "5.123.456", Text: "long"}},
		{"5501 not a code", report.Reply{Text: "5501 not a code"}},
		{"dial tcp: connection refused", report.Reply{Text: "dial tcp: connection refused"}},
		{"", report.Reply{}},
	} {
		if got := report.ParseReply(c.in); got != c.want {
			t.Errorf("ParseReply(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestBucketWidth(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		span time.Duration
		want time.Duration
		unit string
	}{
		{0, time.Second, "second"},
		{5 * time.Second, time.Second, "second"},
		{89 * time.Second, time.Second, "second"},
		{90 * time.Second, 10 * time.Second, "10 seconds"},
		{8 * time.Minute, 10 * time.Second, "10 seconds"},
		{9 * time.Minute, time.Minute, "minute"},
		{119 * time.Minute, time.Minute, "minute"},
		{120 * time.Minute, 5 * time.Minute, "5 minutes"},
		{10 * time.Hour, 10 * time.Minute, "10 minutes"},
		{3 * 24 * time.Hour, time.Hour, "hour"},
		{40 * 24 * time.Hour, 12 * time.Hour, "12 hours"},
		{365 * 24 * time.Hour, 4 * 24 * time.Hour, "4 days"},
	} {
		got := report.BucketWidth(t0, t0.Add(c.span))
		if got != c.want || report.BucketUnit(got) != c.unit {
			t.Errorf("span %s: bucket %s (%s), want %s (%s)", c.span, got, report.BucketUnit(got), c.want, c.unit)
		}
	}
	// Whatever the span from a few seconds up, 10 to 120 buckets.
	for span := 10 * time.Second; span < 200*24*time.Hour; span = span*5/4 + 7*time.Second {
		for _, off := range []time.Duration{0, 17 * time.Second, 59 * time.Second} {
			first := t0.Add(off)
			w := report.BucketWidth(first, first.Add(span))
			ws := int64(w / time.Second)
			n := (first.Add(span).Unix())/ws - first.Unix()/ws + 1
			if n < 10 || n > 120 {
				t.Errorf("span %s from +%s: %d buckets of %s", span, off, n, w)
			}
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.csv")
	write := func(s string) func(w io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := report.WriteFile(path, write("one\n")); err != nil {
		t.Fatal(err)
	}
	// A failed write leaves the old file whole, and no temporary one.
	boom := errors.New("boom")
	err := report.WriteFile(path, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteFile = %v, want boom", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one\n" {
		t.Errorf("after a failed write the file holds %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files left in the directory, want 1", len(ents))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	if err := report.WriteFile(filepath.Join(dir, "no", "such", "dir.csv"), write("x")); err == nil || !strings.Contains(err.Error(), "dir.csv") {
		t.Errorf("WriteFile into a missing directory = %v", err)
	}
}
