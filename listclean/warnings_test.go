package listclean

import (
	"slices"
	"testing"
)

func mustParse(t *testing.T, s string) Address {
	t.Helper()
	a, err := ParseAddress(s, SyntaxOptions{})
	if err != nil {
		t.Fatalf("ParseAddress(%q): %v", s, err)
	}
	return a
}

func TestWarnings(t *testing.T) {
	ad := newAdvisor()
	tests := []struct {
		in   string
		want []Warning // Kind and Detail only
	}{
		{"jane@example.com", nil},
		{"info@example.com", []Warning{{Kind: WarnRole, Detail: "role account info@"}}},
		{"jane@gmsil.com", []Warning{{Kind: WarnTypo, Detail: "did you mean gmail.com?"}}},
		// gmial.com is both a slip and, being squatted, on the disposable list.
		{"jane@gmial.com", []Warning{
			{Kind: WarnTypo, Detail: "did you mean gmail.com?"},
			{Kind: WarnDisposable, Detail: "disposable-mail domain gmial.com"},
		}},
		{"jane@mailinator.com", []Warning{{Kind: WarnDisposable, Detail: "disposable-mail domain mailinator.com"}}},
		{"Info@gmsil.com", []Warning{
			{Kind: WarnRole, Detail: "role account info@"},
			{Kind: WarnTypo, Detail: "did you mean gmail.com?"},
		}},
		{"postmaster@x.mailinator.com", []Warning{
			{Kind: WarnRole, Detail: "role account postmaster@"},
			{Kind: WarnDisposable, Detail: "disposable-mail domain mailinator.com"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := ad.check(nil, mustParse(t, tc.in))
			if !slices.Equal(got, tc.want) {
				t.Errorf("check(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}

	// check appends to what it is given.
	prev := []Warning{{Row: 7, Kind: WarnRole}}
	got := ad.check(prev, mustParse(t, "info@example.com"))
	if len(got) != 2 || got[0] != prev[0] {
		t.Errorf("check did not append to dst: %+v", got)
	}
}

func TestRoleWarnings(t *testing.T) {
	ad := newAdvisor()
	tests := []struct {
		in   string
		want string // Detail, "" for no role warning
	}{
		{"info@example.com", "role account info@"},
		{"postmaster@example.com", "role account postmaster@"},
		{"noreply@example.com", "role account noreply@"},
		{"no-reply@example.com", "role account no-reply@"},
		{"INFO@example.com", "role account info@"},
		{"Sales+tag@example.com", "role account sales@"},
		{"sales+@example.com", "role account sales@"},
		{"jane@example.com", ""},
		{"jane+info@example.com", ""},
		{"information.desk@example.com", ""},
		{"infos@example.com", ""},
		{"+info@example.com", ""},
		{"info.sales@example.com", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := ""
			for _, w := range ad.check(nil, mustParse(t, tc.in)) {
				if w.Kind == WarnRole {
					if got != "" {
						t.Errorf("two role warnings for %q", tc.in)
					}
					got = w.Detail
				}
			}
			if got != tc.want {
				t.Errorf("role warning for %q = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTypoWarnings(t *testing.T) {
	ad := newAdvisor()
	tests := []struct {
		domain string
		want   string // suggested domain, "" for none
	}{
		{"gmial.com", "gmail.com"},  // transposition
		{"gmai.com", "gmail.com"},   // deletion
		{"gmaill.com", "gmail.com"}, // insertion
		{"gmsil.com", "gmail.com"},  // substitution
		{"hotmial.com", "hotmail.com"},
		{"hotmal.com", "hotmail.com"},
		{"outlok.com", "outlook.com"},
		{"yahoo.con", "yahoo.com"},
		{"yahoo.cmo", "yahoo.com"},
		{"aol.con", "aol.com"}, // too short for the edit rule; caught by the TLD rule
		{"aol.cm", "aol.com"},
		{"icloud.con", "icloud.com"},
		// Known providers are never typos, even when one edit from another.
		{"gmail.com", ""},
		{"hotmail.com", ""},
		{"aol.com", ""},
		{"mail.com", ""}, // one insertion from gmail.com, but a provider itself
		{"hotmail.co.uk", ""},
		{"example.com", ""},
		{"example.org", ""},
		{"bücher.example", ""},
		{"aol.example", ""},
		{"ao.com", ""}, // short domains collide with real ones
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			if got := ad.typo(tc.domain); got != tc.want {
				t.Errorf("typo(%q) = %q, want %q", tc.domain, got, tc.want)
			}
			// Second call goes through the cache and must agree.
			if got := ad.typo(tc.domain); got != tc.want {
				t.Errorf("cached typo(%q) = %q, want %q", tc.domain, got, tc.want)
			}
		})
	}
}

func TestDisposableWarnings(t *testing.T) {
	ad := newAdvisor()
	tests := []struct {
		domain string
		want   string // listed parent, "" for none
	}{
		{"mailinator.com", "mailinator.com"},
		{"x.mailinator.com", "mailinator.com"},
		{"a.b.mailinator.com", "mailinator.com"},
		{"mymailinator.example", ""}, // a whole label must match
		{"mailinator.com.example", ""},
		{"example.com", ""},
		{"com", ""},
		{"gmail.com", ""},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			if got := ad.disposableParent(tc.domain); got != tc.want {
				t.Errorf("disposableParent(%q) = %q, want %q", tc.domain, got, tc.want)
			}
		})
	}
}

func TestEditDistanceAtMostOne(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"", "a", true},
		{"", "ab", false},
		{"abc", "abc", true},
		{"abc", "abd", true},   // substitution at the end
		{"abc", "xbc", true},   // substitution at the start
		{"abc", "xabc", true},  // insertion at the start
		{"abc", "abcx", true},  // insertion at the end
		{"abc", "axbc", true},  // insertion inside
		{"abcd", "abdc", true}, // transposition at the end
		{"abcd", "bacd", true}, // transposition at the start
		{"ab", "ba", true},
		{"abc", "cba", false},
		{"abcd", "badc", false},
		{"abc", "abxy", false},
		{"abc", "xyc", false},
		{"abc", "abcde", false},
		{"abc", "xabcx", false},
		{"abcd", "acbx", false},
		{"mail.com", "gmail.com", true},
		{"gmial.com", "gmail.com", true},
		{"yahoo.com", "gmail.com", false},
	}
	for _, tc := range tests {
		// The relation is symmetric: test both orders.
		if got := editDistanceAtMostOne(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistanceAtMostOne(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := editDistanceAtMostOne(tc.b, tc.a); got != tc.want {
			t.Errorf("editDistanceAtMostOne(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
