package listclean

import (
	"bufio"
	_ "embed"
	"strings"
)

// Warning kinds: the row is kept, but the address deserves a look.
const (
	WarnRole       = "role"
	WarnTypo       = "typo"
	WarnDisposable = "disposable"
)

var (
	//go:embed data/role_accounts.txt
	roleAccountsText string
	//go:embed data/provider_domains.txt
	providerDomainsText string
	//go:embed data/disposable_domains.txt
	disposableDomainsText string
)

// words reads a data file: one entry a line, '#' starts a comment.
func words(text string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, strings.ToLower(line))
	}
	return out
}

func wordSet(text string) map[string]struct{} {
	set := make(map[string]struct{})
	for _, w := range words(text) {
		set[w] = struct{}{}
	}
	return set
}

// advisor finds the warnings for kept addresses. Built once per run.
type advisor struct {
	roles      map[string]struct{}
	providers  map[string]struct{}
	byUse      []string // provider domains, most used first
	disposable map[string]struct{}
	typoCache  map[string]string // domain → suggestion ("" for none)
}

func newAdvisor() *advisor {
	return &advisor{
		roles:      wordSet(roleAccountsText),
		providers:  wordSet(providerDomainsText),
		byUse:      words(providerDomainsText),
		disposable: wordSet(disposableDomainsText),
		typoCache:  make(map[string]string),
	}
}

// Warning is a remark on a kept row.
type Warning struct {
	Row    int64
	Email  string
	Kind   string
	Detail string
}

// check returns the warnings for a, appending to dst.
func (ad *advisor) check(dst []Warning, a Address) []Warning {
	return ad.domainWarnings(ad.localWarnings(dst, a.Local), a.Domain)
}

// localWarnings are the warnings a local part earns: a role account.
func (ad *advisor) localWarnings(dst []Warning, local string) []Warning {
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	if len(local) > 20 {
		return dst // no role name is that long
	}
	var buf [20]byte
	for i := 0; i < len(local); i++ {
		c := local[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	if _, ok := ad.roles[string(buf[:len(local)])]; ok {
		dst = append(dst, Warning{Kind: WarnRole, Detail: "role account " + string(buf[:len(local)]) + "@"})
	}
	return dst
}

// domainWarnings are the warnings a domain earns: a likely typo of a big
// provider's, a disposable-mail domain.
func (ad *advisor) domainWarnings(dst []Warning, domain string) []Warning {
	if s := ad.typo(domain); s != "" {
		dst = append(dst, Warning{Kind: WarnTypo, Detail: "did you mean " + s + "?"})
	}
	if d := ad.disposableParent(domain); d != "" {
		dst = append(dst, Warning{Kind: WarnDisposable, Detail: "disposable-mail domain " + d})
	}
	return dst
}

// disposableParent returns the listed domain that d is or is under.
func (ad *advisor) disposableParent(d string) string {
	for {
		if _, ok := ad.disposable[d]; ok {
			return d
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return ""
		}
		d = d[i+1:]
	}
}

// typoTLDs are slips of ".com" that no one means.
var typoTLDs = map[string]bool{"con": true, "cmo": true, "cm": true, "om": true, "vom": true, "xom": true, "comm": true, "cpm": true, "ocm": true, "co": true}

// typo suggests the big provider's domain that d is most likely a slip of:
// one edit (insertion, deletion, substitution or transposition) away from a
// provider domain of eight characters or more (shorter ones collide with real
// domains), or a provider's name with a mistyped ".com".
func (ad *advisor) typo(d string) string {
	if s, ok := ad.typoCache[d]; ok {
		return s
	}
	s := ""
	if _, known := ad.providers[d]; !known {
		for _, p := range ad.byUse {
			if len(p) >= 8 && editDistanceAtMostOne(d, p) {
				s = p
				break
			}
		}
		if s == "" {
			if i := strings.LastIndexByte(d, '.'); i > 0 && typoTLDs[d[i+1:]] {
				if _, ok := ad.providers[d[:i]+".com"]; ok {
					s = d[:i] + ".com"
				}
			}
		}
	}
	ad.typoCache[d] = s
	return s
}

// editDistanceAtMostOne reports whether a and b differ by at most one
// insertion, deletion, substitution or transposition of adjacent bytes.
func editDistanceAtMostOne(a, b string) bool {
	if a == b {
		return true
	}
	la, lb := len(a), len(b)
	if la-lb > 1 || lb-la > 1 {
		return false
	}
	i := 0
	for i < la && i < lb && a[i] == b[i] {
		i++
	}
	switch {
	case la == lb:
		if a[i+1:] == b[i+1:] {
			return true // substitution
		}
		return i+1 < la && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
	case la > lb:
		return a[i+1:] == b[i:]
	default:
		return a[i:] == b[i+1:]
	}
}
