package report

import (
	"math"
	"path"
	"slices"
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

// FuzzParseBudget: a budget that parses gives one Budget per limit, all
// with the same trimmed, non-empty name that is a valid glob with no '=',
// known metrics each once, limits of 0 or more (sizes above 0 for
// uncompressed and compressed, ratios at most 1); written back as
// NAME=METRIC=VALUE,... it gives the same budgets. An error names the
// input. Seeds: testdata/fuzz/FuzzParseBudget.
func FuzzParseBudget(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		budgets, err := ParseBudget(s)
		if err != nil {
			if budgets != nil {
				t.Errorf("ParseBudget(%q) = %+v with error %v", s, budgets, err)
			}
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Errorf("ParseBudget(%q): error %q does not name the input", s, err)
			}
			return
		}
		if len(budgets) == 0 {
			t.Fatalf("ParseBudget(%q): no budgets and no error", s)
		}
		name := budgets[0].Pattern
		if name == "" || name != strings.TrimSpace(name) || strings.Contains(name, "=") {
			t.Fatalf("ParseBudget(%q): name %q", s, name)
		}
		if _, err := path.Match(name, "hello-c.gcc"); err != nil {
			t.Errorf("ParseBudget(%q): name %q is not a valid glob: %v", s, name, err)
		}
		if !budgetApplies(name, name) {
			t.Errorf("ParseBudget(%q): name %q does not apply to a recipe of that name", s, name)
		}
		seen := map[Metric]bool{}
		var parts []string
		for _, b := range budgets {
			switch {
			case b.Pattern != name:
				t.Fatalf("ParseBudget(%q): names %q and %q", s, name, b.Pattern)
			case !slices.Contains(Metrics, b.Metric) || seen[b.Metric]:
				t.Fatalf("ParseBudget(%q): metric %q unknown or twice", s, b.Metric)
			case b.Limit < 0 || math.IsNaN(b.Limit) || math.IsInf(b.Limit, 0):
				t.Fatalf("ParseBudget(%q): limit %v", s, b.Limit)
			case b.Limit == 0 && (b.Metric == Uncompressed || b.Metric == Compressed):
				t.Fatalf("ParseBudget(%q): a %s budget of 0", s, b.Metric)
			case b.Metric.IsRatio() && b.Limit > 1:
				t.Fatalf("ParseBudget(%q): efficiency %v", s, b.Limit)
			case !b.Metric.IsRatio() && b.Limit != math.Trunc(b.Limit):
				t.Fatalf("ParseBudget(%q): %s of %v bytes", s, b.Metric, b.Limit)
			}
			seen[b.Metric] = true
			parts = append(parts, string(b.Metric)+"="+strconv.FormatFloat(b.Limit, 'f', -1, 64))
		}
		again := name + "=" + strings.Join(parts, ",")
		if back, err := ParseBudget(again); err != nil || !slices.Equal(back, budgets) {
			t.Errorf("ParseBudget(%q) = %+v; written back, %q gives %+v, %v", s, budgets, again, back, err)
		}
	})
}
