package report

import (
	"path"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseBytes: a size that parses is a byte count of 0 or more that
// reads back the same as plain digits, and FormatBytes writes it in a form
// that reads back within its rounding (three significant digits). Seeds:
// testdata/fuzz/FuzzParseBytes.
func FuzzParseBytes(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			if n != 0 {
				t.Errorf("ParseBytes(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d, a negative size", s, n)
		}
		if back, err := ParseBytes(strconv.FormatInt(n, 10)); err != nil || back != n {
			t.Errorf("ParseBytes(%q) = %d, but its digits read back as %d, %v", s, n, back, err)
		}
		shown := FormatBytes(n)
		back, err := ParseBytes(shown)
		if err != nil {
			t.Fatalf("FormatBytes(%d) = %q does not parse: %v", n, shown, err)
		}
		if diff := back - n; diff > n/200+1 || -diff > n/200+1 {
			t.Errorf("FormatBytes(%d) = %q reads back as %d", n, shown, back)
		}
	})
}

// FuzzParseBudget: a budget that parses has a trimmed, non-empty name that
// is a valid glob with no '=' and a size above 0, and writing it back as
// NAME=BYTES gives the same budget; an error names the input. Seeds:
// testdata/fuzz/FuzzParseBudget.
func FuzzParseBudget(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		name, n, err := ParseBudget(s)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Errorf("ParseBudget(%q): error %q does not name the input", s, err)
			}
			return
		}
		switch {
		case name == "" || name != strings.TrimSpace(name) || strings.Contains(name, "="):
			t.Fatalf("ParseBudget(%q): name %q", s, name)
		case n <= 0:
			t.Fatalf("ParseBudget(%q): size %d", s, n)
		}
		if _, err := path.Match(name, "hello-c.gcc"); err != nil {
			t.Errorf("ParseBudget(%q): name %q is not a valid glob: %v", s, name, err)
		}
		if !budgetApplies(name, name) {
			t.Errorf("ParseBudget(%q): name %q does not apply to a recipe of that name", s, name)
		}
		again := name + "=" + strconv.FormatInt(n, 10)
		if name2, n2, err := ParseBudget(again); err != nil || name2 != name || n2 != n {
			t.Errorf("ParseBudget(%q) = %q, %d; written back, %q gives %q, %d, %v", s, name, n, again, name2, n2, err)
		}
	})
}
