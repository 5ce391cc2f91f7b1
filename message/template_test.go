package message_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/relayctl/relayctl/message"
)

// msg builds a template source from header lines and a body.
func msg(headers []string, body string) string {
	return strings.Join(headers, "\n") + "\n\n" + body
}

var stdHeaders = []string{"From: News <news@example.com>", "Subject: Hello"}

func parse(t *testing.T, src string) *message.Template {
	t.Helper()
	tm, err := message.ParseTemplate(src)
	if err != nil {
		t.Fatalf("ParseTemplate(%q): %v", src, err)
	}
	return tm
}

func TestFields(t *testing.T) {
	type F = message.Field
	for _, tc := range []struct {
		name    string
		headers []string
		body    string
		want    []F
	}{
		{"plain", stdHeaders, "Dear {{.first}},\n", []F{{Name: "first"}}},
		{"dollar", stdHeaders, "Dear {{$.first}},\n", []F{{Name: "first"}}},
		{"index", stdHeaders, `Dear {{index . "first name"}},` + "\n", []F{{Name: "first name"}}},
		{"index in parens", stdHeaders, `Dear {{printf "%s" (index . "first name")}},` + "\n", []F{{Name: "first name"}}},
		{"default piped", stdHeaders, `Dear {{.first | default "friend"}},` + "\n", []F{{Name: "first", Optional: true}}},
		{"default called", stdHeaders, `Dear {{default "friend" .first}},` + "\n", []F{{Name: "first", Optional: true}}},
		{"default over index", stdHeaders, `Dear {{index . "first name" | default "friend"}},` + "\n", []F{{Name: "first name", Optional: true}}},
		{"if guard", stdHeaders, "Hi{{if .first}} {{.first}}{{end}},\n", []F{{Name: "first", Optional: true}}},
		{"with guard", stdHeaders, "Hi{{with .first}} {{.}}{{end}},\n", []F{{Name: "first", Optional: true}}},
		{"with $ inside", stdHeaders, "Hi{{with .first}} {{$.first}}{{end}},\n", []F{{Name: "first", Optional: true}}},
		{"if guards only its own field", stdHeaders, "{{if .company}}{{.company}}, {{.first}}{{end}}\n",
			[]F{{Name: "company", Optional: true}, {Name: "first"}}},
		{"else is not guarded", stdHeaders, "{{if .company}}{{.company}}{{else}}{{.first}}{{end}}\n",
			[]F{{Name: "company", Optional: true}, {Name: "first"}}},
		{"guard does not reach past end", stdHeaders, "{{if .first}}{{.first}}{{end}} {{.first}}\n", []F{{Name: "first"}}},
		{"required once is required", stdHeaders, `{{.first | default "x"}} {{.first}}` + "\n", []F{{Name: "first"}}},
		{"in header", []string{"From: news@example.com", "Subject: Hello {{.first}}"}, "Body\n",
			[]F{{Name: "first", InHeader: true}}},
		{"header and body", []string{"From: news@example.com", `Subject: Hello {{.first | default "you"}}`}, "Dear {{.first}}, {{.last}}\n",
			[]F{{Name: "first", InHeader: true}, {Name: "last"}}},
		{"header continuation", []string{"From: news@example.com", "Subject: Hello", "  {{.first}}"}, "x\n",
			[]F{{Name: "first", InHeader: true}}},
		{"sorted by name", stdHeaders, "{{.zeta}} {{.alpha}} {{.mid}}\n", []F{{Name: "alpha"}, {Name: "mid"}, {Name: "zeta"}}},
		{"none", stdHeaders, "Hello all\n", []F{}},
		// A block's body is a template of its own; its fields are still
		// the list's columns and must be checked like the others.
		{"block", stdHeaders, `{{block "signature" .}}{{.sender}}{{end}}` + "\n", []F{{Name: "sender"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := parse(t, msg(tc.headers, tc.body))
			got := tm.Fields()
			if !slices.Equal(got, tc.want) {
				t.Errorf("Fields() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
		want      string
	}{
		{"no empty line", "From: news@example.com\nSubject: Hello\nDear all\n", 0, "no empty line"},
		{"no empty line, CRLF", "From: news@example.com\r\nSubject: Hello\r\nDear all\r\n", 0, "no empty line"},
		{"no From", "Subject: Hello\n\nbody\n", 0, "no From header"},
		{"no Subject", "From: news@example.com\nTo: {{.email}}\n\nbody\n", 0, "no Subject header"},
		{"not a header line", "From: news@example.com\nDear all\nSubject: Hello\n\nbody\n", 2, "not a header line"},
		{"space in name", "From: news@example.com\nSubject Line: Hello\n\nbody\n", 2, "not a header line"},
		{"empty name", "From: news@example.com\n: Hello\nSubject: x\n\nbody\n", 2, "not a header line"},
		{"continuation first", " folded\nFrom: news@example.com\nSubject: Hello\n\nbody\n", 1, "continuation line before any header"},
		{"tab continuation first", "\tfolded\nFrom: news@example.com\nSubject: Hello\n\nbody\n", 1, "continuation line before any header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := message.ParseTemplate(tc.src)
			var te *message.TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("ParseTemplate(%q) = %v, want a *TemplateError", tc.src, err)
			}
			if te.Line != tc.line || !strings.Contains(te.Msg, tc.want) {
				t.Errorf("error = line %d %q, want line %d containing %q", te.Line, te.Msg, tc.line, tc.want)
			}
		})
	}
}

func TestHeaderNamesAreCaseInsensitive(t *testing.T) {
	parse(t, "from: news@example.com\nSUBJECT: Hello\n\nbody\n")
	parse(t, "\ufeffFrom: news@example.com\r\nSubject: Hello\r\n\r\nbody\r\n")
}

func TestSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
		want      string
	}{
		{"header: bad character", "From: news@example.com\nSubject: {{.first}\n\nbody\n", 2, "bad character"},
		{"header: unknown function", "From: news@example.com\nSubject: Hello\nX-Tag: {{upper .tag}}\n\nbody\n", 3, `"upper" not defined`},
		{"header: unclosed action", "From: news@example.com\nSubject: {{.first\n\nbody\n", 2, "unclosed action"},
		{"body: bad character", "From: news@example.com\nSubject: Hello\n\nDear all,\n\n{{.first}\n", 6, "bad character"},
		{"body: unknown function", "From: news@example.com\nSubject: Hello\n\nDear {{.first | upper}},\n", 4, `"upper" not defined`},
		{"body: stray end", "From: news@example.com\nSubject: Hello\n\nline 4\nline 5\n{{end}}\n", 6, "unexpected {{end}}"},
		{"body after folded header", "From: news@example.com\nSubject: Hello\n  again\n\nline 5\n{{end}}\n", 6, "unexpected {{end}}"},
		{"body, CRLF", "From: news@example.com\r\nSubject: Hello\r\n\r\nline 4\r\n{{.first | upper}}\r\n", 5, `"upper" not defined`},
		// The action opens on line 5 and is never closed: the error must
		// point there, in the file's numbering, not in the body's.
		{"body: unclosed action", "From: news@example.com\nSubject: Hello\n\nDear all,\nHello {{.first\n", 5, "unclosed action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := message.ParseTemplate(tc.src)
			var te *message.TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("ParseTemplate = %v, want a *TemplateError", err)
			}
			if te.Line != tc.line || !strings.Contains(te.Msg, tc.want) {
				t.Errorf("error = %q (line %d), want line %d containing %q", te, te.Line, tc.line, tc.want)
			}
			// Line numbers are the file's: the internal template names
			// ("headers", "body") mean nothing to the user.
			if strings.Contains(te.Error(), "body:") || strings.Contains(te.Error(), "headers:") || strings.Contains(te.Error(), "template:") {
				t.Errorf("error %q leaks text/template's internal names", te)
			}
		})
	}
}

func TestCheckColumns(t *testing.T) {
	tm := parse(t, msg([]string{"From: news@example.com", "Subject: Hi {{.frist}}"}, `Dear {{index . "first name"}} {{.last | default ""}} {{.zzz}}`+"\n"))
	if err := tm.CheckColumns([]string{"email", "first name", "frist", "last", "zzz"}); err != nil {
		t.Errorf("all columns present: %v", err)
	}
	if err := tm.CheckColumns([]string{"zzz", "first name", "last", "frist", "extra"}); err != nil {
		t.Errorf("columns in another order, one unused: %v", err)
	}
	err := tm.CheckColumns([]string{"email", "first name", "first", "last"})
	var te *message.TemplateError
	if !errors.As(err, &te) {
		t.Fatalf("CheckColumns with frist and zzz missing = %v, want a *TemplateError", err)
	}
	for _, w := range []string{`"frist"`, `"zzz"`, `"first"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
	if strings.Contains(err.Error(), `the template uses "first name"`) || strings.Contains(err.Error(), `uses "last"`) {
		t.Errorf("error %q names a field that is a column", err)
	}
	// Optional fields are columns too.
	if err := tm.CheckColumns([]string{"first name", "frist", "zzz"}); err == nil || !strings.Contains(err.Error(), `"last"`) {
		t.Errorf("optional field last missing: %v, want an error naming it", err)
	}
	// Column names are case-sensitive, as template field names are.
	if err := tm.CheckColumns([]string{"First Name", "frist", "last", "zzz"}); err == nil {
		t.Errorf(`"first name" given as "First Name": no error`)
	}
}

func TestCheckValues(t *testing.T) {
	tm := parse(t, msg(
		[]string{"From: news@example.com", `Subject: Hello {{.first}}{{if .title}} {{.title}}{{end}}`, `X-Ref: {{.ref | default "none"}}`},
		"Dear {{.first}},\n\n{{.note}}\n{{with .ps}}PS: {{.}}{{end}}\n"))
	ok := map[string]string{"first": "Ann", "title": "Dr", "ref": "r-1", "note": "hello", "ps": "bye"}
	with := func(k, v string) map[string]string {
		m := make(map[string]string, len(ok))
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name   string
		values map[string]string
		want   string // "" for no error; else a substring
	}{
		{"all set", ok, ""},
		{"required header field empty", with("first", ""), "first is empty"},
		{"required header field blank", with("first", " \t"), "first is empty"},
		{"required body field empty", with("note", ""), "note is empty"},
		{"required field absent", func() map[string]string { m := with("x", ""); delete(m, "note"); return m }(), "note is empty"},
		{"optional if field empty", with("title", ""), ""},
		{"optional default field empty", with("ref", ""), ""},
		{"optional with field empty", with("ps", ""), ""},
		{"LF in header field", with("first", "Ann\nBcc: victim@example.org"), "first has a line break"},
		{"CR in header field", with("first", "Ann\rBcc: victim@example.org"), "first has a line break"},
		{"CRLF in optional header field", with("title", "Dr\r\nBcc: victim@example.org"), "title has a line break"},
		{"CRLF in defaulted header field", with("ref", "x\r\nBcc: victim@example.org"), "ref"},
		{"NUL in header field", with("first", "Ann\x00"), "first"},
		{"LF in body field", with("note", "line one\nline two"), ""},
		{"CRLF in optional body field", with("ps", "one\r\ntwo"), ""},
		{"NUL in body field", with("note", "a\x00b"), "note has a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tm.CheckValues(tc.values)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckValues: %v, want no error", err)
			case tc.want != "" && err == nil:
				t.Errorf("CheckValues accepted %q", tc.values)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("CheckValues: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExecute(t *testing.T) {
	tm := parse(t, "\ufeffFrom: News <news@example.com>\r\n"+
		"To: {{.email}}\r\n"+
		`Subject: Hello {{.first | default "friend"}}`+"\r\n"+
		"\r\n"+
		`Dear {{index . "first name"}}{{if .company}} of {{.company}}{{end}},`+"\r\n"+
		`{{with .note}}{{.}}{{else}}No note.{{end}}`+"\r\n")
	for _, tc := range []struct {
		values map[string]string
		want   string
	}{
		{map[string]string{"email": "ann@example.com", "first": "Ann", "first name": "Ann B", "company": "Example Ltd", "note": "See you."},
			"From: News <news@example.com>\nTo: ann@example.com\nSubject: Hello Ann\n\nDear Ann B of Example Ltd,\nSee you.\n"},
		{map[string]string{"email": "bob@example.org", "first name": "Bob"},
			"From: News <news@example.com>\nTo: bob@example.org\nSubject: Hello friend\n\nDear Bob,\nNo note.\n"},
		{map[string]string{"email": "c@example.net", "first name": "C", "note": "two\nlines"},
			"From: News <news@example.com>\nTo: c@example.net\nSubject: Hello friend\n\nDear C,\ntwo\nlines\n"},
	} {
		got, err := tm.Execute(tc.values)
		if err != nil {
			t.Errorf("Execute(%q): %v", tc.values, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Execute(%q) =\n%q\nwant\n%q", tc.values, got, tc.want)
		}
	}
	// Source is the file as read (a byte-order mark aside), to be stored
	// with the campaign.
	if !strings.HasPrefix(strings.TrimPrefix(tm.Source, "\ufeff"), "From: News") || !strings.Contains(tm.Source, "{{.email}}\r\n") {
		t.Errorf("Source = %q, want the file as read", tm.Source)
	}
}

func TestDefaultFunc(t *testing.T) {
	def := message.Funcs["default"].(func(string, any) string)
	for _, tc := range []struct {
		value any
		want  string
	}{
		{"", "d"}, {nil, "d"}, {"x", "x"}, {0, "0"},
	} {
		if got := def("d", tc.value); got != tc.want {
			t.Errorf("default(%q, %#v) = %q, want %q", "d", tc.value, got, tc.want)
		}
	}
}
