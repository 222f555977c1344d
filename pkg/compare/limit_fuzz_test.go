package compare

import (
	"errors"
	"math"
	"path"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseLimit: a limit that parses is relative with a finite
// percentage of 0 or more, or absolute with 0 or more bytes; its pattern,
// if any, is trimmed, has no '=' and is a valid glob that applies to a
// recipe of that name; String reads back as the same limit; growing by
// nothing never exceeds it. An error is ErrBadLimit and names the input.
// Seeds: testdata/fuzz/FuzzParseLimit.
func FuzzParseLimit(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			if !errors.Is(err, ErrBadLimit) {
				t.Errorf("ParseLimit(%q): error %v is not ErrBadLimit", s, err)
			}
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Errorf("ParseLimit(%q): error %q does not name the input", s, err)
			}
			if l != (Limit{}) {
				t.Errorf("ParseLimit(%q) = %+v with error %v", s, l, err)
			}
			return
		}
		switch {
		case l.Relative && (l.Percent < 0 || math.IsInf(l.Percent, 0) || math.IsNaN(l.Percent) || l.Bytes != 0):
			t.Fatalf("ParseLimit(%q) = %+v", s, l)
		case !l.Relative && (l.Bytes < 0 || l.Percent != 0):
			t.Fatalf("ParseLimit(%q) = %+v", s, l)
		}
		if l.Pattern != "" {
			if l.Pattern != strings.TrimSpace(l.Pattern) || strings.Contains(l.Pattern, "=") {
				t.Fatalf("ParseLimit(%q): pattern %q", s, l.Pattern)
			}
			if _, err := path.Match(l.Pattern, "hello-c.gcc"); err != nil {
				t.Errorf("ParseLimit(%q): pattern %q is not a valid glob: %v", s, l.Pattern, err)
			}
			if !l.applies(l.Pattern) {
				t.Errorf("ParseLimit(%q): pattern %q does not apply to a recipe of that name", s, l.Pattern)
			}
		}
		back, err := ParseLimit(l.String())
		if err != nil || back != l {
			t.Errorf("ParseLimit(%q) = %+v; its String %q reads back as %+v, %v", s, l, l.String(), back, err)
		}
		if l.exceeded(1000, 1000) || l.exceeded(1000, 10) {
			t.Errorf("ParseLimit(%q) = %+v: exceeded without growth", s, l)
		}
	})
}
