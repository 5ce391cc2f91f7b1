package listclean_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relayctl/relayctl/listclean"
	"github.com/relayctl/relayctl/store"
)

func TestParseSuppression(t *testing.T) {
	tests := []struct {
		raw, kind string // kind: the kind required, "" either
		value     string // want; "" when an error is wanted
		wantKind  string
		err       string // a substring of the error
	}{
		// Addresses are normalised as clean normalises a list's.
		{raw: "jane@example.com", value: "jane@example.com", wantKind: store.SuppressAddress},
		{raw: "  Jane Doe <Jane@Example.COM> ", value: "jane@example.com", wantKind: store.SuppressAddress},
		{raw: "mailto:dora@example.com", value: "dora@example.com", wantKind: store.SuppressAddress},
		{raw: "JANE@example.com", kind: store.SuppressAddress, value: "jane@example.com", wantKind: store.SuppressAddress},
		{raw: "jane@Bücher.Example", value: "jane@xn--bcher-kva.example", wantKind: store.SuppressAddress},
		{raw: "Jöhn@example.com", value: "jöhn@example.com", wantKind: store.SuppressAddress}, // SMTPUTF8
		{raw: "ops@[192.0.2.1]", value: "ops@[192.0.2.1]", wantKind: store.SuppressAddress},   // literal
		// Anything else is a domain, in A-labels.
		{raw: "Example.COM", value: "example.com", wantKind: store.SuppressDomain},
		{raw: "Bücher.Example", value: "xn--bcher-kva.example", wantKind: store.SuppressDomain},
		{raw: "xn--bcher-kva.example", value: "xn--bcher-kva.example", wantKind: store.SuppressDomain},
		{raw: "blocked.test", kind: store.SuppressDomain, value: "blocked.test", wantKind: store.SuppressDomain},
		// Invalid.
		{raw: "", err: "empty value"},
		{raw: " \t", err: "empty value"},
		{raw: "<>", err: "empty value"},
		{raw: "localhost", err: `domain "localhost" is not fully qualified`},
		{raw: "nope", err: `domain "nope" is not fully qualified`},
		{raw: "bad@@example.com", err: "local part has '@', which must be quoted"},
		{raw: "not an address@", err: ""},
		{raw: "gmail.com", kind: store.SuppressAddress, err: "no @"},
		{raw: "jane@example.com", kind: store.SuppressDomain, err: "an address where a domain was expected"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.raw, func(t *testing.T) {
			sup, err := listclean.ParseSuppression(tt.raw, tt.kind)
			if tt.value == "" {
				var se *listclean.SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("ParseSuppression(%q, %q) = %+v, %v; want a *SyntaxError", tt.raw, tt.kind, sup, err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseSuppression(%q, %q): error %q, want it to contain %q", tt.raw, tt.kind, err, tt.err)
				}
				return
			}
			want := store.Suppression{Value: tt.value, Kind: tt.wantKind}
			if err != nil || sup != want {
				t.Errorf("ParseSuppression(%q, %q) = %+v, %v; want %+v", tt.raw, tt.kind, sup, err, want)
			}
		})
	}
}

// readAll reads a suppression file with NewSuppressionReader and returns
// one line per row: "VALUE KIND REASON SOURCE CREATED_AT" ("-" for empty
// fields), or the row's error.
func readAll(t *testing.T, input string) []string {
	t.Helper()
	sr, err := listclean.NewSuppressionReader(strings.NewReader(input), "list")
	if err != nil {
		t.Fatalf("NewSuppressionReader: %v", err)
	}
	var got []string
	for {
		sup, err := sr.Next()
		if err == io.EOF {
			return got
		}
		var bad *listclean.SuppressionRowError
		switch {
		case errors.As(err, &bad):
			got = append(got, bad.Error())
			continue
		case err != nil:
			t.Fatalf("Next after %q: %v", got, err)
		}
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		at := "-"
		if !sup.CreatedAt.IsZero() {
			at = sup.CreatedAt.UTC().Format(time.RFC3339)
		}
		got = append(got, strings.Join([]string{sup.Value, sup.Kind, dash(sup.Reason), dash(sup.Source), at}, " "))
	}
}

func TestSuppressionReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{
			name:  "email column, reason and source",
			input: "email,name,reason,source\nAnn <ANN@example.com>,Ann,unsubscribed,crm\nbob@example.com,Bob,,\ngmail.com,Cat,,\n,Dan,,\n",
			want: []string{
				"ann@example.com address unsubscribed crm -",
				"bob@example.com address - - -",
				`row 4: invalid "gmail.com": no @`,
				`row 5: invalid "": empty value`,
			},
		},
		{
			name:  "semicolons, CRLF, BOM, domain column",
			input: "\ufeffDomain;Reason;created_at\r\nblocked.test;complaints;2026-03-01\r\njane@example.com;;\r\nspam.example;;\r\n",
			want: []string{
				"blocked.test domain complaints - 2026-03-01T00:00:00Z",
				`row 3: invalid "jane@example.com": an address where a domain was expected`,
				"spam.example domain - - -",
			},
		},
		{
			name:  "tabs, value column of either kind, IDN",
			input: "value\treason\nJane@Example.com\tx\nBücher.Example\t\n",
			want: []string{
				"jane@example.com address x - -",
				"xn--bcher-kva.example domain - - -",
			},
		},
		{
			name:  "created_at as export writes it, and a bad one",
			input: "value,created_at\na@example.com,2026-03-01T12:30:00+02:00\nb@example.com,yesterday\n",
			want: []string{
				"a@example.com address - - 2026-03-01T10:30:00Z",
				`row 3: invalid "b@example.com": created_at "yesterday": want RFC 3339 or YYYY-MM-DD`,
			},
		},
		{
			name:  "rows short of the value column",
			input: "name,email\nAnn,ann@example.com\nBob\n",
			want:  []string{"ann@example.com address - - -", `row 3: invalid "": empty value`},
		},
		{
			name:  "row numbers count records, not lines",
			input: "email,note\na@example.com,\"two\nlines\"\nnope,\n",
			want:  []string{"a@example.com address - - -", `row 3: invalid "nope": no @`},
		},
		{
			name:  "value before email before address before domain",
			input: "domain,address,email,VALUE\nd.example,a@example.com,e@example.com,v.example\n",
			want:  []string{"v.example domain - - -"},
		},
		{
			name:  "email names before address",
			input: "address,domain,E-Mail\na@example.com,d.example,e@example.com\n",
			want:  []string{"e@example.com address - - -"},
		},
		{
			name:  "address column",
			input: "domain,Address\nd.example,a@example.com\n",
			want:  []string{"a@example.com address - - -"},
		},
		{
			name:  "the first of two columns of one name",
			input: "email,email\na@example.com,b@example.com\n",
			want:  []string{"a@example.com address - - -"},
		},
		{
			name:  "quoted and spaced header names",
			input: `"Email" , " Reason "` + "\na@example.com,why\n",
			want:  []string{"a@example.com address why - -"},
		},
		{
			name:  "a comma inside a quoted header name is not the delimiter",
			input: "\"Name, full\";email\n\"Doe, Jane\";jane@example.com\n",
			want:  []string{"jane@example.com address - - -"},
		},
		{
			name:  "header only",
			input: "email,reason\n",
			want:  nil,
		},
		{
			name:  "one value per line: comments and blanks skipped, but counted",
			input: "# exported from the old system\ncarl@example.com\n\nmailto:dora@example.com\nbad@@example.com\nBOB@example.com\n",
			want: []string{
				"carl@example.com address - - -",
				"dora@example.com address - - -",
				`row 5: invalid "bad@@example.com": local part has '@', which must be quoted`,
				"bob@example.com address - - -",
			},
		},
		{
			name:  "one value per line: the first line is a value",
			input: "\ufeffJane@Example.com\r\nBücher.Example\r\n  # indented comment\r\nnope",
			want: []string{
				"jane@example.com address - - -",
				"xn--bcher-kva.example domain - - -",
				`row 4: invalid "nope": domain "nope" is not fully qualified`,
			},
		},
		{
			name:  "one value per line: commas are not columns without a header",
			input: "a@example.com,b@example.com\n",
			want:  []string{`row 1: invalid "a@example.com,b@example.com": `},
		},
		{
			name:  "empty",
			input: "",
			want:  nil,
		},
		{
			name:  "blank lines only",
			input: "\n\n  \n",
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, tt.input)
			if len(got) != len(tt.want) {
				t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				// A want ending in ": " checks the row and value only.
				if got[i] != tt.want[i] && !(strings.HasSuffix(tt.want[i], ": ") && strings.HasPrefix(got[i], tt.want[i])) {
					t.Errorf("row %d: got %s\nwant %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestOpenSuppressions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "unsub.txt")
	if err := os.WriteFile(path, []byte("a@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sr, err := listclean.OpenSuppressions(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sr.Name() != path {
		t.Errorf("Name() = %q, want %q", sr.Name(), path)
	}
	if sup, err := sr.Next(); err != nil || sup.Value != "a@example.com" {
		t.Errorf("Next() = %+v, %v", sup, err)
	}
	if err := sr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	sr, err = listclean.OpenSuppressions("-", strings.NewReader("value\nexample.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sr.Name() != "standard input" {
		t.Errorf("Name() = %q, want standard input", sr.Name())
	}
	if sup, err := sr.Next(); err != nil || sup.Value != "example.com" {
		t.Errorf("Next() = %+v, %v", sup, err)
	}
	sr.Close()

	missing := filepath.Join(dir, "missing.csv")
	_, err = listclean.OpenSuppressions(missing, nil)
	var ie *listclean.InputError
	if !errors.As(err, &ie) || err.Error() != missing+": no such file or directory" {
		t.Errorf("OpenSuppressions(missing) = %v (%T), want an *InputError naming the file", err, err)
	}
}

// fakeList is a suppression list in memory.
type fakeList struct {
	sups []store.Suppression
	err  error // returned after the entries
}

func (l fakeList) EachSuppression(ctx context.Context, fn func(store.Suppression) error) error {
	for _, sup := range l.sups {
		if err := fn(sup); err != nil {
			return err
		}
	}
	return l.err
}

var exportList = fakeList{sups: []store.Suppression{
	{Value: "blocked.test", Kind: store.SuppressDomain, Reason: "complaints", Source: "import semi.csv", CreatedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
	{Value: "jane@example.com", Kind: store.SuppressAddress, Reason: "said \"stop\", twice", Source: "crm", CreatedAt: time.Date(2026, 3, 2, 10, 4, 5, 0, time.FixedZone("CET", 3600))},
	{Value: "xn--bcher-kva.example", Kind: store.SuppressDomain, Source: "suppress add", CreatedAt: time.Unix(0, 0)},
}}

const exportCSV = `value,kind,reason,source,created_at
blocked.test,domain,complaints,import semi.csv,2026-03-01T00:00:00Z
jane@example.com,address,"said ""stop"", twice",crm,2026-03-02T09:04:05Z
xn--bcher-kva.example,domain,,suppress add,1970-01-01T00:00:00Z
`

func TestWriteSuppressions(t *testing.T) {
	var b strings.Builder
	n, err := listclean.WriteSuppressions(context.Background(), &b, exportList)
	if err != nil || n != 3 {
		t.Fatalf("WriteSuppressions = %d, %v; want 3, nil", n, err)
	}
	if b.String() != exportCSV {
		t.Errorf("wrote:\n%s\nwant:\n%s", b.String(), exportCSV)
	}
	// What export writes, import reads back unchanged.
	got := readAll(t, b.String())
	want := []string{
		"blocked.test domain complaints import semi.csv 2026-03-01T00:00:00Z",
		`jane@example.com address said "stop", twice crm 2026-03-02T09:04:05Z`,
		"xn--bcher-kva.example domain - suppress add 1970-01-01T00:00:00Z",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("read back:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	empty, err := listclean.WriteSuppressions(context.Background(), &b, fakeList{})
	if err != nil || empty != 0 {
		t.Errorf("WriteSuppressions(empty) = %d, %v", empty, err)
	}
}

func TestExportSuppressions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "suppressions.csv")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := listclean.ExportSuppressions(ctx, path, exportList)
	if err != nil || n != 3 {
		t.Fatalf("ExportSuppressions = %d, %v; want 3, nil", n, err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != exportCSV {
		t.Errorf("file holds:\n%s (%v)\nwant:\n%s", b, err, exportCSV)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode(), err)
	}

	// A failure leaves the old file as it was, and no temporary file.
	boom := errors.New("store gone")
	if _, err := listclean.ExportSuppressions(ctx, path, fakeList{sups: exportList.sups, err: boom}); !errors.Is(err, boom) {
		t.Errorf("ExportSuppressions with a failing store: %v, want %v", err, boom)
	}
	if b, _ := os.ReadFile(path); string(b) != exportCSV {
		t.Errorf("after a failed export the file holds:\n%s", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only suppressions.csv", names)
	}

	// A file that cannot be created is the caller's to fix.
	missing := filepath.Join(dir, "no", "such.csv")
	_, err = listclean.ExportSuppressions(ctx, missing, exportList)
	var ie *listclean.InputError
	if !errors.As(err, &ie) || ie.Path != missing || ie.Msg != "no such file or directory" {
		t.Errorf("ExportSuppressions(%s) = %v (%s), want an *InputError", missing, err, fmt.Sprintf("%T", err))
	}
}
