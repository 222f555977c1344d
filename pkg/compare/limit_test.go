package compare

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limit
	}{
		{"5%", Limit{Relative: true, Percent: 5}},
		{" 2.5 % ", Limit{Relative: true, Percent: 2.5}},
		{"0%", Limit{Relative: true}},
		{".5%", Limit{Relative: true, Percent: 0.5}},
		{"200kB", Limit{Bytes: 200_000}},
		{"1MiB", Limit{Bytes: 1 << 20}},
		{"1500", Limit{Bytes: 1500}},
		{"0", Limit{}},
		{"hello-go.*=10%", Limit{Pattern: "hello-go.*", Relative: true, Percent: 10}},
		{" pyds.python = 1.5MB", Limit{Pattern: "pyds.python", Bytes: 1_500_000}},
	} {
		got, err := ParseLimit(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", "%", "-5%", "+5%", "5%%", "1e3%", "NaN%", "Inf%", "5.5.5%", "five%",
		"-200kB", "200xB", "=5%", " =5%", "a[=5%", "hello=", "a=b=5%",
	} {
		_, err := ParseLimit(in)
		if err == nil {
			t.Errorf("ParseLimit(%q) succeeded, want an error", in)
			continue
		}
		if !errors.Is(err, ErrBadLimit) {
			t.Errorf("ParseLimit(%q): error %v is not ErrBadLimit", in, err)
		}
	}
	// An out-of-range percentage is refused, not turned into +Inf.
	if _, err := ParseLimit(strings.Repeat("9", 400) + "%"); err == nil {
		t.Errorf("ParseLimit(400 nines%%) succeeded")
	}
}

func TestLimitString(t *testing.T) {
	for _, tc := range []struct {
		l    Limit
		want string
	}{
		{Limit{Relative: true, Percent: 5}, "5%"},
		{Limit{Relative: true, Percent: 0.25, Pattern: "a.*"}, "a.*=0.25%"},
		{Limit{Bytes: 200_000}, "200 kB"},
		{Limit{Bytes: 1 << 20}, "1048576"}, // "1.05 MB" would not read back exactly
		{Limit{Bytes: 0, Pattern: "x"}, "x=0 B"},
	} {
		if got := tc.l.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.l, got, tc.want)
		}
		back, err := ParseLimit(tc.l.String())
		if err != nil || back != tc.l {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", tc.l.String(), back, err, tc.l)
		}
	}
}

func TestExceeded(t *testing.T) {
	five := Limit{Relative: true, Percent: 5}
	abs := Limit{Bytes: 100}
	for _, tc := range []struct {
		l        Limit
		old, new int64
		want     bool
	}{
		{five, 1000, 1050, false}, // exactly the limit is allowed
		{five, 1000, 1051, true},
		{five, 1000, 900, false},
		{five, 0, 0, false},
		{five, 0, 1, true}, // from nothing: infinite growth
		{Limit{Relative: true}, 1000, 1001, true},
		{Limit{Relative: true}, 1000, 1000, false},
		{abs, 1000, 1100, false},
		{abs, 1000, 1101, true},
		{abs, 5000, 10, false},
	} {
		if got := tc.l.exceeded(tc.old, tc.new); got != tc.want {
			t.Errorf("%s: %d -> %d exceeded = %v, want %v", tc.l, tc.old, tc.new, got, tc.want)
		}
	}
}

func TestLimitsFor(t *testing.T) {
	must := func(s string) Limit {
		l, err := ParseLimit(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	limits := []Limit{must("5%"), must("1MB"), must("hello-go.*=20%"), must("hello-go.*.scratch=10%"), must("hello-go.golang=50%"), must("*=2MB")}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"hello-c.gcc", []string{"5%", "*=2.00 MB"}},                                 // glob beats no pattern, even when looser
		{"hello-go.golang.scratch", []string{"hello-go.*.scratch=10%", "*=2.00 MB"}}, // tightest glob
		{"hello-go.golang", []string{"hello-go.golang=50%", "*=2.00 MB"}},            // exact name beats any glob
	} {
		var got []string
		for _, l := range limitsFor(limits, tc.name) {
			got = append(got, l.String())
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("limitsFor(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := limitsFor(nil, "x"); len(got) != 0 {
		t.Errorf("limitsFor(nil) = %v", got)
	}
}

func TestCheckLimits(t *testing.T) {
	names := []string{"hello-c.gcc", "hello-go.golang"}
	ok := []Limit{{Relative: true, Percent: 5}, {Bytes: 10}, {Pattern: "hello-c.*", Relative: true, Percent: 1}, {Pattern: "hello-c.*", Bytes: 1}}
	if err := checkLimits("--max-growth", ok, names); err != nil {
		t.Errorf("checkLimits: %v", err)
	}
	for _, tc := range []struct {
		limits []Limit
		want   string
	}{
		{[]Limit{{Relative: true, Percent: 5}, {Relative: true, Percent: 6}}, "every recipe already has a relative limit (--max-growth 5%)"},
		{[]Limit{{Pattern: "a", Bytes: 5}, {Pattern: "a", Bytes: 6}}, `"a" matches none`},
		{[]Limit{{Pattern: "hello-go.*", Bytes: 5}, {Pattern: "hello-go.*", Bytes: 6}}, `"hello-go.*" already has an absolute limit`},
		{[]Limit{{Pattern: "hello-rust.*", Relative: true}}, `--max-growth hello-rust.*=0%: "hello-rust.*" matches none of the 2 recipe(s)`},
	} {
		err := checkLimits("--max-growth", tc.limits, names)
		if err == nil || !errors.Is(err, ErrBadLimit) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkLimits(%v) = %v, want ErrBadLimit with %q", tc.limits, err, tc.want)
		}
	}
}
