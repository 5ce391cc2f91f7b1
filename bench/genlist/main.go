// Command genlist writes a synthetic recipient list for benchmarking
// `relayctl clean`: the shape of a CRM export, with the dirt real exports
// carry, at addresses under the reserved .example TLD (RFC 2606) only.
//
//	go run ./bench/genlist -rows 1000000 -seed 1 > list.csv
//
// The same flags always give the same bytes. Rows are:
//   - addresses at a few big provider domains (gmail.example, ...) for about
//     half the rows, the rest at company domains coNNNN.example drawn from a
//     Zipf distribution (-domains of them);
//   - about 1% repeats of an earlier address with its case changed;
//   - about 0.5% display-name, <angle>, mailto: or space-padded forms;
//   - about 0.5% syntax errors, 0.2% empty email cells, and empty name,
//     company and city cells at a few per cent;
//   - quoted fields: "Doe, Jane <...>" addresses, "Smith, Jr." surnames,
//     "Acme, Inc." companies, "Washington, D.C." cities.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
)

// provider is a big mailbox provider and its share of all rows, in
// thousandths.
type provider struct {
	domain string
	weight int
}

var providers = []provider{
	{"gmail.example", 230},
	{"hotmail.example", 80},
	{"yahoo.example", 70},
	{"outlook.example", 50},
	{"icloud.example", 30},
	{"aol.example", 10},
	{"gmx.example", 10},
}

var firstNames = strings.Fields(`James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth
William Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy
Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua
Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald Stephanie Edward
Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley
Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen Benjamin Samantha Samuel
Katherine Gregory Christine Alexander Debra Frank Rachel Patrick Carolyn Raymond Janet Jack Catherine
Dennis Maria Jerry Heather Tyler Diane Aaron Ruth Jose Julie Adam Olivia Nathan Joyce Henry Virginia
Douglas Victoria Zachary Kelly Peter Lauren Kyle Christina Ethan Joan Walter Evelyn Noah Judith Jeremy
Megan Christian Andrea Keith Cheryl Roger Hannah Terry Jacqueline Gerald Martha Harold Gloria Sean Teresa
Austin Ann Carl Sara Arthur Madison Lawrence Frances Dylan Kathryn Jesse Janice Jordan Jean Bryan Abigail
Billy Alice Joe Julia Bruce Judy Gabriel Sophia Logan Grace Albert Denise Willie Amber Alan Doris Juan
Marilyn Wayne Danielle Elijah Beverly Randy Isabella Roy Theresa Vincent Diana Ralph Natalie Eugene
Brittany Russell Charlotte Bobby Marie Mason Kayla Philip Alexis Louis Lori Søren Zoë José Chloé
Björn Anaïs Łukasz Dmitri Priya Wei Hiroshi Aisha Mohammed Fatima Mateo Sofia Liam Nora Lucas Elena`)

var lastNames = strings.Fields(`Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White
Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner
Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan
Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James
Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez
Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez
Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole
Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison
Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns
Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Muñoz Hunt Hicks Holmes
Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels
Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce
Müller Schröder Dubois Lefèvre Nowak Kowalski Ivanov Yamamoto Tanaka Singh Kumar Okafor Haddad Rossi
O'Brien O'Connor D'Angelo Van_der_Berg`)

var cities = strings.Fields(`London Paris Berlin Madrid Rome Amsterdam Dublin Lisbon Vienna Prague
Warsaw Stockholm Oslo Copenhagen Helsinki Brussels Zürich Munich Hamburg Milan Barcelona Lyon Manchester
Edinburgh New_York Los_Angeles Chicago Houston Phoenix Philadelphia San_Antonio San_Diego Dallas Austin
Seattle Denver Boston Toronto Montréal Vancouver Sydney Melbourne Auckland Tokyo Osaka Singapore Mumbai
São_Paulo Mexico_City Buenos_Aires Cape_Town`)

// citiesWithCommas are written quoted, as a spreadsheet exports them.
var citiesWithCommas = []string{"Washington, D.C.", "Portland, OR", "Springfield, IL", "Paris, TX", "Cambridge, MA"}

var companyWords = strings.Fields(`North South East West Blue Green Red Silver Golden Bright Rapid Summit
Pioneer Harbor River Stone Oak Pine Cedar Maple Eagle Falcon Lion Atlas Nova Vertex Apex Orbit Quantum
Prime Union Metro Global United Federal Coastal Alpine Prairie Crescent Beacon Anchor Keystone Liberty`)

var companyKinds = strings.Fields(`Logistics Systems Foods Labs Partners Consulting Media Health Energy
Capital Software Analytics Networks Design Studio Retail Motors Builders Pharma Insurance Travel Textiles`)

var companySuffixes = []string{"", "", " Ltd", " GmbH", " LLC", ", Inc.", ", Ltd.", " & Co.", " S.A.", " plc"}

var roleLocals = strings.Fields(`info sales contact support admin office hello billing marketing hr`)

type generator struct {
	r       *rand.Rand
	zipf    *rand.Zipf
	domains int
	cum     []int    // cumulative provider weights, thousandths
	recent  []string // earlier addresses, for duplicates
	used    map[uint64]struct{}
}

func newGenerator(seed uint64, domains int) *generator {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &generator{
		r:       r,
		zipf:    rand.NewZipf(r, 1.07, 2, uint64(domains-1)),
		domains: domains,
		recent:  make([]string, 0, 1<<16),
		used:    make(map[uint64]struct{}),
	}
	sum := 0
	for _, p := range providers {
		sum += p.weight
		g.cum = append(g.cum, sum)
	}
	return g
}

func (g *generator) pick(words []string) string {
	return strings.ReplaceAll(words[g.r.IntN(len(words))], "_", " ")
}

// asciiLower turns a name into what people put in an address: lower case,
// accents dropped, no spaces or apostrophes.
func asciiLower(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteRune(c)
		case 'A' <= c && c <= 'Z':
			b.WriteRune(c + 'a' - 'A')
		case c == ' ' || c == '\'' || c == '_':
		default:
			if r, ok := deaccent[c]; ok {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

var deaccent = map[rune]rune{'ø': 'o', 'Ø': 'o', 'ë': 'e', 'é': 'e', 'è': 'e', 'É': 'e', 'ï': 'i',
	'ö': 'o', 'ü': 'u', 'ñ': 'n', 'ç': 'c', 'ã': 'a', 'á': 'a', 'Ł': 'l', 'ł': 'l', 'ó': 'o'}

func (g *generator) companyName(i int) string {
	// Derived from the index alone, so a domain always has one name.
	w := companyWords[i%len(companyWords)]
	k := companyKinds[(i/len(companyWords))%len(companyKinds)]
	s := companySuffixes[(i*7+i/13)%len(companySuffixes)]
	return w + " " + k + s
}

// localPart is how people at a provider or a company spell themselves.
func (g *generator) localPart(first, last string, company bool) string {
	f, l := asciiLower(first), asciiLower(last)
	if company {
		switch x := g.r.IntN(100); {
		case x < 2:
			return roleLocals[g.r.IntN(len(roleLocals))]
		case x < 60:
			return f + "." + l
		case x < 80:
			return f[:1] + l
		case x < 83:
			return f
		case x < 90:
			return f + "." + l + strconv.Itoa(g.r.IntN(100))
		default:
			return f + "_" + l
		}
	}
	n := strconv.Itoa(g.r.IntN(10000))
	switch x := g.r.IntN(100); {
	case x < 30:
		return f + "." + l + n
	case x < 50:
		return f + l + n
	case x < 62:
		return f[:1] + l + n
	case x < 72:
		return f + "_" + l + strconv.Itoa(1950+g.r.IntN(60))
	case x < 80:
		return f + "." + l
	case x < 88:
		return l + "." + f + n
	case x < 94:
		return f + "." + l + "+news"
	default:
		return f + n
	}
}

// unique returns local@domain, or, if that mailbox was already handed out,
// the next free john.smith2, john.smith3... as mail administrators assign
// them, so that the only duplicates are the ones next makes on purpose.
func (g *generator) unique(local, first, last, domain string) string {
	addr := local + "@" + domain
	if g.claim(addr) {
		return addr
	}
	if slices.Contains(roleLocals, local) {
		local = asciiLower(first) + "." + asciiLower(last)
	}
	for n := 2; ; n++ {
		addr = local + strconv.Itoa(n) + "@" + domain
		if g.claim(addr) {
			return addr
		}
	}
}

// claim records addr as used, reporting whether it was free. A 64-bit
// FNV-1a hash stands for the address: a false clash costs only a suffix.
func (g *generator) claim(addr string) bool {
	h := uint64(14695981039346656037)
	for i := 0; i < len(addr); i++ {
		h ^= uint64(addr[i])
		h *= 1099511628211
	}
	if _, ok := g.used[h]; ok {
		return false
	}
	g.used[h] = struct{}{}
	return true
}

type row struct {
	email, first, last, company, city string
}

func (g *generator) next() row {
	first, last := g.pick(firstNames), g.pick(lastNames)
	var rw row
	rw.first, rw.last = first, last

	var domain string
	company := ""
	isCompany := false
	if x := g.r.IntN(1000); x < g.cum[len(g.cum)-1] {
		for i, c := range g.cum {
			if x < c {
				domain = providers[i].domain
				break
			}
		}
		if g.r.IntN(3) == 0 {
			company = g.companyName(g.r.IntN(g.domains))
		}
	} else {
		i := int(g.zipf.Uint64())
		domain = "co" + fmt.Sprintf("%04d", i) + ".example"
		company = g.companyName(i)
		isCompany = true
	}
	addr := g.unique(g.localPart(first, last, isCompany), first, last, domain)

	if len(g.recent) < cap(g.recent) {
		g.recent = append(g.recent, addr)
	} else {
		g.recent[g.r.IntN(len(g.recent))] = addr
	}

	switch x := g.r.IntN(1000); {
	case x < 10:
		// A repeat of an earlier mailbox, typed differently.
		addr = changeCase(g.recent[g.r.IntN(len(g.recent))], g.r.IntN(3))
	case x < 15:
		addr = g.dressUp(addr, first, last)
	case x < 20:
		addr = g.breakSyntax(addr)
	case x < 22:
		addr = ""
	}
	rw.email = addr

	if g.r.IntN(100) < 3 {
		rw.first = ""
	}
	if g.r.IntN(100) < 3 {
		rw.last = ""
	} else if g.r.IntN(500) == 0 {
		rw.last += ", Jr."
	}
	if g.r.IntN(100) < 5 {
		company = ""
	}
	rw.company = company
	switch x := g.r.IntN(100); {
	case x < 8:
	case x < 10:
		rw.city = citiesWithCommas[g.r.IntN(len(citiesWithCommas))]
	default:
		rw.city = g.pick(cities)
	}
	return rw
}

func changeCase(addr string, how int) string {
	switch how {
	case 0:
		return strings.ToUpper(addr)
	case 1:
		at := strings.LastIndexByte(addr, '@')
		if at < 1 {
			return strings.ToUpper(addr)
		}
		return strings.ToUpper(addr[:1]) + addr[1:at] + strings.ToUpper(addr[at:])
	default:
		b := []byte(addr)
		for i := 0; i < len(b); i += 2 {
			if 'a' <= b[i] && b[i] <= 'z' {
				b[i] -= 'a' - 'A'
			}
		}
		return string(b)
	}
}

// dressUp writes an address the ways exports do besides bare.
func (g *generator) dressUp(addr, first, last string) string {
	switch g.r.IntN(6) {
	case 0:
		return first + " " + last + " <" + addr + ">"
	case 1:
		return last + ", " + first + " <" + addr + ">"
	case 2:
		return "<" + addr + ">"
	case 3:
		return "mailto:" + addr
	case 4:
		return "  " + addr + " "
	default:
		return "MAILTO:" + addr + "?subject=Hello"
	}
}

// breakSyntax makes the mistakes people and bad exports make.
func (g *generator) breakSyntax(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	local, domain := addr[:at], addr[at+1:]
	switch g.r.IntN(9) {
	case 0:
		return local + domain // no @
	case 1:
		return local + "@@" + domain
	case 2:
		return local + "..x@" + domain
	case 3:
		return local + "@" + strings.TrimSuffix(domain, ".example") // no TLD
	case 4:
		return local + " " + "x@" + domain
	case 5:
		return local + "@" + domain + "."
	case 6:
		return local + "@" + strings.Replace(domain, ".", ",", 1)
	case 7:
		return "@" + domain
	default:
		return local + "@"
	}
}

// appendField appends f to b, quoted as encoding/csv would quote it.
func appendField(b []byte, f string) []byte {
	if f == "" || !strings.ContainsAny(f, ",\"\r\n") && f[0] != ' ' && f[0] != '\t' {
		return append(b, f...)
	}
	b = append(b, '"')
	for i := 0; i < len(f); i++ {
		if f[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, f[i])
	}
	return append(b, '"')
}

func (g *generator) appendRow(b []byte, rw row) []byte {
	b = appendField(b, rw.email)
	b = append(b, ',')
	b = appendField(b, rw.first)
	b = append(b, ',')
	b = appendField(b, rw.last)
	b = append(b, ',')
	b = appendField(b, rw.company)
	b = append(b, ',')
	b = appendField(b, rw.city)
	return append(b, '\n')
}

func main() {
	rows := flag.Int("rows", 100000, "data rows to write")
	seed := flag.Uint64("seed", 1, "random seed; the same flags give the same list")
	domains := flag.Int("domains", 5000, "company domains in the long tail")
	flag.Parse()
	if *rows < 0 || *domains < 1 {
		fmt.Fprintln(os.Stderr, "genlist: -rows must be >= 0 and -domains >= 1")
		os.Exit(2)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	w.WriteString("email,first_name,last_name,company,city\n")
	g := newGenerator(*seed, *domains)
	var line []byte
	for range *rows {
		line = g.appendRow(line[:0], g.next())
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "genlist:", err)
		os.Exit(1)
	}
}
