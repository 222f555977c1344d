package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/minikit/minikit/internal/atomicfile"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// reportRecipe is one recipe's row of the report: its catalog facts and
// what solving it produced.
func reportRecipe(r llbdefs.Recipe, res runner.Result) report.Recipe {
	row := report.Recipe{
		Name:           r.Name,
		Program:        r.Program(),
		Extra:          r.Extra,
		BuildImage:     llbdefs.ShortRef(r.BuildImage()),
		RunImage:       "scratch",
		Status:         string(res.Status),
		Expect:         string(r.Expect),
		Error:          res.Error,
		FailedVertex:   res.FailedVertex,
		StandIn:        res.StandIn,
		DurationMS:     res.Duration.Milliseconds(),
		Vertices:       res.Vertices,
		CachedVertices: res.Cached,
		Image:          res.Image,
	}
	if r.RunImage() != "" {
		row.RunImage = llbdefs.ShortRef(r.RunImage())
	}
	if res.Run != nil { // solve --test
		row.Run = &report.RunOutcome{ExitCode: res.Run.ExitCode, Expected: res.Run.Matches, Reason: res.Run.Reason}
	}
	return row
}

// machine describes where the figures were obtained.
func machine(addr string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %s/%s, %d CPUs, buildkitd at %s", host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), addr)
}

// finish prints the report, writes the HTML file, checks budgets and
// turns what did not go as expected into the exit status.
func (a app) finish(ctx context.Context, rep *report.Report, limits map[string]int64, format, html string, took time.Duration) error {
	violations := report.CheckBudgets(rep, limits)
	switch format {
	case "json":
		if err := report.WriteJSON(a.stdout, rep); err != nil {
			return err
		}
	default:
		if err := report.WriteTable(a.stdout, rep); err != nil {
			return err
		}
		if err := report.WriteRanking(a.stdout, rep); err != nil {
			return err
		}
	}
	if html != "" {
		if err := atomicfile.Write(html, 0o644, func(w io.Writer) error { return report.WriteHTML(w, rep) }); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(a.stderr, "report written to %s\n", html)
	}
	var ok, expected, unexpected, skipped int
	for _, r := range rep.Recipes {
		switch {
		case r.Status == report.StatusSkipped:
			skipped++
		case r.Unexpected():
			unexpected++
		case r.Status == report.StatusExpectedFailure:
			expected++
		default:
			ok++
		}
	}
	fmt.Fprintf(a.stderr, "%d ok, %d failed as expected, %d unexpected, %d skipped in %s\n",
		ok, expected, unexpected, skipped, took.Round(100*time.Millisecond))
	for _, v := range violations {
		fmt.Fprintf(a.stderr, "over budget: %s\n", v)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if n := unexpected + len(violations); n > 0 {
		return unexpectedError{n}
	}
	return nil
}
