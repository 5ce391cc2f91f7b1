package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/relayctl/relayctl/store"
)

// CSVHeader is the header line of the CSV format, one row per recipient;
// its names are a public interface.
var CSVHeader = []string{"email", "job", "provider", "state", "attempts", "reply", "updated"}

// stamp is a time as the CSV and JSON formats write it: RFC 3339 in UTC,
// "" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// renderCSV writes a row per recipient as it reads it (RFC 4180, CRLF
// line ends).
func (r *Report) renderCSV(ctx context.Context, w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	rec := make([]string, len(CSVHeader))
	err := r.src.EachDelivery(ctx, r.id, "", func(d store.Delivery) error {
		rec[0], rec[1], rec[2], rec[3] = d.Email, strconv.Itoa(d.Job), d.Group, d.State
		rec[4], rec[5], rec[6] = strconv.Itoa(d.Attempts), d.Reply, stamp(d.Updated)
		return cw.Write(rec)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// The JSON format's types: their field names are a public interface.

type tallyJSON struct {
	Recipients   int64   `json:"recipients"`
	Sent         int64   `json:"sent"`
	Deferred     int64   `json:"deferred"`
	Bounced      int64   `json:"bounced"`
	Failed       int64   `json:"failed"`
	Suppressed   int64   `json:"suppressed"`
	Pending      int64   `json:"pending"`
	Sending      int64   `json:"sending"`
	Attempts     int64   `json:"attempts"`
	FirstAttempt string  `json:"first_attempt,omitempty"`
	LastChange   string  `json:"last_change,omitempty"`
	DurationS    int64   `json:"duration_s"`
	RatePerMin   float64 `json:"rate_per_min"`
}

func tallyJSONOf(t Tally) tallyJSON {
	return tallyJSON{Recipients: t.Recipients, Sent: t.Sent, Deferred: t.Deferred, Bounced: t.Bounced, Failed: t.Failed,
		Suppressed: t.Suppressed, Pending: t.Pending, Sending: t.Sending, Attempts: t.Attempts,
		FirstAttempt: stamp(t.First), LastChange: stamp(t.Last), DurationS: int64(t.Duration.Round(time.Second) / time.Second),
		RatePerMin: math.Round(t.RatePerMinute()*100) / 100}
}

type providerJSON struct {
	Provider string `json:"provider"`
	tallyJSON
}

type jobJSON struct {
	Seq       int    `json:"seq"`
	State     string `json:"state"`
	NotBefore string `json:"not_before"`
	Started   string `json:"started,omitempty"`
	Finished  string `json:"finished,omitempty"`
	tallyJSON
}

type summaryJSON struct {
	Total     tallyJSON      `json:"total"`
	Providers []providerJSON `json:"providers"`
	Jobs      []jobJSON      `json:"jobs"`
}

type headJSON struct {
	Campaign  string      `json:"campaign"`
	State     string      `json:"state"`
	Detail    string      `json:"detail,omitempty"`
	Generated string      `json:"generated"`
	Summary   summaryJSON `json:"summary"`
}

type bounceJSON struct {
	Email    string `json:"email"`
	Job      int    `json:"job"`
	Provider string `json:"provider"`
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced_code,omitempty"`
	Text     string `json:"text"`
	Reply    string `json:"reply"`
	Attempts int    `json:"attempts"`
	Updated  string `json:"updated"`
}

type recipientJSON struct {
	Email    string `json:"email"`
	Job      int    `json:"job"`
	Provider string `json:"provider"`
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	Reply    string `json:"reply"`
	Updated  string `json:"updated"`
}

func (r *Report) headJSON() headJSON {
	h := headJSON{Campaign: r.Campaign, State: r.State, Detail: r.Detail, Generated: stamp(r.Generated),
		Summary: summaryJSON{Total: tallyJSONOf(r.Total), Providers: []providerJSON{}, Jobs: []jobJSON{}}}
	for _, p := range r.Providers {
		h.Summary.Providers = append(h.Summary.Providers, providerJSON{Provider: p.Name, tallyJSON: tallyJSONOf(p.Tally)})
	}
	for _, j := range r.Jobs {
		jt := tallyJSONOf(j.Tally)
		jt.RatePerMin = math.Round(j.RatePerMinute()*100) / 100
		h.Summary.Jobs = append(h.Summary.Jobs, jobJSON{Seq: j.Seq, State: j.State, NotBefore: stamp(j.NotBefore),
			Started: stamp(j.Started), Finished: stamp(j.Finished), tallyJSON: jt})
	}
	return h
}

// jsonWriter writes values without a newline after each, nor HTML
// escaping, into a buffered stream.
type jsonWriter struct {
	w   *bufio.Writer
	buf bytes.Buffer
	enc *json.Encoder
}

func newJSONWriter(w io.Writer) *jsonWriter {
	j := &jsonWriter{w: bufio.NewWriterSize(w, 64<<10)}
	j.enc = json.NewEncoder(&j.buf)
	j.enc.SetEscapeHTML(false)
	return j
}

func (j *jsonWriter) value(v any) error {
	j.buf.Reset()
	if err := j.enc.Encode(v); err != nil {
		return err
	}
	_, err := j.w.Write(bytes.TrimSuffix(j.buf.Bytes(), []byte("\n")))
	return err
}

func (j *jsonWriter) raw(s string) error {
	_, err := j.w.WriteString(s)
	return err
}

// renderJSON writes one object on one line:
// {"campaign":…,"state":…,"generated":…,"summary":{…},"bounces":[…],"recipients":[…]}.
// The summary is built first; the bounces and recipients are written as
// they are read.
func (r *Report) renderJSON(ctx context.Context, w io.Writer) error {
	j := newJSONWriter(w)
	// The head is a whole object: it is written without its closing brace,
	// and the streamed arrays follow.
	j.buf.Reset()
	if err := j.enc.Encode(r.headJSON()); err != nil {
		return err
	}
	if _, err := j.w.Write(bytes.TrimSuffix(j.buf.Bytes(), []byte("}\n"))); err != nil {
		return err
	}
	return r.streamJSONTail(ctx, j)
}

func (r *Report) streamJSONTail(ctx context.Context, j *jsonWriter) error {
	if err := j.raw(`,"bounces":[`); err != nil {
		return err
	}
	sep := ""
	err := r.eachBounce(ctx, func(b Bounce) error {
		if err := j.raw(sep); err != nil {
			return err
		}
		sep = ","
		return j.value(bounceJSON{Email: b.Email, Job: b.Job, Provider: b.Group, Code: b.Parsed.Code, Enhanced: b.Parsed.Enhanced,
			Text: b.Parsed.Text, Reply: b.Reply, Attempts: b.Attempts, Updated: stamp(b.Updated)})
	})
	if err != nil {
		return err
	}
	if err := j.raw(`],"recipients":[`); err != nil {
		return err
	}
	sep = ""
	err = r.src.EachDelivery(ctx, r.id, "", func(d store.Delivery) error {
		if err := j.raw(sep); err != nil {
			return err
		}
		sep = ","
		return j.value(recipientJSON{Email: d.Email, Job: d.Job, Provider: d.Group, State: d.State, Attempts: d.Attempts,
			Reply: d.Reply, Updated: stamp(d.Updated)})
	})
	if err != nil {
		return err
	}
	if err := j.raw("]}\n"); err != nil {
		return err
	}
	return j.w.Flush()
}
