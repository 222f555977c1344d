package explore

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/minikit/minikit/pkg/diagnose"
	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// fakeRun is what the runner would say of a candidate.
type fakeRun struct {
	size    int64 // 0: not built
	works   bool
	kind    diagnose.Kind
	reason  string
	buildEr string
}

// fakeResult builds a Result for the Go test program's candidates on
// scratch and alpine, with the runner's outcomes given by name.
func fakeResult(t *testing.T, runs map[string]fakeRun) *Result {
	t.Helper()
	p := testProgram(t, Go)
	pl, err := NewPlan(p, WithBases(BaseScratch, BaseAlpine))
	if err != nil {
		t.Fatal(err)
	}
	f := KnownFacts(p)
	res := &Result{Program: p, Plan: pl, Facts: f, Candidates: pl.Candidates(f)}
	for _, v := range pl.Variants {
		res.Variants = append(res.Variants, VariantOutcome{Name: v.Name, Flags: v.Flags, Image: v.Image, ExeBytes: map[string]int64{"go": 2_000_000, "go-nocgo": 1_900_000, "go-strip": 1_400_000, "go-static": 1_300_000}[v.Name]})
	}
	for _, cd := range res.Candidates {
		fr, ok := runs[cd.Name]
		if !ok {
			t.Fatalf("no outcome for %s", cd.Name)
		}
		r := runner.Result{Name: cd.Name, Status: runner.StatusOK}
		switch {
		case fr.buildEr != "":
			r.Status, r.Err = runner.StatusFailed, errors.New(fr.buildEr)
			r.Error = fr.buildEr
			r.FailedLog = []string{"main.go:6:2: no required module provides package x", ""}
		default:
			r.Image = &measure.Image{Uncompressed: fr.size, Compressed: fr.size / 2, FileBytes: fr.size - 1000}
			r.Run = &runner.RunOutcome{Matches: fr.works, Kind: fr.kind, Reason: fr.reason, Expected: "0"}
			if fr.works {
				r.Run.Kind, r.Run.Reason = diagnose.OK, "ok"
			} else {
				r.Run.ExitCode = 127
			}
		}
		res.Results = append(res.Results, r)
	}
	res.Report = newReport(res, runner.Check{}, true)
	res.Winner = winner(res)
	for _, v := range res.Variants {
		if cd, ok := res.WinnerCandidate(); ok && v.Name == cd.Variant {
			res.WinnerExeBytes = v.ExeBytes
		}
	}
	res.Report.Ranking = rank(res)
	return res
}

func TestWinnerRankAndText(t *testing.T) {
	loader := "dynamic binary, but the image has no /lib64/ld-linux-x86-64.so.2 (glibc loader)"
	res := fakeResult(t, map[string]fakeRun{
		"app.go.scratch":              {size: 2_001_000, kind: diagnose.MissingLoader, reason: loader},
		"app.go.alpine":               {size: 10_000_000, kind: diagnose.MissingLoader, reason: loader},
		"app.go-nocgo.scratch":        {size: 1_901_000, works: true},
		"app.go-nocgo.alpine":         {size: 9_900_000, works: true},
		"app.go-strip.scratch":        {buildEr: "process \"/bin/sh -c go build\" did not complete successfully: exit code: 1"},
		"app.go-strip.alpine":         {buildEr: "process \"/bin/sh -c go build\" did not complete successfully: exit code: 1"},
		"app.go-static.scratch":       {size: 1_301_500, works: true},
		"app.go-static.alpine":        {size: 9_300_000, works: true},
		"app.go-static.scratch-shell": {size: 1_301_500, kind: diagnose.NoShell, reason: "shell-form CMD (/app) but no /bin/sh in the image"},
	})
	if res.Winner != "app.go-static.scratch" {
		t.Fatalf("winner %q, want app.go-static.scratch", res.Winner)
	}
	if res.WinnerExeBytes != 1_300_000 {
		t.Errorf("winner's executable %d, want its variant's 1300000", res.WinnerExeBytes)
	}
	if len(res.Report.Ranking) != 1 {
		t.Fatalf("ranking %+v", res.Report.Ranking)
	}
	rk := res.Report.Ranking[0]
	if rk.Smallest != res.Winner || rk.FloorBytes != 1_300_000 || len(rk.Entries) != 4 {
		t.Errorf("ranking %+v", rk)
	}
	for i := 1; i < len(rk.Entries); i++ {
		if rk.Entries[i-1].Uncompressed > rk.Entries[i].Uncompressed {
			t.Errorf("entries not sorted: %+v", rk.Entries)
		}
	}
	if r := rk.Entries[0].Ratio; r < 1.001 || r > 1.002 {
		t.Errorf("winner's ratio %f, want 1301500/1300000", r)
	}
	var row report.Recipe
	for _, r := range res.Report.Recipes {
		if r.Name == "app.go.scratch" {
			row = r
		}
	}
	if row.Run == nil || row.Run.Expected || row.Run.ExitCode != 127 || row.Program != "app" || row.BuildImage != "golang:1.26-bookworm" || row.RunImage != "scratch" {
		t.Errorf("row of app.go.scratch: %+v (run %+v)", row, row.Run)
	}

	var b bytes.Buffer
	if err := WriteText(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	idx := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Errorf("no line starting with %q in:\n%s", prefix, out)
		return -1
	}
	if !regexp.MustCompile(`(?m)^go-static\s+golang:1\.26-bookworm\s+1\.30 MB\s+CGO_ENABLED=0`).MatchString(out) {
		t.Errorf("no line for the go-static variant and its executable:\n%s", out)
	}
	// Working first by size, then the failing ones that built, then
	// those that did not build.
	order := []int{idx("app.go-static.scratch "), idx("app.go-nocgo.scratch "), idx("app.go-static.alpine "), idx("app.go-nocgo.alpine "),
		idx("app.go-static.scratch-shell "), idx("app.go.scratch "), idx("app.go.alpine "), idx("app.go-strip.alpine "), idx("app.go-strip.scratch ")}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Errorf("candidate lines out of order (%v):\n%s", order, out)
			break
		}
	}
	for _, want := range []string{
		"app: a Go module (go.mod, main.go)",
		"build failed: main.go:6:2: no required module provides package x",
		"shell-form CMD (/app) but no /bin/sh",
		"smallest working image: app.go-static.scratch, 1,301,500 B uncompressed (651 kB compressed), 1.00x its executable (1,300,000 B)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestNoWinner(t *testing.T) {
	fail := fakeRun{size: 100, kind: diagnose.Exited, reason: "exited with code 1"}
	res := fakeResult(t, map[string]fakeRun{
		"app.go.scratch": fail, "app.go.alpine": fail, "app.go-nocgo.scratch": fail, "app.go-nocgo.alpine": fail,
		"app.go-strip.scratch": fail, "app.go-strip.alpine": fail, "app.go-static.scratch": fail, "app.go-static.alpine": fail,
		"app.go-static.scratch-shell": fail,
	})
	if res.Winner != "" || res.Report.Ranking != nil {
		t.Errorf("winner %q, ranking %+v: want none", res.Winner, res.Report.Ranking)
	}
	var b bytes.Buffer
	if err := WriteText(&b, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no candidate works (9 tried)") {
		t.Errorf("output:\n%s", b.String())
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1612800: "1,612,800", -12345: "-12,345"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}
