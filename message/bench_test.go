package message_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"html"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/relayctl/relayctl/message"
)

// BenchmarkCompose renders a realistic newsletter, one recipient per op
// drawn in turn from a pool of 1,000: a ~20 KB HTML alternative and a ~3 KB
// text part, both with fields, a Subject and To with fields, VERP and
// one-click unsubscribe. Run with -cpu 1: msgs/s is then per core.
//
//	go test -run '^$' -bench Compose -benchmem -cpu 1 -count 5 ./message/
func BenchmarkCompose(b *testing.B) {
	for _, bc := range []struct {
		name string
		key  string // GenerateKey's kind; "" for unsigned
	}{
		{"unsigned", ""},
		{"rsa2048", "rsa"},
		{"ed25519", "ed25519"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			spec := benchSpec(b)
			var txt string
			if bc.key != "" {
				spec.Signer, txt = benchSigner(b, bc.key)
			}
			comp, err := message.NewComposer(spec, func() time.Time { return benchNow })
			if err != nil {
				b.Fatal(err)
			}
			pool := benchRecipients(1000)
			checkBenchMessage(b, comp, pool[7], txt)

			var out bytes.Buffer
			if _, err := comp.Compose(&out, pool[0]); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(out.Len()))
			i := 0
			for b.Loop() {
				out.Reset()
				if _, err := comp.Compose(&out, pool[i%len(pool)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

var benchNow = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

// benchSpec is the campaign: template, HTML alternative and sender
// settings as relayctl.yaml would give them.
func benchSpec(b *testing.B) message.Spec {
	b.Helper()
	tm, err := message.ParseTemplate(benchText())
	if err != nil {
		b.Fatal(err)
	}
	if err := tm.AddHTML(benchHTML()); err != nil {
		b.Fatal(err)
	}
	return message.Spec{
		Campaign: "spring-2026",
		Template: tm,
		Settings: message.Settings{
			ReturnPath:        "bounces@example.org",
			VERP:              true,
			UnsubscribeMailto: "unsubscribe@example.org",
			UnsubscribeURL:    "https://example.org/unsubscribe/{token}",
			FeedbackID:        "{campaign}:newsletter:relayctl",
		},
		Secret: []byte("0123456789abcdef0123456789abcdef"),
	}
}

// benchSigner writes a new key of kind to a file and loads it, as
// relayctl does from relayctl.yaml; it returns the signer and the TXT
// record's value.
func benchSigner(b *testing.B, kind string) (*message.Signer, string) {
	b.Helper()
	key, txt, err := message.GenerateKey(kind)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "s1.pem")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		b.Fatal(err)
	}
	s, err := message.LoadSigner("example.org", "s1", path)
	if err != nil {
		b.Fatal(err)
	}
	return s, txt
}

// checkBenchMessage makes sure what is measured is the message meant: its
// size, the fields filled in both parts, the headers, and, when signed, a
// signature that verifies against the published key.
func checkBenchMessage(b *testing.B, comp *message.Composer, r message.Recipient, txt string) {
	b.Helper()
	var out bytes.Buffer
	env, err := comp.Compose(&out, r)
	if err != nil {
		b.Fatal(err)
	}
	msg := out.String()
	if n := out.Len(); n < 23_000 || n > 40_000 {
		b.Errorf("message is %d bytes, want a ~20 KB HTML and ~3 KB text message", n)
	}
	if !strings.HasPrefix(env.MailFrom, "bounces+") || !strings.HasSuffix(env.MailFrom, "@example.org") {
		b.Errorf("MAIL FROM %q, want a VERP address bounces+TOKEN@example.org", env.MailFrom)
	}
	// go-message writes field names in canonical MIME case (Feedback-Id);
	// names are case-insensitive.
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	for _, want := range []string{
		fmt.Sprintf("\r\nto: %q <%s>\r\n", r.Values["first_name"]+" "+r.Values["last_name"], r.Email),
		"\r\nsubject: =?utf-8?q?" + r.Values["first_name"] + ",_your_" + r.Values["city"] + "_spring_update_=e2=80=94_march_2026?=\r\n",
		"\r\nlist-unsubscribe: <mailto:unsubscribe@example.org?subject=unsubscribe%20",
		", <https://example.org/unsubscribe/",
		"\r\nlist-unsubscribe-post: list-unsubscribe=one-click\r\n",
		"\r\nfeedback-id: spring-2026:newsletter:relayctl\r\n",
		"\r\ncontent-type: multipart/alternative;",
	} {
		if !strings.Contains(strings.ToLower("\r\n"+head+"\r\n"), strings.ToLower(want)) {
			b.Errorf("header lacks %q:\n%s", want, head)
		}
	}
	parts := benchParts(b, msg)
	text, htmlPart := parts["text/plain"], parts["text/html"]
	if len(text) < 2_800 || len(text) > 3_600 || len(htmlPart) < 19_000 || len(htmlPart) > 22_000 {
		b.Errorf("text part %d bytes, HTML part %d bytes: want ~3 KB and ~20 KB", len(text), len(htmlPart))
	}
	for _, want := range []string{"Dear " + r.Values["first_name"] + ",", "and at " + r.Values["company"] + ".", r.Values["member_id"]} {
		if !strings.Contains(text, want) {
			b.Errorf("text part lacks %q", want)
		}
	}
	for _, want := range []string{"Hello " + r.Values["first_name"] + ",", "and at " + html.EscapeString(r.Values["company"]) + ".", "m=" + r.Values["member_id"] + `"`} {
		if !strings.Contains(htmlPart, want) {
			b.Errorf("HTML part lacks %q", want)
		}
	}
	signed := strings.HasPrefix(msg, "DKIM-Signature:")
	if signed != (txt != "") {
		b.Fatalf("message starts with DKIM-Signature: %v, want %v", signed, txt != "")
	}
	if !signed {
		return
	}
	vs, err := dkim.VerifyWithOptions(strings.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "s1._domainkey.example.org" {
				return nil, fmt.Errorf("no TXT record at %s", domain)
			}
			return []string{txt}, nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
		b.Fatalf("DKIM verification: %+v", vs)
	}
}

// benchParts reads msg's leaf parts, decoded, by content type.
func benchParts(b *testing.B, msg string) map[string]string {
	b.Helper()
	mr, err := mail.CreateReader(strings.NewReader(msg))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]string{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			b.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		body, err := io.ReadAll(p.Body)
		if err != nil {
			b.Fatal(err)
		}
		out[ct] = string(body)
	}
}

// benchRecipients makes n recipients at reserved domains, some with
// non-ASCII names and an empty company.
func benchRecipients(n int) []message.Recipient {
	first := []string{"Ann", "Bob", "José", "Zoë", "Mei", "Olu", "Priya", "Sven", "Chloé", "Tom"}
	last := []string{"Smith", "Müller", "García", "O'Neil", "Nakamura", "Okafor", "Dubois", "Jensen"}
	company := []string{"Acme Ltd", "Widgets & Co", "Globex", "", "Initech", "Umbrella Corp."}
	city := []string{"Leeds", "Zürich", "Lyon", "Osaka", "Lagos", "Aarhus", "Porto"}
	domains := []string{"example.com", "example.net", "example.org", "mail.example", "corp.test"}
	out := make([]message.Recipient, n)
	for i := range out {
		fn := first[i%len(first)]
		out[i] = message.Recipient{
			Email: fmt.Sprintf("%s.%d@%s", strings.ToLower(fn[:1]), i, domains[i%len(domains)]),
			Values: map[string]string{
				"first_name": fn,
				"last_name":  last[i%len(last)],
				"company":    company[i%len(company)],
				"city":       city[i%len(city)],
				"member_id":  fmt.Sprintf("M%06d", 100000+i*7),
			},
		}
	}
	return out
}

// benchText is the message template: headers and a ~3 KB text part.
func benchText() string {
	var s strings.Builder
	s.WriteString(`From: Example News <news@example.org>
Reply-To: Member Services <members@example.org>
Subject: {{.first_name}}, your {{.city}} spring update — March 2026
To: {{.first_name}} {{.last_name}}

Dear {{.first_name}},

Here is what is happening this spring for members in {{.city}}{{if .company}}
and at {{.company}}{{end}}. Your member number is {{.member_id}}.

`)
	paras := []string{
		"Spring meetings. The regional meetings start on 14 March. Each one runs for two hours, with time for questions at the end, and the slides are sent to everyone who registered the next morning.",
		"Annual report. The report for 2025 is out. Membership grew by 8%, the reserve fund reached its target a year early, and the board proposes to keep the fee at €48 for another year.",
		"Training. Places remain on the April courses in bookkeeping, first aid and project planning. Members pay half price; the course fee is refunded in full if you cancel a week ahead.",
		"Volunteers. The summer fair needs people for set-up, the information stand and the children's corner. Two hours of your time makes a difference; reply to this message to sign up.",
		"Your account. You can update your address, your interests and how often we write to you on the members' site at any time. Nothing changes unless you ask.",
	}
	for len(s.String()) < 2900 {
		for _, p := range paras {
			s.WriteString(benchWrap(p, 72))
			s.WriteString("\n\n")
		}
	}
	s.WriteString("Best wishes,\nThe Example News team\n\nMember {{.member_id}} · https://example.org/account\n")
	return s.String()
}

// benchHTML is the HTML alternative: a table-layout newsletter of ~20 KB
// with inline styles, as mailing tools produce.
func benchHTML() string {
	var s strings.Builder
	s.WriteString(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Spring update</title>
<style>
body { margin: 0; padding: 0; background: #f4f4f4; font-family: Helvetica, Arial, sans-serif; }
table { border-collapse: collapse; }
.wrapper { width: 100%; background: #f4f4f4; }
.content { width: 600px; max-width: 600px; background: #ffffff; }
h1 { font-size: 24px; line-height: 30px; color: #1a1a1a; margin: 0 0 12px 0; }
h2 { font-size: 18px; line-height: 24px; color: #1a1a1a; margin: 0 0 8px 0; }
p { font-size: 15px; line-height: 22px; color: #333333; margin: 0 0 12px 0; }
a { color: #0b5cad; }
.button { display: inline-block; padding: 10px 18px; background: #0b5cad; color: #ffffff; text-decoration: none; border-radius: 4px; }
.footer p { font-size: 12px; line-height: 18px; color: #777777; }
@media only screen and (max-width: 620px) { .content { width: 100% !important; } }
</style>
</head>
<body>
<table role="presentation" class="wrapper" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr><td align="center" style="padding: 24px 12px;">
<table role="presentation" class="content" width="600" cellpadding="0" cellspacing="0" border="0">
<tr><td style="padding: 24px 32px; background: #0b5cad;">
<img src="https://static.example.org/img/logo-white.png" width="160" height="40" alt="Example News" style="display: block; border: 0;">
</td></tr>
<tr><td style="padding: 32px 32px 8px 32px;">
<h1>Hello {{.first_name}},</h1>
<p>Here is what is happening this spring for members in <strong>{{.city}}</strong>{{if .company}} and at {{.company}}{{end}}.
Your member number is {{.member_id}}.</p>
</td></tr>
`)
	articles := []struct{ title, text, img string }{
		{"Spring meetings", "The regional meetings start on 14 March. Each one runs for two hours, with time for questions at the end, and the slides are sent to everyone who registered the next morning. This year we meet in twelve cities, three of them for the first time.", "meetings"},
		{"The 2025 annual report", "Membership grew by 8% last year, the reserve fund reached its target a year early, and the board proposes to keep the fee at €48 for another year. The full report, with the auditors' statement, is on the members' site.", "report"},
		{"Training this April", "Places remain on the April courses in bookkeeping, first aid and project planning. Members pay half price, and the course fee is refunded in full if you cancel at least a week ahead.", "training"},
		{"Volunteers wanted", "The summer fair needs people for set-up, the information stand and the children's corner. Two hours of your time makes a real difference to the day; reply to this message to sign up for a shift.", "volunteers"},
		{"From the board", "The board met in February to review the strategy for the next three years. The draft is open for comments until the end of April, and every comment gets an answer before the vote in June.", "board"},
	}
	for i := 0; s.Len() < 19_000; i++ {
		a := articles[i%len(articles)]
		fmt.Fprintf(&s, `<tr><td style="padding: 16px 32px;">
<table role="presentation" width="100%%" cellpadding="0" cellspacing="0" border="0">
<tr>
<td width="160" valign="top" style="padding-right: 16px;"><img src="https://static.example.org/img/2026-03/%s-%d.jpg" width="160" height="107" alt="" style="display: block; border: 0; border-radius: 4px;"></td>
<td valign="top">
<h2>%s</h2>
<p>%s</p>
<p><a class="button" href="https://example.org/news/2026/03/%s?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=spring-2026&amp;m={{.member_id}}" style="display: inline-block; padding: 10px 18px; background: #0b5cad; color: #ffffff; text-decoration: none; border-radius: 4px;">Read more</a></p>
</td>
</tr>
</table>
</td></tr>
`, a.img, i, a.title, a.text, a.img)
	}
	s.WriteString(`<tr><td class="footer" style="padding: 24px 32px; background: #fafafa; border-top: 1px solid #e5e5e5;">
<p>You get this message as a member of Example News ({{.member_id}}).
<a href="https://example.org/account?m={{.member_id}}">Update your preferences</a> or
<a href="https://example.org/unsubscribe?m={{.member_id}}">unsubscribe</a>.</p>
<p>Example News, 1 Example Street, Example Town. Registered in Example Land.</p>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
`)
	return s.String()
}

// benchWrap breaks text into lines of at most width bytes at spaces.
func benchWrap(text string, width int) string {
	var s strings.Builder
	line := 0
	for i, w := range strings.Fields(text) {
		if i > 0 && line+1+len(w) > width {
			s.WriteString("\n")
			line = 0
		} else if i > 0 {
			s.WriteString(" ")
			line++
		}
		s.WriteString(w)
		line += len(w)
	}
	return s.String()
}

// BenchmarkSignDigest is the floor under BenchmarkCompose's signed cases:
// the private-key operation alone, on a SHA-256 digest, with nothing
// composed or canonicalized.
func BenchmarkSignDigest(b *testing.B) {
	for _, kind := range []string{"rsa", "ed25519"} {
		b.Run(kind, func(b *testing.B) {
			s, _ := benchSigner(b, kind)
			digest := sha256.Sum256([]byte("message"))
			var opts crypto.SignerOpts = crypto.SHA256
			if kind == "ed25519" {
				opts = crypto.Hash(0) // Ed25519 signs the message itself
			}
			for b.Loop() {
				if _, err := s.Key.Sign(rand.Reader, digest[:], opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
		})
	}
}

// BenchmarkComposeShort renders bench/run.sh's message: a Subject and a
// three-line text body with a field each, no HTML, no unsubscribe. It is
// what the run benchmark sends, so composing's share of a run's time is
// measured here alone.
//
//	go test -run '^$' -bench ComposeShort -benchmem -cpu 1 ./message/
func BenchmarkComposeShort(b *testing.B) {
	tm, err := message.ParseTemplate("From: Example Club <news@example.org>\nSubject: Hello {{.first_name}}\n\nDear {{.first_name}},\n\nThe spring meeting is on 12 April at the club house.\nSee you there.\n")
	if err != nil {
		b.Fatal(err)
	}
	comp, err := message.NewComposer(message.Spec{Campaign: "bench", Template: tm, Secret: []byte("0123456789abcdef0123456789abcdef")},
		func() time.Time { return benchNow })
	if err != nil {
		b.Fatal(err)
	}
	pool := make([]message.Recipient, 1000)
	for i := range pool {
		pool[i] = message.Recipient{Email: fmt.Sprintf("user%d@d%d.example", i, i%4), Values: map[string]string{"first_name": fmt.Sprintf("Name%d", i)}}
	}
	var out bytes.Buffer
	if _, err := comp.Compose(&out, pool[5]); err != nil {
		b.Fatal(err)
	}
	if !strings.Contains(out.String(), "\r\nSubject: Hello Name5\r\n") || !strings.Contains(out.String(), "Dear Name5,\r\n") {
		b.Fatalf("not the message meant:\n%s", out.String())
	}
	i := 0
	for b.Loop() {
		out.Reset()
		if _, err := comp.Compose(&out, pool[i%len(pool)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
