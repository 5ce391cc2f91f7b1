package message_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/relayctl/relayctl/message"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fixedNow is the clock every composer in these tests uses.
func fixedNow() time.Time {
	return time.Date(2026, time.March, 14, 9, 26, 53, 0, time.FixedZone("", 3600))
}

var (
	secret      = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

func newComposer(t *testing.T, spec message.Spec) *message.Composer {
	t.Helper()
	if spec.Secret == nil {
		spec.Secret = secret
	}
	c, err := message.NewComposer(spec, fixedNow)
	if err != nil {
		t.Fatalf("NewComposer: %v", err)
	}
	return c
}

func compose(t *testing.T, c *message.Composer, r message.Recipient) ([]byte, message.Envelope) {
	t.Helper()
	var b bytes.Buffer
	env, err := c.Compose(&b, r)
	if err != nil {
		t.Fatalf("Compose(%s): %v", r.Email, err)
	}
	return b.Bytes(), env
}

// wire turns a string's line ends, whatever they are, into CRLF: what a
// body decoded from the wire holds.
func wire(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

type addr struct{ Name, Address string }

type attachment struct {
	Name string
	Data string
}

// parsed is what a mail reader gets out of a message.
type parsed struct {
	Subject     string
	From, To    []addr
	MessageID   string
	Text, HTML  string
	Attachments []attachment
	// Fields counts the top-level header fields by name.
	Fields map[string]int
	// TextEncoding is the text part's Content-Transfer-Encoding.
	TextEncoding string
}

// parseBack reads msg with go-message's mail reader.
func parseBack(t *testing.T, msg []byte) parsed {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("mail.CreateReader: %v", err)
	}
	defer mr.Close()
	var p parsed
	p.Fields = map[string]int{}
	for f := mr.Header.Fields(); f.Next(); {
		p.Fields[f.Key()]++
	}
	if p.Subject, err = mr.Header.Subject(); err != nil {
		t.Errorf("Subject: %v", err)
	}
	addrs := func(k string) []addr {
		l, err := mr.Header.AddressList(k)
		if err != nil {
			t.Errorf("%s %q: %v", k, mr.Header.Get(k), err)
		}
		var out []addr
		for _, a := range l {
			out = append(out, addr{a.Name, a.Address})
		}
		return out
	}
	p.From, p.To = addrs("From"), addrs("To")
	if p.MessageID, err = mr.Header.MessageID(); err != nil {
		t.Errorf("Message-ID: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatalf("reading a part: %v", err)
		}
		switch h := part.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			switch ct {
			case "text/plain":
				if p.Text != "" {
					t.Errorf("two text/plain parts")
				}
				p.Text = string(body)
				p.TextEncoding = h.Get("Content-Transfer-Encoding")
			case "text/html":
				if p.HTML != "" {
					t.Errorf("two text/html parts")
				}
				p.HTML = string(body)
			default:
				t.Errorf("inline part of type %q", ct)
			}
		case *mail.AttachmentHeader:
			name, err := h.Filename()
			if err != nil {
				t.Errorf("attachment file name: %v", err)
			}
			p.Attachments = append(p.Attachments, attachment{name, string(body)})
		}
	}
	return p
}

// checkFields checks that the message's header has each of want once
// (names compared without regard to case) and no other field.
func (p parsed) checkFields(t *testing.T, want []string) {
	t.Helper()
	var got []string
	for k, n := range p.Fields {
		got = append(got, strings.ToLower(k))
		if n != 1 {
			t.Errorf("%d %s fields", n, k)
		}
	}
	slices.Sort(got)
	var lower []string
	for _, k := range want {
		lower = append(lower, strings.ToLower(k))
	}
	slices.Sort(lower)
	if !slices.Equal(got, lower) {
		t.Errorf("header fields %q, want %q", got, lower)
	}
}

// checkWellFormed checks what every message relayctl writes must be: CRLF
// line ends only, no line over 998 octets, no NUL, 7-bit (bodies are
// encoded), and header sections, the message's and its parts', of
// "Name: value" lines and continuations in printable ASCII.
func checkWellFormed(t *testing.T, msg []byte) {
	t.Helper()
	if len(msg) == 0 {
		t.Fatal("empty message")
	}
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		t.Errorf("message does not end in CRLF: ...%q", msg[max(0, len(msg)-20):])
	}
	for i, c := range msg {
		switch {
		case c == '\r' && (i+1 == len(msg) || msg[i+1] != '\n'):
			t.Errorf("bare CR at offset %d: %q", i, around(msg, i))
			return
		case c == '\n' && (i == 0 || msg[i-1] != '\r'):
			t.Errorf("bare LF at offset %d: %q", i, around(msg, i))
			return
		case c == 0:
			t.Errorf("NUL at offset %d: %q", i, around(msg, i))
			return
		case c >= 0x80:
			t.Errorf("8-bit octet %#x at offset %d: %q", c, i, around(msg, i))
			return
		}
	}
	lines := strings.Split(strings.TrimSuffix(string(msg), "\r\n"), "\r\n")
	for n, l := range lines {
		if len(l) > 998 {
			t.Errorf("line %d has %d octets: %.60q...", n+1, len(l), l)
		}
	}
	// Header sections: the message's, and each part's after a boundary.
	boundaries := map[string]bool{}
	entities := 0
	e, err := gomessage.Read(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("message.Read: %v", err)
	}
	if err := e.Walk(func(_ []int, e *gomessage.Entity, err error) error {
		if err != nil {
			return err
		}
		entities++
		if _, params, err := e.Header.ContentType(); err == nil && params["boundary"] != "" {
			boundaries[params["boundary"]] = true
		}
		return nil
	}); err != nil {
		t.Fatalf("walking the MIME structure: %v", err)
	}
	inHeader, sections := true, 1
	for n, l := range lines {
		if b, ok := strings.CutPrefix(l, "--"); ok && boundaries[b] {
			inHeader = true
			sections++
			continue
		}
		if !inHeader {
			continue
		}
		if l == "" {
			inHeader = false
			continue
		}
		for _, c := range []byte(l) {
			if (c < ' ' && c != '\t') || c > '~' {
				t.Errorf("header line %d has octet %#x: %q", n+1, c, l)
				break
			}
		}
		if l[0] != ' ' && l[0] != '\t' && !headerLine.MatchString(l) {
			t.Errorf("line %d in a header section is not a header line: %.80q", n+1, l)
		}
	}
	if inHeader {
		t.Errorf("a header section has no empty line after it")
	}
	if sections != entities {
		t.Errorf("%d header sections for %d entities", sections, entities)
	}
}

var headerLine = regexp.MustCompile(`^[!-9;-~]+:`)

func around(b []byte, i int) []byte {
	return b[max(0, i-30):min(len(b), i+30)]
}

// golden compares got with testdata/golden/NAME.eml, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".eml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := bytes.SplitAfter(got, []byte("\n")), bytes.SplitAfter(want, []byte("\n"))
	for i := range max(len(gl), len(wl)) {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			t.Errorf("message differs from %s at line %d:\n got %q\nwant %q\n(go test -update rewrites the golden files)", path, i+1, g, w)
			return
		}
	}
}

const textTemplate = "From: Example News <news@example.com>\n" +
	"To: {{.first_name}} {{.last_name}}\n" +
	"Subject: Spring news for {{.first_name}}\n" +
	"Reply-To: Replies <replies@example.com>\n" +
	"X-Campaign: spring\n" +
	"\n" +
	"Dear {{.first_name}},\n" +
	"\n" +
	"The spring newsletter is out.{{with .note}}\n{{.}}{{end}}\n" +
	"\n" +
	"Regards,\n" +
	"Example News\n"

const htmlTemplate = "<!DOCTYPE html>\n<html><body>\n<p>Dear {{.first_name}},</p>\n" +
	"<p>The spring newsletter is out.{{with .note}} {{.}}{{end}}</p>\n</body></html>\n"

var ann = message.Recipient{Email: "ann@example.org",
	Values: map[string]string{"first_name": "Ann", "last_name": "Example", "note": "Tom & Jerry <3"}}

var (
	pdfFile    = message.Attachment{Name: "programme.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")}
	csvFile    = message.Attachment{Name: "dates.csv", ContentType: "text/csv", Data: []byte("date,event\r\n2026-04-01,opening\r\n")}
	accentFile = message.Attachment{Name: "Résumé für Zoë – 2026.txt", ContentType: "text/plain", Data: []byte("Grüße aus Köln\n")}
	pngFile    = message.Attachment{Name: "logo.png", ContentType: "image/png", Data: append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0, 0xff, '\r', '\n', 0x80}, 40)...)}
)

const nonASCIITemplate = "From: Café Zoë Brontë <news@example.com>\n" +
	"To: {{.first_name}} {{.last_name}}\n" +
	"Subject: Grüße, {{.first_name}}! Ünïcödé 日本語 🎉\n" +
	"X-Campaign: spring\n" +
	"\n" +
	"Hallo {{.first_name}},\n" +
	"\n" +
	"schöne Grüße aus Köln — bis bald.\n"

var jurgen = message.Recipient{Email: "Jurgen.Muller@Example.NET",
	Values: map[string]string{"first_name": "Jürgen", "last_name": "Müller-Lüdenscheidt"}}

var allSettings = message.Settings{
	ReturnPath:        "bounces@example.com",
	VERP:              true,
	UnsubscribeMailto: "unsubscribe@example.com",
	UnsubscribeURL:    "https://example.com/unsubscribe/{token}?list=news",
	FeedbackID:        "{campaign}:newsletter:example",
}

type goldenCase struct {
	name        string
	template    string
	html        string
	attachments []message.Attachment
	settings    message.Settings
	campaign    string
	rcpt        message.Recipient
	// What a mail reader must get back.
	subject        string
	from, to       addr
	text, htmlBody string
	attachNames    []string
	fields         []string // top-level header fields, in any order
}

var baseFields = []string{"Date", "From", "To", "Subject", "Reply-To", "X-Campaign", "Message-ID", "MIME-Version", "Content-Type"}

var goldenCases = []goldenCase{
	{
		name: "plain_text", template: textTemplate, rcpt: ann,
		subject: "Spring news for Ann",
		from:    addr{"Example News", "news@example.com"}, to: addr{"Ann Example", "ann@example.org"},
		text:   "Dear Ann,\n\nThe spring newsletter is out.\nTom & Jerry <3\n\nRegards,\nExample News\n",
		fields: append(slices.Clone(baseFields), "Content-Transfer-Encoding"),
	},
	{
		name: "html_text", template: textTemplate, html: htmlTemplate, rcpt: ann,
		subject: "Spring news for Ann",
		from:    addr{"Example News", "news@example.com"}, to: addr{"Ann Example", "ann@example.org"},
		text:     "Dear Ann,\n\nThe spring newsletter is out.\nTom & Jerry <3\n\nRegards,\nExample News\n",
		htmlBody: "<!DOCTYPE html>\n<html><body>\n<p>Dear Ann,</p>\n<p>The spring newsletter is out. Tom &amp; Jerry &lt;3</p>\n</body></html>\n",
		fields:   baseFields,
	},
	{
		name: "text_attachment", template: textTemplate, attachments: []message.Attachment{pdfFile}, rcpt: ann,
		subject: "Spring news for Ann",
		from:    addr{"Example News", "news@example.com"}, to: addr{"Ann Example", "ann@example.org"},
		text:        "Dear Ann,\n\nThe spring newsletter is out.\nTom & Jerry <3\n\nRegards,\nExample News\n",
		attachNames: []string{"programme.pdf"},
		fields:      baseFields,
	},
	{
		name: "html_text_two_attachments", template: textTemplate, html: htmlTemplate,
		attachments: []message.Attachment{csvFile, accentFile}, rcpt: ann,
		// The URL has no {token}: the token is added as a parameter.
		settings: message.Settings{UnsubscribeMailto: "unsubscribe@example.com", UnsubscribeURL: "https://example.com/unsubscribe?list=news"},
		subject:  "Spring news for Ann",
		from:     addr{"Example News", "news@example.com"}, to: addr{"Ann Example", "ann@example.org"},
		text:        "Dear Ann,\n\nThe spring newsletter is out.\nTom & Jerry <3\n\nRegards,\nExample News\n",
		htmlBody:    "<!DOCTYPE html>\n<html><body>\n<p>Dear Ann,</p>\n<p>The spring newsletter is out. Tom &amp; Jerry &lt;3</p>\n</body></html>\n",
		attachNames: []string{"dates.csv", "Résumé für Zoë – 2026.txt"},
		fields:      append(slices.Clone(baseFields), "List-Unsubscribe", "List-Unsubscribe-Post"),
	},
	{
		name: "non_ascii_settings", template: nonASCIITemplate, settings: allSettings, campaign: "spring-2026",
		attachments: []message.Attachment{pngFile}, rcpt: jurgen,
		subject: "Grüße, Jürgen! Ünïcödé 日本語 🎉",
		from:    addr{"Café Zoë Brontë", "news@example.com"}, to: addr{"Jürgen Müller-Lüdenscheidt", "Jurgen.Muller@Example.NET"},
		text:        "Hallo Jürgen,\n\nschöne Grüße aus Köln — bis bald.\n",
		attachNames: []string{"logo.png"},
		fields: []string{"Date", "From", "To", "Subject", "X-Campaign", "Message-ID", "MIME-Version", "Content-Type",
			"List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID"},
	},
}

func (gc goldenCase) composer(t *testing.T) *message.Composer {
	t.Helper()
	tm := parse(t, gc.template)
	if gc.html != "" {
		if err := tm.AddHTML(gc.html); err != nil {
			t.Fatalf("AddHTML: %v", err)
		}
	}
	return newComposer(t, message.Spec{Campaign: gc.campaign, Template: tm, Attachments: gc.attachments, Settings: gc.settings})
}

func TestGolden(t *testing.T) {
	for _, gc := range goldenCases {
		t.Run(gc.name, func(t *testing.T) {
			c := gc.composer(t)
			got, env := compose(t, c, gc.rcpt)
			golden(t, gc.name, got)

			// The golden file itself, not only what was rendered, must
			// be a well-formed message that reads back as intended.
			want, err := os.ReadFile(filepath.Join("testdata", "golden", gc.name+".eml"))
			if err != nil {
				t.Fatal(err)
			}
			checkWellFormed(t, want)
			p := parseBack(t, want)
			if p.Subject != gc.subject {
				t.Errorf("Subject = %q, want %q", p.Subject, gc.subject)
			}
			if !slices.Equal(p.From, []addr{gc.from}) {
				t.Errorf("From = %q, want %q", p.From, gc.from)
			}
			if !slices.Equal(p.To, []addr{gc.to}) {
				t.Errorf("To = %q, want %q", p.To, gc.to)
			}
			if p.MessageID != env.MessageID || !strings.HasSuffix(p.MessageID, "@example.com") {
				t.Errorf("Message-ID = %q, want %q (From's domain)", p.MessageID, env.MessageID)
			}
			if p.Text != wire(gc.text) {
				t.Errorf("text body = %q, want %q", p.Text, wire(gc.text))
			}
			if gc.htmlBody != "" && p.HTML != wire(gc.htmlBody) || gc.htmlBody == "" && p.HTML != "" {
				t.Errorf("HTML body = %q, want %q", p.HTML, wire(gc.htmlBody))
			}
			var names []string
			for i, a := range p.Attachments {
				names = append(names, a.Name)
				if i < len(gc.attachments) && a.Data != string(gc.attachments[i].Data) {
					t.Errorf("attachment %q = %q, want %q", a.Name, a.Data, gc.attachments[i].Data)
				}
			}
			if !slices.Equal(names, gc.attachNames) {
				t.Errorf("attachments %q, want %q", names, gc.attachNames)
			}
			p.checkFields(t, gc.fields)
		})
	}
}

// TestGoldenSettings checks the per-recipient headers of the goldens that
// have settings against the composer's tokens.
func TestGoldenSettings(t *testing.T) {
	for _, gc := range goldenCases {
		if gc.settings == (message.Settings{}) {
			continue
		}
		t.Run(gc.name, func(t *testing.T) {
			c := gc.composer(t)
			msg, _ := compose(t, c, gc.rcpt)
			mr, err := mail.CreateReader(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			token := c.Token("unsubscribe", gc.rcpt.Email)
			var uris []string
			if gc.settings.UnsubscribeMailto != "" {
				uris = append(uris, "<mailto:"+gc.settings.UnsubscribeMailto+"?subject=unsubscribe%20"+token+">")
			}
			if u := gc.settings.UnsubscribeURL; strings.Contains(u, "{token}") {
				uris = append(uris, "<"+strings.ReplaceAll(u, "{token}", token)+">")
			} else if u != "" {
				uris = append(uris, "<"+u+"&token="+token+">")
			}
			if got, want := mr.Header.Get("List-Unsubscribe"), strings.Join(uris, ", "); got != want {
				t.Errorf("List-Unsubscribe = %q, want %q", got, want)
			}
			if got := mr.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
				t.Errorf("List-Unsubscribe-Post = %q", got)
			}
			want := strings.ReplaceAll(gc.settings.FeedbackID, "{campaign}", gc.campaign)
			if got := mr.Header.Get("Feedback-ID"); got != want {
				t.Errorf("Feedback-ID = %q, want %q", got, want)
			}
		})
	}
}

func TestListUnsubscribe(t *testing.T) {
	tm := parse(t, msg(stdHeaders, "Hello\n"))
	for _, tc := range []struct {
		name     string
		settings message.Settings
		want     string // TOKEN stands for the recipient's token
		post     bool
	}{
		{"none", message.Settings{}, "", false},
		{"mailto only", message.Settings{UnsubscribeMailto: "leave@example.net"}, "<mailto:leave@example.net?subject=unsubscribe%20TOKEN>", false},
		{"url with {token}", message.Settings{UnsubscribeURL: "https://example.net/u/{token}"}, "<https://example.net/u/TOKEN>", true},
		{"url without query", message.Settings{UnsubscribeURL: "https://example.net/unsubscribe"}, "<https://example.net/unsubscribe?token=TOKEN>", true},
		{"url with query", message.Settings{UnsubscribeURL: "https://example.net/unsubscribe?l=7"}, "<https://example.net/unsubscribe?l=7&token=TOKEN>", true},
		{"both", message.Settings{UnsubscribeMailto: "leave@example.net", UnsubscribeURL: "https://example.net/u?t={token}"},
			"<mailto:leave@example.net?subject=unsubscribe%20TOKEN>, <https://example.net/u?t=TOKEN>", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newComposer(t, message.Spec{Template: tm, Settings: tc.settings})
			out, _ := compose(t, c, ann)
			checkWellFormed(t, out)
			mr, err := mail.CreateReader(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(tc.want, "TOKEN", c.Token("unsubscribe", ann.Email))
			if got := mr.Header.Get("List-Unsubscribe"); got != want {
				t.Errorf("List-Unsubscribe = %q, want %q", got, want)
			}
			if got := mr.Header.Has("List-Unsubscribe-Post"); got != tc.post {
				t.Errorf("List-Unsubscribe-Post present: %v, want %v", got, tc.post)
			}
		})
	}
}

// TestInjection renders values that try to add header lines, or are far
// too long for one line, in the Subject, the To display name and the body.
func TestInjection(t *testing.T) {
	tm := parse(t, "From: News <news@example.com>\n"+
		"To: {{.first_name}} {{.last_name}}\n"+
		"Subject: Note: {{.subject}}\n"+
		"\n"+
		"{{.body}}\n")
	c := newComposer(t, message.Spec{Template: tm})
	long := strings.Repeat("x", 10000)
	longWords := strings.Repeat("word ", 2000)
	for _, tc := range []struct {
		name, value string
		// stripped is the value as a header must show it; "" for the
		// value itself.
		stripped string
	}{
		{"LF", "a\nBcc: victim@example.net", "a Bcc: victim@example.net"},
		{"CR", "a\rBcc: victim@example.net", "a Bcc: victim@example.net"},
		{"CRLF", "a\r\nBcc: victim@example.net\r\n\r\nfake body", "a Bcc: victim@example.net fake body"},
		{"LF and continuation", "a\n Bcc: victim@example.net", "a  Bcc: victim@example.net"},
		{"NUL", "a\x00Bcc: victim@example.net", "a Bcc: victim@example.net"},
		{"trailing CRLF", "a\r\n", "a"},
		{"long without spaces", long, ""},
		{"long with spaces", longWords, ""},
		{"long non-ASCII", strings.Repeat("é", 5000), ""},
		{"address syntax", `Eve <eve@example.net>, "Mallory" <mallory@example.net>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := message.Recipient{Email: "ann@example.org",
				Values: map[string]string{"subject": tc.value, "first_name": tc.value, "last_name": "Example", "body": tc.value}}
			out, env := compose(t, c, r)
			checkWellFormed(t, out)
			if t.Failed() {
				t.Logf("message:\n%.3000s", out)
			}
			p := parseBack(t, out)
			p.checkFields(t, []string{"Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"})
			stripped := tc.stripped
			if stripped == "" {
				stripped = tc.value
			}
			// Folding may add white space to a word too long for a line;
			// nothing else may change.
			if got, want := p.Subject, "Note: "+stripped; squeeze(got) != squeeze(want) || strings.ContainsAny(got, "\r\n\x00") {
				t.Errorf("Subject = %.200q, want %.200q", got, want)
			}
			wantTo := addr{strings.TrimSpace(stripped + " Example"), r.Email}
			if len(p.To) != 1 || p.To[0].Address != wantTo.Address || squeeze(p.To[0].Name) != squeeze(wantTo.Name) || strings.ContainsAny(p.To[0].Name, "\r\n\x00") {
				t.Errorf("To = %.200q, want [%.200q]", p.To, wantTo)
			}
			if p.MessageID != env.MessageID {
				t.Errorf("Message-ID = %q, want %q", p.MessageID, env.MessageID)
			}
			// The body keeps the value, line ends made CRLF.
			if want := wire(tc.value + "\n"); p.Text != want {
				t.Errorf("body = %.200q, want %.200q", p.Text, want)
			}
		})
	}
}

// squeeze drops all white space.
func squeeze(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// TestLongBodyLines: a body line over 998 octets must go quoted-printable,
// in short lines; one that fits may stay 7bit.
func TestLongBodyLines(t *testing.T) {
	tm := parse(t, msg(stdHeaders, "{{.body}}\nend\n"))
	if err := tm.AddHTML("<p>{{.body}}</p>\n"); err != nil {
		t.Fatal(err)
	}
	plain := parse(t, msg(stdHeaders, "{{.body}}\nend\n"))
	for _, tc := range []struct {
		name, body string
		encoding   string
	}{
		{"10000 without spaces", strings.Repeat("y", 10000), "quoted-printable"},
		{"10000 with spaces", strings.Repeat("word ", 2000), "quoted-printable"},
		{"999", strings.Repeat("z", 999), "quoted-printable"},
		{"500", strings.Repeat("z", 500), "7bit"},
		{"long second line", "short\n" + strings.Repeat("y", 2000), "quoted-printable"},
	} {
		for _, tm := range []*message.Template{plain, tm} {
			name := tc.name
			if tm.HasHTML() {
				name += " with HTML"
			}
			t.Run(name, func(t *testing.T) {
				c := newComposer(t, message.Spec{Template: tm})
				out, _ := compose(t, c, message.Recipient{Email: "ann@example.org", Values: map[string]string{"body": tc.body}})
				checkWellFormed(t, out)
				p := parseBack(t, out)
				if p.TextEncoding != tc.encoding {
					t.Errorf("Content-Transfer-Encoding %q, want %q", p.TextEncoding, tc.encoding)
				}
				if want := wire(tc.body + "\nend\n"); p.Text != want {
					t.Errorf("text body = %.100q..., want %.100q...", p.Text, want)
				}
				if tc.encoding != "quoted-printable" {
					return
				}
				_, body, _ := bytes.Cut(out, []byte("\r\n\r\n"))
				for n, l := range strings.Split(string(body), "\r\n") {
					if len(l) > 78 {
						t.Errorf("body line %d has %d octets: %.80q...", n+1, len(l), l)
						break
					}
				}
			})
		}
	}
}

// TestFeedbackIDCampaign: the campaign's name goes into the Feedback-ID
// header, which must come out ASCII whatever the name. (NewComposer refusing
// a name it cannot put there would do too: a campaign is checked once, when
// it is planned.)
func TestFeedbackIDCampaign(t *testing.T) {
	tm := parse(t, msg(stdHeaders, "Hello\n"))
	for _, name := range []string{"spring-2026", "Frühling 2026", "été"} {
		t.Run(name, func(t *testing.T) {
			c, err := message.NewComposer(message.Spec{Campaign: name, Template: tm, Secret: secret,
				Settings: message.Settings{FeedbackID: "{campaign}:newsletter:example"}}, fixedNow)
			if err != nil {
				t.Logf("NewComposer refuses the name: %v", err)
				return
			}
			out, _ := compose(t, c, ann)
			checkWellFormed(t, out)
		})
	}
}

// TestReservedHeaders: a template may not set what relayctl sets.
func TestReservedHeaders(t *testing.T) {
	for _, line := range []string{
		"To: x@example.com",
		"To: Ann <x@example.com>",
		"To: <{{.email}}>",
		"Message-ID: <1@example.com>",
		"message-id: <1@example.com>",
		"Date: Sat, 14 Mar 2026 09:26:53 +0100",
		"Cc: x@example.com",
		"CC: {{.boss}}",
		"Bcc: x@example.com",
		"Content-Type: text/html",
		"content-type: text/plain; charset=utf-8",
		"MIME-Version: 1.0",
		"Content-Transfer-Encoding: 8bit",
		"List-Unsubscribe: <mailto:x@example.com>",
		"DKIM-Signature: v=1",
		"Return-Path: <x@example.com>",
	} {
		t.Run(line, func(t *testing.T) {
			src := "From: News <news@example.com>\nSubject: Hello\n" + line + "\n\nBody\n"
			tm, err := message.ParseTemplate(src)
			var te *message.TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("ParseTemplate accepted %q (%v), want a *TemplateError", line, tm != nil)
			}
			name, _, _ := strings.Cut(line, ":")
			if te.Line != 3 || !strings.Contains(strings.ToLower(te.Msg), strings.ToLower(name)) {
				t.Errorf("error = line %d %q, want line 3 naming %s", te.Line, te.Msg, name)
			}
		})
	}
	// A display name only is fine.
	parse(t, "From: News <news@example.com>\nSubject: Hello\nTo: {{.first_name}} {{.last_name}}\n\nBody\n")
}

func TestEnvelope(t *testing.T) {
	tm := parse(t, msg(stdHeaders, "Hello\n"))
	token := regexp.MustCompile(`^[a-z2-7]{20}$`)
	for _, tc := range []struct {
		name     string
		settings message.Settings
		// want is the MAIL FROM address; TOKEN stands for the VERP token.
		want, idDomain string
	}{
		{"from", message.Settings{}, "news@example.com", "example.com"},
		{"return path", message.Settings{ReturnPath: "bounces@bounce.example.net"}, "bounces@bounce.example.net", "example.com"},
		{"verp, from", message.Settings{VERP: true}, "news+TOKEN@example.com", "example.com"},
		{"verp, return path", message.Settings{VERP: true, ReturnPath: "bounces@bounce.example.net", MessageIDDomain: "id.example.org"},
			"bounces+TOKEN@bounce.example.net", "id.example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newComposer(t, message.Spec{Template: tm, Settings: tc.settings})
			for _, rcpt := range []string{"ann@example.org", "Bob.Smith@Example.ORG"} {
				env := c.Envelope(rcpt)
				verp := c.Token("verp", rcpt)
				if !token.MatchString(verp) {
					t.Errorf("VERP token %q, want 20 base32 characters", verp)
				}
				if want := strings.ReplaceAll(tc.want, "TOKEN", verp); env.MailFrom != want {
					t.Errorf("Envelope(%s).MailFrom = %q, want %q", rcpt, env.MailFrom, want)
				}
				if env.RcptTo != rcpt {
					t.Errorf("Envelope(%s).RcptTo = %q", rcpt, env.RcptTo)
				}
				id, domain, _ := strings.Cut(env.MessageID, "@")
				if !token.MatchString(id) || domain != tc.idDomain {
					t.Errorf("Envelope(%s).MessageID = %q, want TOKEN@%s", rcpt, env.MessageID, tc.idDomain)
				}
				// Compose gives the same envelope, and the Message-ID header
				// matches it.
				out, cenv := compose(t, c, message.Recipient{Email: rcpt})
				if cenv != env {
					t.Errorf("Compose envelope %+v, Envelope %+v", cenv, env)
				}
				if p := parseBack(t, out); p.MessageID != env.MessageID {
					t.Errorf("Message-ID header %q, envelope %q", p.MessageID, env.MessageID)
				}
			}
			if a, b := c.Envelope("ann@example.org"), c.Envelope("bob@example.org"); a.MessageID == b.MessageID || (tc.settings.VERP && a.MailFrom == b.MailFrom) {
				t.Errorf("two recipients share tokens: %+v, %+v", a, b)
			}
		})
	}
}

// TestTokensStable: tokens depend on the secret and the address, not on
// the composer or the address's case.
func TestTokensStable(t *testing.T) {
	tm := parse(t, msg(stdHeaders, "Hello\n"))
	settings := message.Settings{VERP: true, UnsubscribeURL: "https://example.com/u/{token}"}
	c1 := newComposer(t, message.Spec{Template: tm, Settings: settings})
	c2 := newComposer(t, message.Spec{Template: tm, Settings: settings, Secret: slices.Clone(secret)})
	c3 := newComposer(t, message.Spec{Template: tm, Settings: settings, Secret: otherSecret})
	type tokens struct{ messageID, mailFrom, unsubscribe, listUnsubscribe string }
	get := func(c *message.Composer, email string) tokens {
		out, env := compose(t, c, message.Recipient{Email: email})
		mr, err := mail.CreateReader(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		return tokens{env.MessageID, env.MailFrom, c.Token("unsubscribe", email), mr.Header.Get("List-Unsubscribe")}
	}
	want := get(c1, "ann@example.org")
	for _, email := range []string{"ann@example.org", "Ann@Example.org", "ANN@EXAMPLE.ORG"} {
		for i, c := range []*message.Composer{c1, c2} {
			if got := get(c, email); got != want {
				t.Errorf("composer %d, %s: %+v, want %+v", i+1, email, got, want)
			}
		}
		got := get(c3, email)
		if got.messageID == want.messageID || got.mailFrom == want.mailFrom || got.unsubscribe == want.unsubscribe || got.listUnsubscribe == want.listUnsubscribe {
			t.Errorf("another secret, %s: %+v, shares a token with %+v", email, got, want)
		}
	}
	if !strings.Contains(want.listUnsubscribe, want.unsubscribe) {
		t.Errorf("List-Unsubscribe %q lacks the token %q", want.listUnsubscribe, want.unsubscribe)
	}
}

func TestSettingsCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings message.Settings
		want     string // "" for no error; else a substring
	}{
		{"none", message.Settings{}, ""},
		{"all", allSettings, ""},
		{"http url", message.Settings{UnsubscribeURL: "http://example.com/u/{token}"}, "https"},
		{"no scheme", message.Settings{UnsubscribeURL: "example.com/u/{token}"}, "https"},
		{"mailto as url", message.Settings{UnsubscribeURL: "mailto:u@example.com"}, "https"},
		{"no host", message.Settings{UnsubscribeURL: "https:///u"}, "https"},
		{"return path without @", message.Settings{ReturnPath: "bounces"}, "return_path"},
		{"return path with two @", message.Settings{ReturnPath: "bounces@example.org@example.net"}, "return_path"},
		{"return path with name", message.Settings{ReturnPath: "Bounces <bounces@example.org>"}, "return_path"},
		{"return path in brackets", message.Settings{ReturnPath: "<bounces@example.org>"}, "return_path"},
		{"return path with space", message.Settings{ReturnPath: "bounces @example.org"}, "return_path"},
		{"return path with CRLF", message.Settings{ReturnPath: "bounces@example.org\r\nRCPT TO:<x@example.net>"}, "return_path"},
		{"return path without local part", message.Settings{ReturnPath: "@example.org"}, "return_path"},
		{"return path without domain", message.Settings{ReturnPath: "bounces@"}, "return_path"},
		{"unsubscribe mailto without @", message.Settings{UnsubscribeMailto: "unsubscribe"}, "unsubscribe_mailto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.settings.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check: %v, want no error", err)
			case tc.want != "" && err == nil:
				t.Errorf("Check accepted %+v", tc.settings)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("Check: %v, want %q", err, tc.want)
			}
			if tc.want == "" {
				return
			}
			// NewComposer checks the settings too.
			if _, err := message.NewComposer(message.Spec{Template: parse(t, msg(stdHeaders, "x\n")), Secret: secret, Settings: tc.settings}, fixedNow); err == nil {
				t.Errorf("NewComposer accepted %+v", tc.settings)
			}
		})
	}
}

// TestComposeDeterministic: the same recipient renders to the same bytes.
func TestComposeDeterministic(t *testing.T) {
	gc := goldenCases[len(goldenCases)-1]
	a, _ := compose(t, gc.composer(t), gc.rcpt)
	b, _ := compose(t, gc.composer(t), gc.rcpt)
	if !bytes.Equal(a, b) {
		t.Errorf("two renderings differ")
	}
	// The fixed clock is what dates the message.
	mr, err := mail.CreateReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := mr.Header.Date(); err != nil || !d.Equal(fixedNow()) {
		t.Errorf("Date = %v, %v; want %v", d, err, fixedNow())
	}
	if got := mr.Header.Get("Date"); got != "Sat, 14 Mar 2026 09:26:53 +0100" {
		t.Errorf("Date field %q", got)
	}
}
