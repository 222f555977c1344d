package main

import (
	"strings"
	"testing"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// A --platform list that does not parse is a usage error, exit 2, before
// anything connects, on solve and test alike.
func TestPlatformFlagExitsTwo(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"linux/amd64,,linux/arm64", "an empty platform"},
		{"linux/amd64,", "an empty platform"},
		{"arm64", "want os/arch[/variant], such as linux/arm64"},
		{"linux/amd64,linux/amd64", "linux/amd64 given twice"},
		{"linux/arm64,linux/aarch64", "given twice"},
		{"linux/a b", `platform "linux/a b"`},
		{"linux/", "want os/arch"},
	} {
		for _, cmd := range []string{"solve", "test"} {
			t.Setenv("MINIKIT_HOME", t.TempDir())
			t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/minikit.sock")
			code, _, stderr := run(t, cmd, "--platform", tc.value, "hello-c.gcc")
			if code != exitUsage || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "--platform") {
				t.Errorf("%s --platform %q: exit %d, stderr %q; want exit 2 mentioning --platform and %q", cmd, tc.value, code, stderr, tc.want)
			}
		}
	}
}

func TestPlatformOption(t *testing.T) {
	for _, v := range []string{"", "  "} {
		if o, err := platformOption(v); o != nil || err != nil {
			t.Errorf("%q: %v, %v; want no option (the builder's platform)", v, o, err)
		}
	}
	for _, v := range []string{"linux/arm64", "linux/amd64,linux/arm64", " linux/amd64 , linux/arm/v7 "} {
		if o, err := platformOption(v); o == nil || err != nil {
			t.Errorf("%q: %v, %v; want an option", v, o, err)
		}
	}
}

// Results of a recipe built for two platforms become two rows, named
// with their platform, in the results' order; a single platform's row
// is as before.
func TestResultRowsPlatforms(t *testing.T) {
	recipes, err := llbdefs.Select(llbdefs.Catalog(), "hello-c.gcc-static.scratch", "hello-c.gcc.scratch")
	if err != nil {
		t.Fatal(err)
	}
	results := []runner.Result{
		{Name: "hello-c.gcc-static.scratch", Platform: "linux/amd64", Status: runner.StatusOK, ImageDigest: "sha256:i"},
		{Name: "hello-c.gcc-static.scratch", Platform: "linux/arm64", Status: runner.StatusOK, ImageDigest: "sha256:i"},
		{Name: "hello-c.gcc.scratch", Status: runner.StatusOK},
	}
	rows := map[string][]report.Recipe{"hello-c.gcc.scratch": {{Name: "stale"}}}
	seen := 0
	resultRows(rows, recipes, results, true, func(*report.Recipe, runner.Result) { seen++ })
	two := rows["hello-c.gcc-static.scratch"]
	if len(two) != 2 || two[0].Platform != "linux/amd64" || two[1].Platform != "linux/arm64" ||
		two[1].Label() != "hello-c.gcc-static.scratch (linux/arm64)" || two[0].Program != "hello-c" {
		t.Errorf("two platforms: %+v", two)
	}
	one := rows["hello-c.gcc.scratch"]
	if len(one) != 1 || one[0].Platform != "" || one[0].Label() != "hello-c.gcc.scratch" {
		t.Errorf("one platform: %+v", one)
	}
	if seen != 3 {
		t.Errorf("row hook called %d times, want 3", seen)
	}
}
