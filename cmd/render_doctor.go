package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/relayctl/relayctl/domaincheck"
)

// doctorJSON is doctor --json; its field names are a public interface.
type doctorJSON struct {
	Domain string            `json:"domain"`
	Checks []doctorCheckJSON `json:"checks"`
	OK     bool              `json:"ok"`
}

type doctorCheckJSON struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

func doctorJSONOf(rep *domaincheck.Report) doctorJSON {
	out := doctorJSON{Domain: rep.Domain, Checks: []doctorCheckJSON{}, OK: rep.OK()}
	for _, c := range rep.Checks {
		out.Checks = append(out.Checks, doctorCheckJSON{c.Name, string(c.Result), c.Detail, c.Fix})
	}
	return out
}

func renderDoctor(w io.Writer, rep *domaincheck.Report) error {
	// Details are sentences: wrapped, so that the table fits a terminal.
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNormal), tablewriter.WithRowMaxWidth(72))
	t.Header("CHECK", "RESULT", "DETAIL")
	for _, c := range rep.Checks {
		t.Append(c.Name, string(c.Result), c.Detail)
	}
	if err := t.Render(); err != nil {
		return err
	}
	fixes := rep.Fixes()
	if len(fixes) == 0 {
		_, err := fmt.Fprintln(w, "Nothing to publish.")
		return err
	}
	_, err := fmt.Fprintf(w, "\nRecords to publish:\n\n%s\n", strings.Join(fixes, "\n"))
	return err
}
