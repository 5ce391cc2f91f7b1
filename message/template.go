// Package message owns what relayctl sends: the campaign's message
// template (an RFC 5322 file whose text uses Go text/template fields named
// after the list's columns), the checks that keep a merge error or an
// injected header out of a campaign, and rendering for one recipient.
package message

import (
	"bufio"
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// Template is a parsed message template. The header section (up to the
// first empty line) and the body are separate templates, so that what a
// field may contain can differ: a value with a line break would add a
// header line, so header fields must not have one.
type Template struct {
	Source     string
	HTMLSource string // the HTML alternative's template, "" for none
	header     *template.Template
	body       *template.Template
	html       *htmltemplate.Template
	fields     map[string]*Field
}

// Field is a list column the template uses.
type Field struct {
	Name string
	// InHeader: the field is used in the header section.
	InHeader bool
	// Optional: every use has a default or is guarded by an if, so an
	// empty value is fine.
	Optional bool
}

// Funcs are the functions templates may call besides text/template's
// built-ins.
var Funcs = template.FuncMap{
	// default returns def when value is empty: {{.name | default "friend"}}.
	"default": func(def string, value any) string {
		if s := fmt.Sprint(value); value != nil && s != "" {
			return s
		}
		return def
	},
}

// TemplateError is a problem with the template itself.
type TemplateError struct {
	Line int
	Msg  string
}

func (e *TemplateError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// ParseTemplate parses a message template: header lines ("Name: value",
// continuation lines starting with white space), an empty line, the body.
func ParseTemplate(src string) (*Template, error) {
	src = strings.TrimPrefix(src, "\ufeff")
	norm := strings.ReplaceAll(src, "\r\n", "\n")
	head, body, found := strings.Cut(norm, "\n\n")
	if !found {
		return nil, &TemplateError{Msg: "no empty line between the headers and the body"}
	}
	if err := checkHeaderLines(head); err != nil {
		return nil, err
	}
	t := &Template{Source: src, fields: map[string]*Field{}}
	var err error
	if t.header, err = parseText("headers", head, 0); err != nil {
		return nil, err
	}
	// The body's line 1 is the file's line after the empty one.
	if t.body, err = parseText("body", body, strings.Count(head, "\n")+2); err != nil {
		return nil, err
	}
	// Every template the text defines counts: {{block}} and {{define}}
	// bodies as well as the main one.
	for _, tt := range t.header.Templates() {
		if tt.Tree != nil {
			t.collect(tt.Tree.Root, true, nil)
		}
	}
	for _, tt := range t.body.Templates() {
		if tt.Tree != nil {
			t.collect(tt.Tree.Root, false, nil)
		}
	}
	return t, nil
}

func parseText(name, text string, offset int) (*template.Template, error) {
	t, err := template.New(name).Funcs(Funcs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, templateParseError(err, offset)
	}
	return t, nil
}

// templatePos matches text/template's positions, "body:12:", and the
// "template: " prefix of its messages.
var (
	templatePos    = regexp.MustCompile(`(?:headers|body):(\d+)(?::\d+)?`)
	templatePrefix = regexp.MustCompile(`^template: (?:headers|body):\d+:(?:\d+:)? ?`)
)

// templateParseError turns text/template's "template: body:3: unexpected
// ..." into the file's line number and a message in the user's terms. An
// unclosed action is reported where it opened, not at the end of the file.
func templateParseError(err error, offset int) error {
	msg := err.Error()
	line := 0
	if m := templatePos.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	msg = templatePrefix.ReplaceAllString(msg, "")
	if m := templatePos.FindStringSubmatch(msg); m != nil && strings.Contains(msg, "started at") {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(msg[:strings.Index(msg, "started at")])
	}
	msg = templatePos.ReplaceAllStringFunc(msg, func(pos string) string {
		n, _ := strconv.Atoi(templatePos.FindStringSubmatch(pos)[1])
		return fmt.Sprintf("line %d", n+offset)
	})
	if line > 0 {
		line += offset
	}
	return &TemplateError{Line: line, Msg: msg}
}

// checkHeaderLines checks the header section's shape before templating.
func checkHeaderLines(head string) error {
	sc := bufio.NewScanner(strings.NewReader(head))
	n := 0
	seen := map[string]bool{}
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if n == 1 {
				return &TemplateError{Line: n, Msg: "continuation line before any header"}
			}
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return &TemplateError{Line: n, Msg: fmt.Sprintf("%q is not a header line (Name: value)", truncate(line, 40))}
		}
		lname := strings.ToLower(name)
		if why, owned := ownedHeaders[lname]; owned {
			return &TemplateError{Line: n, Msg: fmt.Sprintf("%s: %s", name, why)}
		}
		if lname == "to" && strings.ContainsAny(line[len(name)+1:], "@<>") {
			return &TemplateError{Line: n, Msg: "To: relayctl addresses each message to its recipient; the template's To may only give the display name, e.g. To: {{.first_name}} {{.last_name}}"}
		}
		if seen[lname] && lname != "received" && lname != "comments" && lname != "keywords" {
			return &TemplateError{Line: n, Msg: fmt.Sprintf("%s appears twice", name)}
		}
		seen[lname] = true
	}
	for _, h := range []string{"from", "subject"} {
		if !seen[h] {
			return &TemplateError{Msg: fmt.Sprintf("no %s header", strings.ToUpper(h[:1])+h[1:])}
		}
	}
	return nil
}

// ownedHeaders are set by relayctl for each message; a template may not.
var ownedHeaders = map[string]string{
	"message-id":                "relayctl gives each message its own Message-ID; remove it",
	"date":                      "relayctl dates each message as it is sent; remove it",
	"mime-version":              "relayctl builds the MIME structure; remove it",
	"content-type":              "relayctl builds the MIME structure (use --html for an HTML part, --attach for files); remove it",
	"content-transfer-encoding": "relayctl chooses the encoding; remove it",
	"cc":                        "a bulk mailing must not copy every message to the same address; remove it",
	"bcc":                       "a bulk mailing must not copy every message to the same address; remove it",
	"list-unsubscribe":          "relayctl builds it from relayctl.yaml (message.unsubscribe); remove it",
	"list-unsubscribe-post":     "relayctl builds it from relayctl.yaml (message.unsubscribe); remove it",
	"dkim-signature":            "relayctl signs with the key in relayctl.yaml (dkim); remove it",
	"return-path":               "the receiving server sets it from the envelope; use message.return_path in relayctl.yaml",
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// collect records the fields a template node uses. guarded holds fields
// tested by enclosing if actions: using them inside is optional.
func (t *Template) collect(node parse.Node, inHeader bool, guarded []string) {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			t.collect(c, inHeader, guarded)
		}
	case *parse.ActionNode:
		t.collectPipe(n.Pipe, inHeader, guarded, false)
	case *parse.IfNode:
		t.collectPipe(n.Pipe, inHeader, guarded, true)
		inner := append(slices.Clone(guarded), pipeFields(n.Pipe)...)
		t.collect(n.List, inHeader, inner)
		t.collect(n.ElseList, inHeader, guarded)
	case *parse.RangeNode:
		t.collectPipe(n.Pipe, inHeader, guarded, true)
		t.collect(n.List, inHeader, guarded)
		t.collect(n.ElseList, inHeader, guarded)
	case *parse.WithNode:
		t.collectPipe(n.Pipe, inHeader, guarded, true)
		inner := append(slices.Clone(guarded), pipeFields(n.Pipe)...)
		t.collect(n.List, inHeader, inner)
		t.collect(n.ElseList, inHeader, guarded)
	case *parse.TemplateNode:
		if n.Pipe != nil {
			t.collectPipe(n.Pipe, inHeader, guarded, false)
		}
	}
}

// collectPipe records the fields of a pipeline; they are optional when the
// pipeline is a condition, calls default, or is guarded.
func (t *Template) collectPipe(p *parse.PipeNode, inHeader bool, guarded []string, condition bool) {
	if p == nil {
		return
	}
	optional := condition
	for _, cmd := range p.Cmds {
		if len(cmd.Args) > 0 {
			if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok && id.Ident == "default" {
				optional = true
			}
		}
	}
	for _, name := range pipeFields(p) {
		f := t.fields[name]
		if f == nil {
			f = &Field{Name: name, Optional: true}
			t.fields[name] = f
		}
		f.InHeader = f.InHeader || inHeader
		if !optional && !slices.Contains(guarded, name) {
			f.Optional = false
		}
	}
}

// pipeFields lists the columns a pipeline names: .col, $.col and
// index . "col".
func pipeFields(p *parse.PipeNode) []string {
	var out []string
	var walk func(parse.Node)
	walk = func(node parse.Node) {
		switch n := node.(type) {
		case *parse.FieldNode:
			out = append(out, n.Ident[0])
		case *parse.VariableNode:
			if n.Ident[0] == "$" && len(n.Ident) > 1 {
				out = append(out, n.Ident[1])
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			if len(n.Args) >= 3 {
				if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" {
					if _, ok := n.Args[1].(*parse.DotNode); ok {
						if s, ok := n.Args[2].(*parse.StringNode); ok {
							out = append(out, s.Text)
							return
						}
					}
				}
			}
			for _, a := range n.Args {
				walk(a)
			}
		}
	}
	walk(p)
	return out
}

// AddHTML adds an HTML alternative: an html/template whose fields are
// escaped as HTML, with the same functions as the text.
func (t *Template) AddHTML(src string) error {
	h, err := htmltemplate.New("html").Funcs(htmltemplate.FuncMap(Funcs)).Option("missingkey=zero").Parse(src)
	if err != nil {
		return templateParseError(err, 0)
	}
	t.html, t.HTMLSource = h, src
	for _, tt := range h.Templates() {
		if tt.Tree != nil {
			t.collect(tt.Tree.Root, false, nil)
		}
	}
	return nil
}

// HasHTML reports whether the template has an HTML alternative.
func (t *Template) HasHTML() bool { return t.html != nil }

// Fields returns the columns the template uses, sorted by name.
func (t *Template) Fields() []Field {
	out := make([]Field, 0, len(t.fields))
	for _, f := range t.fields {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// CheckColumns reports the fields that are not among columns.
func (t *Template) CheckColumns(columns []string) error {
	var missing []string
	for _, f := range t.Fields() {
		if !slices.Contains(columns, f.Name) {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		return &TemplateError{Msg: fmt.Sprintf("the template uses %s, not a column of the list (columns: %s)",
			quoteList(missing), quoteList(columns))}
	}
	return nil
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// CheckValues reports what is wrong with one recipient's values: a
// required field that is empty, a header field with a line break or NUL.
func (t *Template) CheckValues(values map[string]string) error {
	for _, f := range t.Fields() {
		v := values[f.Name]
		if !f.Optional && strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is empty", f.Name)
		}
		if f.InHeader && strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("%s has a line break and is used in a header", f.Name)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%s has a NUL byte", f.Name)
		}
	}
	return nil
}

// Execute renders the template for values: header section, empty line,
// body, with LF line ends (composition converts them for the wire).
func (t *Template) Execute(values map[string]string) ([]byte, error) {
	var b bytes.Buffer
	if err := t.executeHeader(&b, values); err != nil {
		return nil, err
	}
	b.WriteString("\n\n")
	if err := t.body.Execute(&b, values); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return b.Bytes(), nil
}

// executeHeader renders the header section. Values are stripped of CR, LF
// and NUL first: whatever a list holds, only the template's own line breaks
// can start a header line.
func (t *Template) executeHeader(w *bytes.Buffer, values map[string]string) error {
	safe, cloned := values, false
	for _, f := range t.fields {
		if v := values[f.Name]; f.InHeader && strings.ContainsAny(v, "\r\n\x00") {
			if !cloned {
				safe, cloned = maps.Clone(values), true
			}
			safe[f.Name] = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == '\r' || r == '\n' || r == 0 }), " ")
		}
	}
	if err := t.header.Execute(w, safe); err != nil {
		return fmt.Errorf("headers: %w", err)
	}
	return nil
}
