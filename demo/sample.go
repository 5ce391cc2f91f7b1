package demo

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// The tour's world. Every name is reserved (RFC 2606, RFC 6761): .example,
// .test and example.com/.net/.org can never reach anyone real, and the
// tour's own DNS server is the only one asked about them.
//
// Mail domains: each has an MX host whose address is 127.0.0.1, where the
// capture server listens; club.example and members.test share a hosting
// provider's MX hosts (mx*.mailhost.example), which the tour's
// relayctl.yaml names as a provider; smallshop.example has no MX but an
// address (an implicit MX, RFC 5321 §5.1).
//
// Dead domains: closed.example publishes a null MX (RFC 7505),
// web-only.example has neither MX nor address, and old-company.example
// does not exist (NXDOMAIN: it is in no zone).
var zone = []string{
	"example.com. 300 IN MX 10 mx1.example.com.",
	"mx1.example.com. 300 IN A 127.0.0.1",
	"example.net. 300 IN MX 10 mx.example.net.",
	"mx.example.net. 300 IN A 127.0.0.1",
	"example.org. 300 IN MX 10 mail.example.org.",
	"mail.example.org. 300 IN A 127.0.0.1",
	"club.example. 300 IN MX 10 mx1.mailhost.example.",
	"members.test. 300 IN MX 10 mx1.mailhost.example.",
	"mx1.mailhost.example. 300 IN A 127.0.0.1",
	"smallshop.example. 300 IN A 127.0.0.1",
	"closed.example. 300 IN MX 0 .",
	`web-only.example. 300 IN TXT "v=spf1 -all"`,
}

// goodDomains get the generated recipients, in turn.
var goodDomains = []string{"example.com", "example.net", "example.org", "club.example", "members.test"}

var (
	firstNames = []string{"Ann", "Ben", "Cara", "Dan", "Eva", "Finn", "Gina", "Hugo", "Ida", "Jon",
		"Kim", "Leo", "Mia", "Ned", "Ola", "Pia", "Quinn", "Rosa", "Sam", "Tara"}
	lastNames = []string{"Lee", "Kahn", "Moreau", "Novak", "Okafor", "Park", "Quist", "Rossi",
		"Silva", "Tanaka", "Ueda", "Vega", "Weber", "Xu"}
	companies = map[string]string{"example.com": "Example Corp", "example.net": "Example Networks",
		"example.org": "Example Foundation", "club.example": "The Example Club", "members.test": "Test Members"}
)

// goodRows is how many generated, clean recipients the list holds.
const goodRows = 277

// sampleRow is one line of the list: its fields, or raw text for a line
// a spreadsheet export would get wrong.
type sampleRow struct {
	fields []string
	raw    string
}

// dirt are the rows a real export has: each is what clean will say of it.
func dirt(good [][]string) []sampleRow {
	row := func(f ...string) sampleRow { return sampleRow{fields: f} }
	upper := strings.ToUpper(good[0][0])
	named := fmt.Sprintf("%s %s <%s>", good[7][1], good[7][2], good[7][0])
	return []sampleRow{
		row("Zoe Adler <zoe.adler@example.com>", "Zoe", "Adler", "Example Corp"),                // kept: display name
		row(`"Doe, John" <john.doe@example.org>`, "John", "Doe", "Example Foundation"),          // kept: quoted display name
		row("mailto:yves.blanc@example.net", "Yves", "Blanc", "Example Networks"),               // kept: mailto:
		{raw: "  Uma.Chen@Example.NET  ,Uma,Chen,Example Networks"},                             // kept: spaces, case
		row("uma.chen@example.net", "Uma", "Chen", "Example Networks"),                          // duplicate, other case
		row(upper, good[0][1], good[0][2], good[0][3]),                                          // duplicate, upper case
		row(named, good[7][1], good[7][2], good[7][3]),                                          // duplicate, display name
		row("Björn Müller <bjorn.muller@example.org>", "Björn", "Müller", "Example Foundation"), // kept: UTF-8 name
		row("victor.dahl.example.com", "Victor", "Dahl", "Example Corp"),                        // syntax: no @
		row("wendy@@example.org", "Wendy", "Ash", "Example Foundation"),                         // syntax
		row("a..b@example.org", "Al", "Bee", "Example Foundation"),                              // syntax: double dot
		row("", "Nora", "Empty", "Example Corp"),                                                // missing
		{raw: "xena@example.com,Xena"},                                                          // malformed: 2 fields of 4
		row("info@example.com", "", "", "Example Corp"),                                         // kept, warned: role account
		row("sales@club.example", "", "", "The Example Club"),                                   // kept, warned: role account
		row("noreply@members.test", "", "", "Test Members"),                                     // kept, warned: role account
		row("carol@closed.example", "Carol", "Ng", "Closed Ltd"),                                // null_mx
		row("dave@closed.example", "Dave", "Ng", "Closed Ltd"),                                  // null_mx
		row("erin@old-company.example", "Erin", "Olsen", "Old Company"),                         // no_domain (NXDOMAIN)
		row("fred@old-company.example", "Fred", "Olsen", "Old Company"),                         // no_domain
		row("gus@web-only.example", "Gus", "Webb", "Web Only"),                                  // no_mail_host
		row("grace@smallshop.example", "Grace", "Hall", "Small Shop"),                           // kept: implicit MX
		row("hank@smallshop.example", "Hank", "Hall", "Small Shop"),                             // kept: implicit MX
	}
}

// listHeader is the list's header row.
var listHeader = []string{"email", "first_name", "last_name", "company"}

// sampleList returns the list: a BOM, CRLF line ends, goodRows generated
// recipients and, spread among them, the dirt.
func sampleList() (data []byte, rows int) {
	good := make([][]string, goodRows)
	for i := range good {
		first, last := firstNames[i%len(firstNames)], lastNames[i/len(firstNames)]
		domain := goodDomains[i%len(goodDomains)]
		good[i] = []string{strings.ToLower(first + "." + last + "@" + domain), first, last, companies[domain]}
	}
	dirty := dirt(good)
	var b bytes.Buffer
	b.WriteString("\ufeff")
	writeCSVLine(&b, listHeader)
	every := len(good) / len(dirty)
	for i, g := range good {
		writeCSVLine(&b, g)
		if d := i / every; i%every == every-1 && d < len(dirty) {
			if dirty[d].raw != "" {
				b.WriteString(dirty[d].raw + "\r\n")
			} else {
				writeCSVLine(&b, dirty[d].fields)
			}
		}
	}
	return b.Bytes(), len(good) + len(dirty)
}

// writeCSVLine writes fields as a spreadsheet would: quoted only when they
// hold a comma or a quote, CRLF at the end.
func writeCSVLine(b *bytes.Buffer, fields []string) {
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		if strings.ContainsAny(f, `,"`) {
			f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		}
		b.WriteString(f)
	}
	b.WriteString("\r\n")
}

// message is the campaign's template: RFC 5322 headers, an empty line, the
// text, with fields named after the list's columns.
const message = `From: Example Club <news@example.org>
Subject: Our annual meeting, {{.first_name | default "member"}}

Dear {{.first_name | default "member"}},

The annual meeting of Example Club members is on the first Saturday of
December. {{if .company}}Bring a colleague from {{.company}} if you like.{{end}}

See you there.
`

// config is the tour's relayctl.yaml: delivery straight to the MX hosts,
// List-Unsubscribe headers, and the shared host as a provider of its own.
const config = `# relayctl demo: the settings the tour runs with (see docs/config.md).
via: direct                  # the built-in relay: each domain's MX hosts
helo: relay.example.org      # the name given in EHLO
message:
  unsubscribe_mailto: unsubscribe@example.org
  unsubscribe_url: https://example.org/unsubscribe/{token}
providers:
  providers:
    - name: mailhost         # a hosting provider: every domain whose MX it runs
      mx_suffixes: [mailhost.example]
      connections: 2
      per_connection: 50
`

// writeFiles writes the list, the message and the configuration.
func writeFiles(t *Tour) error {
	list, rows := sampleList()
	t.Rows = rows
	for _, f := range []struct {
		path string
		data []byte
	}{{t.List, list}, {t.Message, []byte(message)}, {t.Config, []byte(config)}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}
