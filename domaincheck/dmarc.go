package domaincheck

import (
	"context"
	"fmt"
	"strings"
)

// maxDMARCWalk bounds the parent domains asked for an inherited policy.
const maxDMARCWalk = 5

// dmarc finds the DMARC policy (RFC 7489) that applies to DOMAIN: its own
// record at _dmarc.DOMAIN or, walking up the tree as DMARCbis does, a
// parent's, whose sp= governs subdomains.
func (c *checker) dmarc(ctx context.Context) Check {
	d := c.o.Domain
	for i, at := range dmarcNames(d) {
		name := "_dmarc." + at
		txts, err := c.dns.LookupTXT(ctx, name)
		if err != nil && !isNotFound(err) {
			return Check{Name: "dmarc", Result: Fail, Detail: dnsError("TXT", name, err)}
		}
		var records []string
		for _, t := range txts {
			if isDMARC(t) {
				records = append(records, t)
			}
		}
		switch len(records) {
		case 0:
			continue
		case 1:
			return c.dmarcPolicy(name, records[0], i > 0)
		default:
			return Check{Name: "dmarc", Result: Fail,
				Detail: fmt.Sprintf("%d DMARC records at %s: receivers then apply none; keep one", len(records), name),
				Fix:    txtRecord(name, records[0])}
		}
	}
	return Check{Name: "dmarc", Result: Fail,
		Detail: fmt.Sprintf("no DMARC record at _dmarc.%s: Gmail and Yahoo require one of bulk senders; start with this one, whose p=none is only monitoring (it protects nothing), and tighten it once the reports show your mail passes", d),
		Fix:    txtRecord("_dmarc."+d, defaultDMARC(d))}
}

// dmarcNames are the domains whose _dmarc record may govern d: d, then
// its parents down to two labels.
func dmarcNames(d string) []string {
	out := []string{d}
	labels := strings.Split(d, ".")
	for i := 1; len(labels)-i >= 2 && len(out) < maxDMARCWalk; i++ {
		out = append(out, strings.Join(labels[i:], "."))
	}
	return out
}

func isDMARC(txt string) bool {
	v, _, _ := strings.Cut(txt, ";")
	name, value, ok := strings.Cut(v, "=")
	return ok && strings.TrimSpace(name) == "v" && strings.EqualFold(strings.TrimSpace(value), "DMARC1")
}

func defaultDMARC(d string) string {
	return "v=DMARC1; p=none; rua=mailto:dmarc@" + d
}

// dmarcPolicy judges the record found at name; inherited means it is a
// parent domain's.
func (c *checker) dmarcPolicy(name, record string, inherited bool) Check {
	d := c.o.Domain
	own := "_dmarc." + d
	ch := Check{Name: "dmarc"}
	tags, err := parseTags(record)
	if err != nil {
		ch.Result, ch.Detail, ch.Fix = Fail, fmt.Sprintf("the record at %s is broken: %v", name, err), txtRecord(own, defaultDMARC(d))
		return ch
	}
	p, _ := tagValue(tags, "p")
	if !validPolicy(p) {
		ch.Result = Fail
		ch.Detail = fmt.Sprintf("the record at %s has no valid p= (none, quarantine or reject)", name)
		ch.Fix = txtRecord(name, formatTags(setTag(tags, "p", "none")))
		return ch
	}
	where := name
	policy := strings.ToLower(p)
	if inherited {
		where = fmt.Sprintf("no record at %s; %s applies", own, name)
		if sp, ok := tagValue(tags, "sp"); ok && validPolicy(sp) {
			policy = strings.ToLower(sp)
		}
	}
	reports := "no rua=: you get no aggregate reports"
	rua, hasRUA := tagValue(tags, "rua")
	if hasRUA && rua != "" {
		reports = "aggregate reports to " + rua
	} else {
		rua = "mailto:dmarc@" + d
	}
	switch policy {
	case "none":
		ch.Result = Warn
		ch.Detail = fmt.Sprintf("%s: p=none is only monitoring, receivers act on nothing that fails; %s; once they show your mail passes, move to p=quarantine", where, reports)
		if inherited {
			ch.Fix = txtRecord(own, "v=DMARC1; p=quarantine; rua="+rua)
		} else {
			ch.Fix = txtRecord(name, formatTags(setTag(tags, "p", "quarantine")))
		}
	default:
		ch.Result = Pass
		ch.Detail = fmt.Sprintf("%s: p=%s; %s", where, policy, reports)
	}
	return ch
}

func validPolicy(p string) bool {
	switch strings.ToLower(p) {
	case "none", "quarantine", "reject":
		return true
	}
	return false
}

// setTag returns tags with name set to value: in place if present, else
// right after v=.
func setTag(tags []tag, name, value string) []tag {
	out := make([]tag, 0, len(tags)+1)
	done := false
	for _, t := range tags {
		if t.name == name {
			t.value, done = value, true
		}
		out = append(out, t)
	}
	if !done {
		out = append(out[:1], append([]tag{{name, value}}, out[1:]...)...)
	}
	return out
}
