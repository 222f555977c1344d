package report

import (
	"slices"
	"strings"
	"testing"

	"github.com/minikit/minikit/pkg/measure"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "123": 123, "1.5MB": 1_500_000, "20kB": 20_000, "20KB": 20_000, "20 kb": 20_000, "2MiB": 2 << 20,
		"1GiB": 1 << 30, "1.5 GB": 1_500_000_000, "3k": 3000, "512B": 512, "0.5KiB": 512, " 7 ": 7, "1.5": 2,
		"1.00 PB": 1e15, "2EiB": 2 << 60,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"": "empty", "MB": "no number", "-5": "no number", "12XB": "unknown unit", "1.2.3MB": "bad number",
		"99999999999999999999": "out of range", "99999999999TB": "too large", "9.3EB": "too large", "5 M B": "unknown unit",
	} {
		_, err := ParseBytes(in)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseBytes(%q): error %v, want one about %q", in, err, msg)
		}
	}
}

func TestParseBudget(t *testing.T) {
	got, err := ParseBudget("hello-go.*=2MiB")
	if err != nil || !slices.Equal(got, []Budget{{Pattern: "hello-go.*", Metric: Uncompressed, Limit: 2 << 20}}) {
		t.Errorf("got %+v %v", got, err)
	}
	got, err = ParseBudget("hello-go.*=compressed=1MB, wasted=0,dive-wasted=20MB,dive-efficiency=95%,dive-user-wasted=0.1,3MB")
	want := []Budget{
		{"hello-go.*", Compressed, 1e6}, {"hello-go.*", Wasted, 0}, {"hello-go.*", DiveWasted, 20e6},
		{"hello-go.*", DiveEfficiency, 0.95}, {"hello-go.*", DiveUserWasted, 0.1}, {"hello-go.*", Uncompressed, 3e6},
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("every metric: got %+v %v\nwant %+v", got, err, want)
	}
	for in, msg := range map[string]string{
		"hello": "want NAME=LIMIT", "=1MB": "no recipe name", "x=": "empty size", "x=0": "more than 0",
		"x=lots": "no number", "[=1MB": "bad glob", "x=compressed=0": "more than 0", "x=size=1MB": "unknown metric",
		"x=1MB,uncompressed=2MB": "given twice", "x=dive-efficiency=1.5": "at most 1", "x=dive-user-wasted=-1": "want a fraction", "x=dive-user-wasted=101%": "at most 1",
		"x=dive-efficiency=": "want a fraction", "x=wasted=1MB,": "empty size", "x=wasted=1EiB": "too large",
	} {
		_, err := ParseBudget(in)
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseBudget(%q): error %v, want one naming the input and about %q", in, err, msg)
		}
	}
}

func TestCheckBudgets(t *testing.T) {
	img := func(n int64) *measure.Image { return &measure.Image{Uncompressed: n, DiveEfficiency: 1} }
	rep := &Report{Recipes: []Recipe{
		{Name: "hello-go.golang.scratch", Image: img(2_000_000)},
		{Name: "hello-go.golang.alpine", Image: img(9_000_000)},
		{Name: "hello-c.gcc.scratch", Image: img(800_000), Budget: 500_000},
		{Name: "hello-c.gcc.alpine", Image: img(800_000), Budget: 5_000_000},
		{Name: "hello-java.openjdk.scratch", Status: StatusFailed},
	}}
	got := CheckBudgets(rep, []Budget{
		{"hello-go.*", Uncompressed, 3_000_000},
		{"hello-*", Uncompressed, 10_000_000},                // looser: the stricter glob applies
		{"hello-go.golang.scratch", Uncompressed, 1_000_000}, // exact name wins
		{"hello-java.*", Uncompressed, 1},                    // not built: no violation
		{"[bad", Uncompressed, 1},
	})
	want := []Violation{
		{Recipe: "hello-go.golang.scratch", Pattern: "hello-go.golang.scratch", Metric: Uncompressed, Limit: 1_000_000, Value: 2_000_000},
		{Recipe: "hello-go.golang.alpine", Pattern: "hello-go.*", Metric: Uncompressed, Limit: 3_000_000, Value: 9_000_000},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// No budgets: the recipes' own.
	got = CheckBudgets(rep, nil)
	if len(got) != 1 || got[0].Recipe != "hello-c.gcc.scratch" || got[0].Pattern != "" {
		t.Errorf("own budgets: %+v", got)
	}
	if s := got[0].String(); s != "hello-c.gcc.scratch: uncompressed 800 kB, over its budget of 500 kB by 300 kB" {
		t.Errorf("String() = %q", s)
	}
	if CheckBudgets(nil, nil) != nil {
		t.Error("violations for a nil report")
	}
}

// Every metric reads its own figure; efficiency is a floor, the others
// ceilings, and an exact name beats a stricter glob for each metric apart.
func TestCheckBudgetsMetrics(t *testing.T) {
	im := &measure.Image{Uncompressed: 1000, Compressed: 400, WastedBytes: 50, DiveWastedBytes: 120, DiveEfficiency: 0.8, DiveUserWastedRatio: 0.25}
	rep := &Report{Recipes: []Recipe{{Name: "a.b", Image: im}}}
	for _, tc := range []struct {
		budgets []Budget
		want    []Metric
	}{
		{[]Budget{{"a.*", Compressed, 400}, {"a.*", Wasted, 50}, {"a.*", DiveWasted, 120}, {"a.*", DiveEfficiency, 0.8}, {"a.*", DiveUserWasted, 0.25}}, nil},
		{[]Budget{{"a.*", Compressed, 399}, {"a.*", Wasted, 49}, {"a.*", DiveWasted, 119}, {"a.*", DiveEfficiency, 0.81}, {"a.*", DiveUserWasted, 0.24}},
			[]Metric{Compressed, Wasted, DiveWasted, DiveEfficiency, DiveUserWasted}},
		{[]Budget{{"a.*", DiveEfficiency, 0.9}, {"*", DiveEfficiency, 0.5}}, []Metric{DiveEfficiency}}, // the stricter floor is the higher
		{[]Budget{{"a.*", DiveEfficiency, 0.9}, {"a.b", DiveEfficiency, 0.5}}, nil},                    // the exact name wins
		{[]Budget{{"a.b", Compressed, 1e6}, {"a.*", Wasted, 0}}, []Metric{Wasted}},                     // an exact compressed budget leaves wasted to the glob
	} {
		var got []Metric
		for _, v := range CheckBudgets(rep, tc.budgets) {
			got = append(got, v.Metric)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("budgets %+v: violated %v, want %v", tc.budgets, got, tc.want)
		}
	}
	v := CheckBudgets(rep, []Budget{{"a.*", DiveEfficiency, 0.9}})[0]
	if s := v.String(); s != "a.b: dive-efficiency 0.8, under its budget's lowest of 0.9 (a.*)" {
		t.Errorf("String() = %q", s)
	}
	v = CheckBudgets(rep, []Budget{{"a.b", Compressed, 300}})[0]
	if s := v.String(); s != "a.b: compressed 400 B, over its budget of 300 B by 100 B" {
		t.Errorf("String() = %q", s)
	}
}

func TestUnmatchedBudgets(t *testing.T) {
	names := []string{"hello-go.golang.scratch", "hello-c.gcc"}
	b := func(keys ...string) []Budget {
		var out []Budget
		for _, k := range keys {
			out = append(out, Budget{k, Uncompressed, 1}, Budget{k, Compressed, 1})
		}
		return out
	}
	got := UnmatchedBudgets(b(
		"hello-go.golang.scratch", // exact name
		"hello-c.*",               // glob
		"nosuch",                  // the typo the check is for
		"hello-rust.*",            // a glob matching no selected recipe
		"hello-c.gc",              // a prefix is not a match
	), names)
	if want := []string{"hello-c.gc", "hello-rust.*", "nosuch"}; !slices.Equal(got, want) {
		t.Errorf("UnmatchedBudgets = %q, want %q", got, want)
	}
	if got := UnmatchedBudgets(b("hello-*"), nil); !slices.Equal(got, []string{"hello-*"}) {
		t.Errorf("no recipes: %q, want every key once", got)
	}
	if got := UnmatchedBudgets(nil, names); len(got) != 0 {
		t.Errorf("no budgets: %q", got)
	}
}
