package listclean

import "strings"

// parser parses a list's addresses, remembering what each domain, as
// written, came to: a list has far fewer domains than rows, and the domain
// is the costly half of an address (IDNA, label rules). It also gathers the
// distinct domains, each a site that later carries its DNS verdict and its
// warnings.
type parser struct {
	opt       SyntaxOptions
	spellings map[string]*spelling
	sites     map[string]*site
}

// spelling is a domain as written in the list.
type spelling struct {
	site *site // nil when err is set
	err  error
}

// site is a distinct domain (lower-case ASCII).
type site struct {
	name    string
	verdict DomainResult // zero until checked, and with no MX check
	warns   []Warning    // typo and disposable warnings
	advised bool
}

func newParser(opt SyntaxOptions) *parser {
	return &parser{opt: opt, spellings: map[string]*spelling{}, sites: map[string]*site{}}
}

// parse is ParseAddress, with the domain's site.
func (p *parser) parse(s string) (Address, *site, error) {
	local, d, err := splitAddress(s, p.opt)
	if err != nil {
		return Address{}, nil, err
	}
	sp := p.spellings[d]
	if sp == nil {
		// Remember each spelling in lower case only, so that a list of
		// randomly cased domains does not grow the cache row by row.
		lower := strings.ToLower(d)
		if sp = p.spellings[lower]; sp == nil {
			sp = &spelling{}
			if name, err := parseDomain(d, p.opt); err != nil {
				sp.err = err
			} else {
				sp.site = p.sites[name]
				if sp.site == nil {
					sp.site = &site{name: name}
					p.sites[name] = sp.site
				}
			}
			if lower == d {
				lower = strings.Clone(d) // d may point into the whole record
			}
			p.spellings[lower] = sp
		}
	}
	if sp.err != nil {
		return Address{}, nil, sp.err
	}
	a, err := joinAddress(local, sp.site.name)
	return a, sp.site, err
}

// advice returns the site's domain-level warnings, worked out once.
func (s *site) advice(adv *advisor) []Warning {
	if !s.advised {
		s.warns, s.advised = adv.domainWarnings(nil, s.name), true
	}
	return s.warns
}
