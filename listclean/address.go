package listclean

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// RFC 5321 limits (§4.5.3.1): a local part of 64 octets, and a forward
// path of 256 octets including the angle brackets, so 254 for the address.
const (
	maxLocalLen   = 64
	maxAddressLen = 254
	maxDomainLen  = 253
	maxLabelLen   = 63
)

// SyntaxOptions widen what ParseAddress accepts beyond plain internet mail.
type SyntaxOptions struct {
	// AllowIPLiteral accepts address literals such as user@[192.0.2.1].
	AllowIPLiteral bool
	// SMTPUTF8 accepts UTF-8 local parts (RFC 6531), which only servers
	// announcing SMTPUTF8 will take.
	SMTPUTF8 bool
}

// Address is a mailbox in the form relayctl sends to: the local part as the
// list wrote it (unquoted where quotes were not needed) and the domain in
// lower-case ASCII, IDNs converted to A-labels.
type Address struct {
	Local  string
	Domain string
}

// String is the address as written in SMTP commands and in the clean file.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// Key identifies the mailbox for de-duplication: every large provider treats
// local parts case-insensitively, so two spellings are one mailbox.
func (a Address) Key() string { return strings.ToLower(a.Local) + "@" + a.Domain }

var hashSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

// hash is Key hashed to 128 bits, without building the key.
func (a Address) hash() (uint64, uint64) {
	var buf [maxAddressLen + 1]byte
	b := buf[:0]
	for i := 0; i < len(a.Local); i++ {
		c := a.Local[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	if strings.ContainsFunc(a.Local, func(r rune) bool { return r >= utf8.RuneSelf }) {
		b = append(b[:0], strings.ToLower(a.Local)...)
	}
	b = append(b, '@')
	b = append(b, a.Domain...)
	return maphash.Bytes(hashSeeds[0], b), maphash.Bytes(hashSeeds[1], b)
}

// SyntaxError says why a value is not a usable address.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

func syntaxErr(format string, args ...any) error {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// Normalize turns the forms addresses take in exported lists into a bare
// address: surrounding white space, a display name ("Jane Doe
// <jane@example.com>"), angle brackets and a mailto: URI are removed.
// It does not validate; ParseAddress does.
func Normalize(raw string) string {
	s := strings.TrimFunc(raw, isSpace)
	if strings.HasSuffix(s, ">") {
		if i := strings.LastIndexByte(s, '<'); i >= 0 {
			s = strings.TrimFunc(s[i+1:len(s)-1], isSpace)
		}
	}
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		s = s[7:]
		if i := strings.IndexByte(s, '?'); i >= 0 {
			s = s[:i]
		}
		if strings.IndexByte(s, '%') >= 0 {
			if u, err := url.PathUnescape(s); err == nil {
				s = u
			}
		}
		s = strings.TrimFunc(s, isSpace)
	}
	return s
}

// isSpace also trims the zero-width and byte-order marks spreadsheets leave.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff' || r == '\u00a0'
}

// ParseAddress checks s against the Mailbox grammar of RFC 5321 §4.1.2 (the
// form mail servers accept in RCPT TO, which excludes RFC 5322's comments
// and folding white space) and returns it normalised.
func ParseAddress(s string, opt SyntaxOptions) (Address, error) {
	local, d, err := splitAddress(s, opt)
	if err != nil {
		return Address{}, err
	}
	if d, err = parseDomain(d, opt); err != nil {
		return Address{}, err
	}
	return joinAddress(local, d)
}

// splitAddress splits s at its last @ and checks the local part; the
// domain is returned as written.
func splitAddress(s string, opt SyntaxOptions) (local, domain string, err error) {
	if s == "" {
		return "", "", syntaxErr("empty address")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", "", syntaxErr("no @")
	}
	local, err = parseLocal(s[:at], opt)
	return local, s[at+1:], err
}

// joinAddress checks the whole address's length.
func joinAddress(local, domain string) (Address, error) {
	if n := len(local) + 1 + len(domain); n > maxAddressLen {
		return Address{}, syntaxErr("address is %d octets, more than %d", n, maxAddressLen)
	}
	return Address{Local: local, Domain: domain}, nil
}

func parseLocal(l string, opt SyntaxOptions) (string, error) {
	if l == "" {
		return "", syntaxErr("empty local part")
	}
	if len(l) > maxLocalLen {
		return "", syntaxErr("local part is %d octets, more than %d", len(l), maxLocalLen)
	}
	if l[0] == '"' {
		return parseQuotedLocal(l, opt)
	}
	if err := checkDotString(l, opt); err != nil {
		return "", err
	}
	return l, nil
}

// checkDotString checks RFC 5321's Dot-string: atoms of atext joined by
// single dots.
func checkDotString(l string, opt SyntaxOptions) error {
	if l[0] == '.' || l[len(l)-1] == '.' {
		return syntaxErr("local part starts or ends with a dot")
	}
	// The common case, plain atext and single dots, without the details.
	plain := true
	for i := 0; i < len(l); i++ {
		if c := l[i]; !atext[c] && (c != '.' || l[i-1] == '.') {
			plain = false
			break
		}
	}
	if plain {
		return nil
	}
	prevDot := false
	for i := 0; i < len(l); {
		c := l[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(l[i:])
			if r == utf8.RuneError && size <= 1 {
				return syntaxErr("local part is not valid UTF-8")
			}
			if !opt.SMTPUTF8 {
				return syntaxErr("non-ASCII local part needs --smtputf8")
			}
			if !unicode.IsGraphic(r) || unicode.IsSpace(r) {
				return syntaxErr("local part has character %U", r)
			}
			prevDot = false
			i += size
			continue
		}
		switch {
		case c == '.':
			if prevDot {
				return syntaxErr("local part has two dots in a row")
			}
			prevDot = true
		case isAtext(c):
			prevDot = false
		case c == '(' || c == ')':
			return syntaxErr("comments are not allowed in an SMTP address")
		case c == '"' || c == '\\':
			return syntaxErr("quotes must enclose the whole local part")
		case c <= ' ' || c == 0x7f:
			return syntaxErr("local part has a space or control character")
		default:
			return syntaxErr("local part has %q, which must be quoted", c)
		}
		i++
	}
	return nil
}

// parseQuotedLocal checks RFC 5321's Quoted-string and returns the local
// part unquoted when its content is a plain Dot-string (RFC 5321 §4.1.2 asks
// senders to use the unquoted form when one exists).
func parseQuotedLocal(l string, opt SyntaxOptions) (string, error) {
	if len(l) < 2 || l[len(l)-1] != '"' {
		return "", syntaxErr("unterminated quoted local part")
	}
	var content strings.Builder
	for i := 1; i < len(l)-1; {
		c := l[i]
		switch {
		case c == '\\':
			if i+1 >= len(l)-1 {
				return "", syntaxErr("quoted local part ends in a backslash")
			}
			n := l[i+1]
			if n < 32 || n > 126 {
				return "", syntaxErr("quoted local part escapes a control character")
			}
			content.WriteByte(n)
			i += 2
			continue
		case c == '"':
			return "", syntaxErr("quotes must enclose the whole local part")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(l[i:])
			if r == utf8.RuneError && size <= 1 {
				return "", syntaxErr("local part is not valid UTF-8")
			}
			if !opt.SMTPUTF8 {
				return "", syntaxErr("non-ASCII local part needs --smtputf8")
			}
			content.WriteString(l[i : i+size])
			i += size
			continue
		case c < 32 || c == 127:
			return "", syntaxErr("quoted local part has a control character")
		}
		content.WriteByte(c)
		i++
	}
	if c := content.String(); c != "" && checkDotString(c, SyntaxOptions{SMTPUTF8: opt.SMTPUTF8}) == nil {
		return c, nil
	}
	return l, nil
}

// atext marks the RFC 5322 atext characters.
var atext = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-/=?^_`{|}~") {
		t[c] = true
	}
	return t
}()

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool { return atext[c] }

var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.ValidateLabels(true),
	// RFC 5321 allows "ab--cd" as a label; only the punycode of xn-- labels
	// is checked, as for ASCII domains.
	idna.CheckHyphens(false),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

func parseDomain(d string, opt SyntaxOptions) (string, error) {
	if d == "" {
		return "", syntaxErr("empty domain")
	}
	if d[0] == '[' {
		return parseLiteral(d, opt)
	}
	ascii := true
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		d = strings.ToLower(d)
	}
	if !ascii || strings.Contains(d, "xn--") {
		if !utf8.ValidString(d) {
			return "", syntaxErr("domain is not valid UTF-8")
		}
		a, err := idnaProfile.ToASCII(d)
		if err != nil {
			return "", syntaxErr("domain %q is not a valid internationalised name: %v", d, idnaReason(err))
		}
		d = a
	}
	if err := checkHostname(d); err != nil {
		return "", err
	}
	return d, nil
}

// idnaReason shortens the idna package's messages ("idna: invalid label ...").
func idnaReason(err error) string {
	return strings.TrimPrefix(err.Error(), "idna: ")
}

// checkHostname checks an ASCII domain against RFC 1035/1123 as RFC 5321
// requires: dot-separated labels of letters, digits and inner hyphens.
func checkHostname(d string) error {
	if len(d) > maxDomainLen {
		return syntaxErr("domain is %d octets, more than %d", len(d), maxDomainLen)
	}
	if strings.HasSuffix(d, ".") {
		return syntaxErr("domain ends with a dot")
	}
	labels, start, digitsOnly := 0, 0, true
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			c := d[i]
			switch {
			case '0' <= c && c <= '9':
			case 'a' <= c && c <= 'z' || c == '-':
				digitsOnly = false
			case c == '(' || c == ')':
				return syntaxErr("comments are not allowed in an SMTP address")
			default:
				return syntaxErr("domain has %q", c)
			}
			continue
		}
		l := d[start:i]
		switch {
		case l == "":
			return syntaxErr("domain has an empty label")
		case len(l) > maxLabelLen:
			return syntaxErr("domain label is %d octets, more than %d", len(l), maxLabelLen)
		case l[0] == '-' || l[len(l)-1] == '-':
			return syntaxErr("domain label %q starts or ends with a hyphen", l)
		}
		labels++
		if i < len(d) {
			start, digitsOnly = i+1, true
		}
	}
	if labels < 2 {
		return syntaxErr("domain %q is not fully qualified", d)
	}
	if digitsOnly {
		if _, err := netip.ParseAddr(d); err == nil {
			return syntaxErr("IP address must be written as a literal, e.g. [%s]", d)
		}
		return syntaxErr("top-level domain %q is all digits", d[start:])
	}
	return nil
}

// parseLiteral checks an RFC 5321 address literal: [IPv4] or [IPv6:addr].
func parseLiteral(d string, opt SyntaxOptions) (string, error) {
	if !strings.HasSuffix(d, "]") {
		return "", syntaxErr("unterminated address literal")
	}
	if !opt.AllowIPLiteral {
		return "", syntaxErr("IP address literal %s (allowed with --allow-ip-literal)", d)
	}
	inner := d[1 : len(d)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		ip, ok := parseIPv6Literal(inner[5:])
		if !ok {
			return "", syntaxErr("bad IPv6 address literal %s", d)
		}
		return "[IPv6:" + ip.String() + "]", nil
	}
	ip, ok := parseSnums(inner)
	if !ok {
		return "", syntaxErr("bad IPv4 address literal %s", d)
	}
	return "[" + ip.String() + "]", nil
}

// parseSnums reads RFC 5321's IPv4-address-literal: four Snum (1 to 3
// digits, 0 to 255; leading zeros allowed, unlike netip's parser).
func parseSnums(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, p := range parts {
		if len(p) < 1 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return netip.Addr{}, false
		}
		n := 0
		for _, c := range p {
			n = n*10 + int(c-'0')
		}
		if n > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// parseIPv6Literal reads RFC 5321's IPv6-addr, which is stricter than RFC
// 4291: "::" stands for at least two groups, so at most 6 groups (4 before
// an IPv4 tail) may be written beside it; without "::", exactly 8 (6).
func parseIPv6Literal(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is6() || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	hex := s
	groupsMax := 8
	if i := strings.LastIndexByte(s, ':'); strings.Contains(s[i+1:], ".") {
		if _, ok := parseSnums(s[i+1:]); !ok {
			return netip.Addr{}, false
		}
		hex, groupsMax = s[:i+1], 6
	}
	groups := 0
	for _, g := range strings.Split(hex, ":") {
		if g != "" {
			groups++
		}
	}
	if strings.Contains(s, "::") {
		return ip, groups <= groupsMax-2
	}
	return ip, groups == groupsMax
}
