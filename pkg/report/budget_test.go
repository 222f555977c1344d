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
	name, n, err := ParseBudget("hello-go.*=2MiB")
	if err != nil || name != "hello-go.*" || n != 2<<20 {
		t.Errorf("got %q %d %v", name, n, err)
	}
	for in, msg := range map[string]string{
		"hello": "want NAME=SIZE", "=1MB": "no recipe name", "x=": "empty size", "x=0": "more than 0",
		"x=lots": "no number", "[=1MB": "bad glob",
	} {
		_, _, err := ParseBudget(in)
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseBudget(%q): error %v, want one naming the input and about %q", in, err, msg)
		}
	}
}

func TestCheckBudgets(t *testing.T) {
	img := func(n int64) *measure.Image { return &measure.Image{Uncompressed: n} }
	rep := &Report{Recipes: []Recipe{
		{Name: "hello-go.golang.scratch", Image: img(2_000_000)},
		{Name: "hello-go.golang.alpine", Image: img(9_000_000)},
		{Name: "hello-c.gcc.scratch", Image: img(800_000), Budget: 500_000},
		{Name: "hello-c.gcc.alpine", Image: img(800_000), Budget: 5_000_000},
		{Name: "hello-java.openjdk.scratch", Status: StatusFailed},
	}}
	got := CheckBudgets(rep, map[string]int64{
		"hello-go.*":              3_000_000,
		"hello-*":                 10_000_000, // looser: the stricter glob applies
		"hello-go.golang.scratch": 1_000_000,  // exact name wins
		"hello-java.*":            1,          // not built: no violation
		"[bad":                    1,
	})
	want := []Violation{
		{Recipe: "hello-go.golang.scratch", Pattern: "hello-go.golang.scratch", Budget: 1_000_000, Uncompressed: 2_000_000},
		{Recipe: "hello-go.golang.alpine", Pattern: "hello-go.*", Budget: 3_000_000, Uncompressed: 9_000_000},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("violation %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// No map: the recipes' own budgets.
	got = CheckBudgets(rep, nil)
	if len(got) != 1 || got[0].Recipe != "hello-c.gcc.scratch" || got[0].Pattern != "" {
		t.Errorf("own budgets: %+v", got)
	}
	if s := got[0].String(); s != "hello-c.gcc.scratch: 800 kB uncompressed, over its budget of 500 kB by 300 kB" {
		t.Errorf("String() = %q", s)
	}
	if CheckBudgets(nil, nil) != nil {
		t.Error("violations for a nil report")
	}
}

func TestUnmatchedBudgets(t *testing.T) {
	names := []string{"hello-go.golang.scratch", "hello-c.gcc"}
	got := UnmatchedBudgets(map[string]int64{
		"hello-go.golang.scratch": 1, // exact name
		"hello-c.*":               1, // glob
		"nosuch":                  1, // the typo the check is for
		"hello-rust.*":            1, // a glob matching no selected recipe
		"hello-c.gc":              1, // a prefix is not a match
	}, names)
	if want := []string{"hello-c.gc", "hello-rust.*", "nosuch"}; !slices.Equal(got, want) {
		t.Errorf("UnmatchedBudgets = %q, want %q", got, want)
	}
	if got := UnmatchedBudgets(map[string]int64{"hello-*": 1}, nil); !slices.Equal(got, []string{"hello-*"}) {
		t.Errorf("no recipes: %q, want every key", got)
	}
	if got := UnmatchedBudgets(nil, names); len(got) != 0 {
		t.Errorf("no budgets: %q", got)
	}
}
