package listclean

import (
	"errors"
	"strings"
	"testing"
)

// exact returns s after checking it is n octets long, so that the length
// limits below are tested at exactly the boundary they claim.
func exact(t *testing.T, n int, s string) string {
	t.Helper()
	if len(s) != n {
		t.Fatalf("test data: built a string of %d octets, want %d", len(s), n)
	}
	return s
}

func TestParseAddress(t *testing.T) {
	var (
		allowLit = SyntaxOptions{AllowIPLiteral: true}
		utf8Opt  = SyntaxOptions{SMTPUTF8: true}

		label63 = exact(t, 63, strings.Repeat("a", 63))
		label64 = exact(t, 64, strings.Repeat("a", 64))
		idn63   = exact(t, 63, "xn--bcher"+strings.Repeat("a", 50)+"-pxf") // bücheraaa…
		local64 = exact(t, 64, strings.Repeat("l", 64))
		local65 = exact(t, 65, strings.Repeat("l", 65))
		// A space keeps these quoted after normalisation.
		quoted64 = exact(t, 64, `"`+strings.Repeat("q", 61)+` "`)
		quoted65 = exact(t, 65, `"`+strings.Repeat("q", 62)+` "`)
		utf64    = exact(t, 64, strings.Repeat("ö", 32))

		// Domains of labels of at most 63 octets, so that only the total
		// length is at stake.
		dom189 = exact(t, 189, label63+"."+label63+"."+strings.Repeat("b", 53)+".example")
		dom190 = exact(t, 190, label63+"."+label63+"."+strings.Repeat("b", 54)+".example")
		dom252 = exact(t, 252, label63+"."+label63+"."+label63+"."+strings.Repeat("b", 52)+".example")
		dom253 = exact(t, 253, label63+"."+label63+"."+label63+"."+strings.Repeat("b", 53)+".example")

		addr254  = exact(t, 254, local64+"@"+dom189)
		addr255  = exact(t, 255, local64+"@"+dom190)
		short254 = exact(t, 254, "a@"+dom252)
		short255 = exact(t, 255, "a@"+dom253)
	)

	// want is the normalised String(); "" means ParseAddress must reject.
	// Rule names are RFC 5321 §4.1.2 unless another RFC is cited.
	tests := []struct {
		name string
		in   string
		opt  SyntaxOptions
		want string
	}{
		// Dot-string = Atom *("." Atom); Atom = 1*atext.
		{"plain", "john@example.com", SyntaxOptions{}, "john@example.com"},
		{"dotted", "john.q.public@example.org", SyntaxOptions{}, "john.q.public@example.org"},
		{"leading dot", ".john@example.com", SyntaxOptions{}, ""},
		{"trailing dot", "john.@example.com", SyntaxOptions{}, ""},
		{"consecutive dots", "john..doe@example.com", SyntaxOptions{}, ""},
		{"only a dot", ".@example.com", SyntaxOptions{}, ""},
		// atext (RFC 5322 §3.2.3): ALPHA / DIGIT and these 20 specials.
		{"all atext specials", "!#$%&'*+-/=?^_`{|}~@example.com", SyntaxOptions{}, "!#$%&'*+-/=?^_`{|}~@example.com"},
		{"atext mix", "a1.B2+tag_x-y=z@example.net", SyntaxOptions{}, "a1.B2+tag_x-y=z@example.net"},
		// RFC 5322 specials are not atext and need a Quoted-string.
		{"comma unquoted", "john,doe@example.com", SyntaxOptions{}, ""},
		{"brackets unquoted", "john[doe]@example.com", SyntaxOptions{}, ""},
		{"colon unquoted", "john:doe@example.com", SyntaxOptions{}, ""},
		{"semicolon unquoted", "john;doe@example.com", SyntaxOptions{}, ""},
		{"angle unquoted", "john<doe>@example.com", SyntaxOptions{}, ""},
		{"backslash unquoted", `john\doe@example.com`, SyntaxOptions{}, ""},
		{"space unquoted", "john doe@example.com", SyntaxOptions{}, ""},
		{"tab unquoted", "john\tdoe@example.com", SyntaxOptions{}, ""},
		{"NUL in local part", "john\x00@example.com", SyntaxOptions{}, ""},
		{"DEL in local part", "john\x7f@example.com", SyntaxOptions{}, ""},
		{"leading space", " john@example.com", SyntaxOptions{}, ""},

		// Quoted-string = DQUOTE *QcontentSMTP DQUOTE; qtextSMTP is
		// %d32-33 / %d35-91 / %d93-126; quoted-pairSMTP is %d92 %d32-126.
		{"quoted with space", `"john doe"@example.com`, SyntaxOptions{}, `"john doe"@example.com`},
		{"quoted escaped quote", `"john\"doe"@example.com`, SyntaxOptions{}, `"john\"doe"@example.com`},
		{"quoted escaped backslash", `"john\\doe"@example.com`, SyntaxOptions{}, `"john\\doe"@example.com`},
		{"quoted at sign", `"john@doe"@example.com`, SyntaxOptions{}, `"john@doe"@example.com`},
		{"quoted double dot kept quoted", `"john..doe"@example.com`, SyntaxOptions{}, `"john..doe"@example.com`},
		{"quoted comma", `"doe,john"@example.com`, SyntaxOptions{}, `"doe,john"@example.com`},
		// §4.1.2: a Quoted-string whose content is a Dot-string is the
		// same mailbox and should be sent in the Dot-string form.
		{"quoted dot-atom unquoted", `"john"@example.com`, SyntaxOptions{}, "john@example.com"},
		{"quoted dotted dot-atom unquoted", `"john.doe"@example.com`, SyntaxOptions{}, "john.doe@example.com"},
		{"quoted-pair of atext unquoted", `"j\ohn"@example.com`, SyntaxOptions{}, "john@example.com"},
		{"quoted keeps case", `"John"@Example.COM`, SyntaxOptions{}, "John@example.com"},
		// *QcontentSMTP allows zero characters.
		{"empty quoted", `""@example.com`, SyntaxOptions{}, `""@example.com`},
		{"unterminated quote", `"john@example.com`, SyntaxOptions{}, ""},
		{"closing quote escaped", `"john\"@example.com`, SyntaxOptions{}, ""},
		{"lone quote", `"@example.com`, SyntaxOptions{}, ""},
		{"quote in middle of atom", `jo"hn"@example.com`, SyntaxOptions{}, ""},
		{"quote then atom", `"jo"hn@example.com`, SyntaxOptions{}, ""},
		{"unescaped quote inside quotes", `"jo"hn"@example.com`, SyntaxOptions{}, ""},
		// obs-local-part of RFC 5322 (quoted words joined by dots) is not
		// in RFC 5321's Local-part.
		{"dotted quoted words", `"john"."doe"@example.com`, SyntaxOptions{}, ""},
		{"tab inside quotes", "\"john\tdoe\"@example.com", SyntaxOptions{}, ""},
		{"escaped tab inside quotes", "\"john\\\tdoe\"@example.com", SyntaxOptions{}, ""},
		{"DEL inside quotes", "\"john\x7f\"@example.com", SyntaxOptions{}, ""},

		// RFC 5322 comments (CFWS) are not in RFC 5321's grammar.
		{"comment in local part", "john(c)@example.com", SyntaxOptions{}, ""},
		{"comment before local part", "(c)john@example.com", SyntaxOptions{}, ""},
		{"comment before domain", "john@(c)example.com", SyntaxOptions{}, ""},
		{"comment after domain", "john@example.com(c)", SyntaxOptions{}, ""},

		// §4.5.3.1.1: local part at most 64 octets.
		{"local part 64 octets", local64 + "@example.com", SyntaxOptions{}, local64 + "@example.com"},
		{"local part 65 octets", local65 + "@example.com", SyntaxOptions{}, ""},
		// The quotes are part of the Quoted-string, so they count.
		{"quoted local part 64 octets", quoted64 + "@example.com", SyntaxOptions{}, quoted64 + "@example.com"},
		{"quoted local part 65 octets", quoted65 + "@example.com", SyntaxOptions{}, ""},
		// The limit is in octets, not characters (ö is two).
		{"UTF-8 local part 64 octets", utf64 + "@example.com", utf8Opt, utf64 + "@example.com"},
		{"UTF-8 local part 65 octets", utf64 + "a@example.com", utf8Opt, ""},
		// §4.5.3.1.3: a path is at most 256 octets including "<" and ">",
		// so a Mailbox is at most 254.
		{"address 254 octets", addr254, SyntaxOptions{}, addr254},
		{"address 255 octets", addr255, SyntaxOptions{}, ""},
		{"address 254 octets, domain 252", short254, SyntaxOptions{}, short254},
		// A 253-octet domain is within RFC 1035's limit, but with even a
		// one-octet local part the Mailbox is 255 octets, over the path
		// limit, so no deliverable address has a 253-octet domain.
		{"domain 253 octets", short255, SyntaxOptions{}, ""},
		// RFC 1035 §2.3.4: labels are at most 63 octets.
		{"label 63 octets", "user@" + label63 + ".example", SyntaxOptions{}, "user@" + label63 + ".example"},
		{"label 64 octets", "user@" + label64 + ".example", SyntaxOptions{}, ""},

		// sub-domain = Let-dig [Ldh-str]; Ldh-str = *(ALPHA / DIGIT / "-") Let-dig.
		{"label starts with hyphen", "user@-example.com", SyntaxOptions{}, ""},
		{"label ends with hyphen", "user@example-.com", SyntaxOptions{}, ""},
		{"inner hyphen", "user@ex-ample.com", SyntaxOptions{}, "user@ex-ample.com"},
		// Ldh-str allows hyphens anywhere inside, also two in a row.
		{"inner double hyphen", "user@exam--ple.com", SyntaxOptions{}, "user@exam--ple.com"},
		// Hyphens in the 3rd and 4th places (RFC 5890 §2.3.1 R-LDH label)
		// are still an Ldh-str; such hosts resolve (r1---sn-x.googlevideo.com).
		{"hyphens in 3rd and 4th places", "user@ab--cd.example", SyntaxOptions{}, "user@ab--cd.example"},
		{"label starts with digit", "user@3com.example", SyntaxOptions{}, "user@3com.example"},
		{"underscore in domain", "user@ex_ample.com", SyntaxOptions{}, ""},
		{"empty label", "user@example..com", SyntaxOptions{}, ""},
		{"leading dot in domain", "user@.example.com", SyntaxOptions{}, ""},
		// §2.3.5: only fully-qualified domain names; a dotless name is a
		// local alias. Domain has no empty (root) label, so no trailing dot.
		{"single label", "user@localhost", SyntaxOptions{}, ""},
		{"trailing dot on domain", "user@example.com.", SyntaxOptions{}, ""},
		// An address must be written as an address literal (§4.1.3); and
		// RFC 3696 §2: a TLD is never all-numeric.
		{"bare IPv4", "user@192.0.2.1", SyntaxOptions{}, ""},
		{"all-numeric TLD", "user@example.123", SyntaxOptions{}, ""},
		{"upper-case domain", "John.Doe@EXAMPLE.Org", SyntaxOptions{}, "John.Doe@example.org"},

		// §4.1.3 address literals.
		{"IPv4 literal by default", "user@[192.0.2.1]", SyntaxOptions{}, ""},
		{"IPv4 literal allowed", "user@[192.0.2.1]", allowLit, "user@[192.0.2.1]"},
		{"IPv6 literal by default", "user@[IPv6:2001:db8::1]", SyntaxOptions{}, ""},
		{"IPv6 literal allowed", "user@[IPv6:2001:db8::1]", allowLit, "user@[IPv6:2001:db8::1]"},
		{"IPv6 literal full form", "user@[IPv6:2001:DB8:0:0:0:0:0:1]", allowLit, "user@[IPv6:2001:db8::1]"},
		// RFC 5234 §2.3: ABNF quoted strings such as "IPv6:" are case-insensitive.
		{"IPv6 tag lower-case", "user@[ipv6:2001:db8::1]", allowLit, "user@[IPv6:2001:db8::1]"},
		// IPv6v4-comp = [IPv6-hex *3(":" IPv6-hex)] "::" [...] IPv4-address-literal
		{"IPv6 literal with IPv4 tail", "user@[IPv6:::ffff:192.0.2.1]", allowLit, "user@[IPv6:::ffff:192.0.2.1]"},
		// Snum = 1*3DIGIT "representing a decimal integer value in the
		// range 0 through 255": leading zeros are in the grammar.
		{"IPv4 literal leading zero", "user@[192.0.2.001]", allowLit, "user@[192.0.2.1]"},
		// IPv6-comp: "No more than 6 groups in addition to the '::' may be
		// present", so "::" never stands for a single group.
		{"IPv6 :: for one group", "user@[IPv6:2001:db8:0:0:0:0::1]", allowLit, ""},
		{"IPv6 nine groups", "user@[IPv6:2001:db8:0:0:0:0:0:0:1]", allowLit, ""},
		{"IPv4 octet over 255", "user@[192.0.2.256]", allowLit, ""},
		{"IPv4 three octets", "user@[192.0.2]", allowLit, ""},
		{"IPv6 without tag", "user@[2001:db8::1]", allowLit, ""},
		{"IPv6 tag with IPv4", "user@[IPv6:192.0.2.1]", allowLit, ""},
		{"IPv6 bad hex", "user@[IPv6:2001:db8::g]", allowLit, ""},
		{"IPv6 zone", "user@[IPv6:fe80::1%eth0]", allowLit, ""},
		{"IPv6 tag empty", "user@[IPv6:]", allowLit, ""},
		{"unterminated literal", "user@[192.0.2.1", allowLit, ""},
		{"empty literal", "user@[]", allowLit, ""},

		// RFC 5890/5891: IDNs travel as A-labels; UTS #46 mapping folds case.
		{"IDN", "user@bücher.example", SyntaxOptions{}, "user@xn--bcher-kva.example"},
		{"IDN upper-case", "user@BÜCHER.EXAMPLE", SyntaxOptions{}, "user@xn--bcher-kva.example"},
		{"A-label", "user@xn--bcher-kva.example", SyntaxOptions{}, "user@xn--bcher-kva.example"},
		{"A-label upper-case", "User@XN--BCHER-KVA.Example", SyntaxOptions{}, "User@xn--bcher-kva.example"},
		// sub-domain = Let-dig [Ldh-str] / U-label (RFC 6531 §3.3): an
		// ASCII label is judged the same whether or not another label is an IDN.
		{"IDN beside R-LDH label", "user@ab--cd.bücher.example", SyntaxOptions{}, "user@ab--cd.xn--bcher-kva.example"},
		// IDNA2008 is non-transitional: ß stays ß (RFC 5892 lists it PVALID).
		{"IDN sharp s", "user@faß.example", SyntaxOptions{}, "user@xn--fa-hia.example"},
		{"IDN single label", "user@bücher", SyntaxOptions{}, ""},
		{"IDN trailing dot", "user@bücher.example.", SyntaxOptions{}, ""},
		{"IDN empty label", "user@bücher..example", SyntaxOptions{}, ""},
		// RFC 5890 §4.2: the 63-octet limit applies to the A-label.
		{"IDN A-label 63 octets", "user@bücher" + strings.Repeat("a", 50) + ".example", SyntaxOptions{}, "user@" + idn63 + ".example"},
		{"IDN A-label 64 octets", "user@bücher" + strings.Repeat("a", 51) + ".example", SyntaxOptions{}, ""},
		// RFC 5892 Appendix A.2: ZERO WIDTH JOINER only after a virama.
		{"IDN zero width joiner", "user@b\u200dücher.example", SyntaxOptions{}, ""},
		{"bad punycode", "user@xn--zz.example", SyntaxOptions{}, ""},
		{"empty punycode", "user@xn--.example", SyntaxOptions{}, ""},
		// RFC 5891 §4.2.3.2: a label must not start with a combining mark.
		{"IDN leading combining mark", "user@\u0301bc.example", SyntaxOptions{}, ""},
		// Not LDH once mapped (RFC 5891 §4.2.2, STD3 rules in UTS #46).
		{"IDN with underscore", "user@bü_cher.example", SyntaxOptions{}, ""},
		{"IDN with space", "user@bü cher.example", SyntaxOptions{}, ""},
		{"IDN with symbol", "user@bü!cher.example", SyntaxOptions{}, ""},
		{"invalid UTF-8 in domain", "user@b\xfccher.example", SyntaxOptions{}, ""},
		{"space in domain", "user@exa mple.com", SyntaxOptions{}, ""},
		{"control character in domain", "user@exa\x01mple.com", SyntaxOptions{}, ""},

		// RFC 6531 §3.3: UTF-8 local parts only with SMTPUTF8.
		{"UTF-8 local part by default", "jörg@example.com", SyntaxOptions{}, ""},
		{"UTF-8 local part with SMTPUTF8", "jörg@example.com", utf8Opt, "jörg@example.com"},
		{"UTF-8 quoted by default", `"jörg"@example.com`, SyntaxOptions{}, ""},
		{"UTF-8 quoted with SMTPUTF8", `"jörg"@example.com`, utf8Opt, "jörg@example.com"},
		{"invalid UTF-8 local part", "j\xf6rg@example.com", utf8Opt, ""},
		{"invalid UTF-8 local part by default", "j\xf6rg@example.com", SyntaxOptions{}, ""},
		{"invalid UTF-8 in quotes", "\"j\xf6rg\"@example.com", utf8Opt, ""},

		// Mailbox = Local-part "@" ( Domain / address-literal ).
		{"empty", "", SyntaxOptions{}, ""},
		{"no at", "john.example.com", SyntaxOptions{}, ""},
		{"two at signs", "john@doe@example.com", SyntaxOptions{}, ""},
		{"at sign only", "@", SyntaxOptions{}, ""},
		{"empty local part", "@example.com", SyntaxOptions{}, ""},
		{"empty domain", "john@", SyntaxOptions{}, ""},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAddress(tc.in, tc.opt)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ParseAddress(%q, %+v) = %q, want an error", tc.in, tc.opt, got.String())
				}
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Errorf("ParseAddress(%q) error %v is %T, want *SyntaxError", tc.in, err, err)
				}
				t.Logf("rejected: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("ParseAddress(%q, %+v) error: %v, want %q", tc.in, tc.opt, err, tc.want)
			}
			if got.String() != tc.want {
				t.Errorf("ParseAddress(%q, %+v) = %q, want %q", tc.in, tc.opt, got.String(), tc.want)
			}
			if i := strings.LastIndexByte(tc.want, '@'); got.Local != tc.want[:i] || got.Domain != tc.want[i+1:] {
				t.Errorf("ParseAddress(%q) = Local %q, Domain %q; want %q", tc.in, got.Local, got.Domain, tc.want)
			}
			if len(got.String()) > maxAddressLen {
				t.Errorf("ParseAddress(%q) accepted %d octets", tc.in, len(got.String()))
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"bare", "jane@example.com", "jane@example.com"},
		{"display name", "Jane Doe <jane@example.com>", "jane@example.com"},
		{"quoted display name with comma", `"Doe, Jane" <jane@example.com>`, "jane@example.com"},
		{"display name with angle bracket", `"a <b" <jane@example.com>`, "jane@example.com"},
		{"angle brackets only", "<jane@example.com>", "jane@example.com"},
		{"spaces inside angle brackets", "Jane < jane@example.com >", "jane@example.com"},
		{"mailto", "mailto:jane@example.com", "jane@example.com"},
		{"mailto upper-case", "MAILTO:jane@example.com", "jane@example.com"},
		{"mailto mixed case", "MailTo:jane@example.com", "jane@example.com"},
		{"mailto with subject", "mailto:jane@example.com?subject=Hello%20there", "jane@example.com"},
		{"mailto with escaped at", "mailto:jane%40example.com?subject=hi", "jane@example.com"},
		// RFC 6068 §2: "+" is a plain character in a mailto: address.
		{"mailto with escaped plus", "mailto:jane%2Bnews@example.com", "jane+news@example.com"},
		{"mailto keeps plus", "mailto:jane+news@example.com", "jane+news@example.com"},
		{"mailto with escaped question mark", "mailto:jane%3Fx@example.com", "jane?x@example.com"},
		{"mailto with escaped UTF-8", "mailto:j%C3%B6rg@example.com", "jörg@example.com"},
		{"mailto in angle brackets", "Jane <mailto:jane@example.com?subject=x>", "jane@example.com"},
		// Outside mailto: "?" and "%" are atext and must stay.
		{"question mark without mailto", "jane?x@example.com", "jane?x@example.com"},
		{"percent without mailto", "jane%40x@example.com", "jane%40x@example.com"},
		{"surrounding spaces", "   jane@example.com  ", "jane@example.com"},
		{"tabs and newline", "\tjane@example.com\t\r\n", "jane@example.com"},
		{"non-breaking spaces", "\u00a0jane@example.com\u00a0", "jane@example.com"},
		{"zero-width spaces", "\u200bjane@example.com\u200b", "jane@example.com"},
		{"byte-order mark", "\ufeffjane@example.com", "jane@example.com"},
		{"BOM before display name", "\ufeffJane Doe <jane@example.com>\u00a0", "jane@example.com"},
		{"zero-width space inside brackets", "Jane <\u200bjane@example.com\u200b>", "jane@example.com"},
		{"spaces around mailto", " \u00a0mailto:jane@example.com\t", "jane@example.com"},
		{"empty", "", ""},
		{"only spaces", " \t\u00a0\u200b\ufeff", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Normalize(tc.in); got != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAddressKey(t *testing.T) {
	tests := []struct {
		name     string
		variants []string
		opt      SyntaxOptions
		want     string
	}{
		{"ASCII", []string{
			"john.doe@example.com",
			"John.Doe@example.com",
			"JOHN.DOE@EXAMPLE.COM",
			"john.DOE@Example.Com",
			`"John.Doe"@example.com`,
		}, SyntaxOptions{}, "john.doe@example.com"},
		{"IDN", []string{
			"anna@bücher.example",
			"Anna@BÜCHER.example",
			"ANNA@xn--bcher-kva.example",
			"anna@XN--BCHER-KVA.EXAMPLE",
		}, SyntaxOptions{}, "anna@xn--bcher-kva.example"},
		{"UTF-8 local part", []string{
			"jörg@example.com",
			"JÖRG@example.com",
			"Jörg@EXAMPLE.com",
		}, SyntaxOptions{SMTPUTF8: true}, "jörg@example.com"},
		{"quoted", []string{
			`"John Doe"@example.com`,
			`"john doe"@Example.com`,
		}, SyntaxOptions{}, `"john doe"@example.com`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range tc.variants {
				a, err := ParseAddress(v, tc.opt)
				if err != nil {
					t.Fatalf("ParseAddress(%q): %v", v, err)
				}
				if got := a.Key(); got != tc.want {
					t.Errorf("ParseAddress(%q).Key() = %q, want %q", v, got, tc.want)
				}
			}
		})
	}
}
