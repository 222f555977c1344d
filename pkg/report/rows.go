package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/runner"
)

// StandInLabel marks a stand-in base image (value "true") in its config:
// minikit's offline stand-ins carry it (internal/standin).
const StandInLabel = "org.minikit.stand-in"

// StandInImages lists the images of bases that are stand-ins (labelled
// StandInLabel=true), in order.
func StandInImages(bases []runner.BaseImage) []string {
	var out []string
	for _, b := range bases {
		if b.Labels[StandInLabel] == "true" {
			out = append(out, b.Ref)
		}
	}
	return out
}

// RecipeRow is one recipe's row of a report: its catalog facts and what
// solving it produced (res, the zero Result for a recipe not built).
// standIns says the run was on the offline stand-ins, where a partial
// recipe's stand-in differs from upstream (StandInDiffers).
func RecipeRow(r llbdefs.Recipe, res runner.Result, standIns bool) Recipe {
	row := Recipe{
		Name:           r.Name,
		Platform:       res.Platform,
		Program:        r.Program(),
		Extra:          r.Extra,
		BuildImage:     llbdefs.ShortRef(r.BuildImage()),
		RunImage:       "scratch",
		Status:         string(res.Status),
		Expect:         string(r.Expect),
		Error:          res.Error,
		FailedVertex:   res.FailedVertex,
		ImageName:      res.ImageName,
		StandInImages:  StandInImages(res.Bases),
		DurationMS:     res.Duration.Milliseconds(),
		Vertices:       res.Vertices,
		CachedVertices: res.Cached,
		Timings:        res.Profile,
		Image:          res.Image,
		Builder:        res.Builder,
		RetriedFrom:    res.RetriedFrom,
	}
	row.StandIn = len(row.StandInImages) > 0
	if r.RunImage() != "" {
		row.RunImage = llbdefs.ShortRef(r.RunImage())
	}
	if standIns && r.StandIn == llbdefs.Partial {
		row.StandInDiffers = r.Offline
	}
	row.Run = RunOutcomeOf(res.Run)
	return row
}

// RunOutcomeOf is the report's form of a runner's run outcome (nil for
// none).
func RunOutcomeOf(o *runner.RunOutcome) *RunOutcome {
	if o == nil {
		return nil
	}
	return &RunOutcome{
		ExitCode: o.ExitCode, Expected: o.Matches, Reason: o.Reason,
		Kind: string(o.Kind), Want: o.Expected, Network: o.Network, TimedOut: o.TimedOut,
		DurationMS: o.Duration.Milliseconds(), StdoutTail: o.StdoutTail, StderrTail: o.StderrTail,
	}
}

// SkippedRow is the row of a recipe not attempted, and why.
func SkippedRow(r llbdefs.Recipe, why string, standIns bool) Recipe {
	row := RecipeRow(r, runner.Result{}, standIns)
	row.Status, row.Error = StatusSkipped, why
	return row
}

// Summary counts a report's rows by how they ended.
type Summary struct {
	OK         int // built (and, when run, ran) as expected
	Expected   int // failed to build, as expected
	Unexpected int // calls for attention (Recipe.Unexpected)
	Skipped    int
}

// Summarize counts the report's rows.
func Summarize(rep *Report) Summary {
	var s Summary
	for _, r := range rep.Recipes {
		switch {
		case r.Status == StatusSkipped:
			s.Skipped++
		case r.Unexpected():
			s.Unexpected++
		case r.Status == StatusExpectedFailure:
			s.Expected++
		default:
			s.OK++
		}
	}
	return s
}

// WriteTestTable writes what `minikit test` shows: per recipe what was
// expected, what it got, whether that is as expected, how long the run
// took and why, then the counts; took is the run's wall time.
func WriteTestTable(w io.Writer, rep *Report, took time.Duration) error {
	if err := checkReport(rep); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPE\tEXPECT\tGOT\tRESULT\tRUN\tREASON")
	for _, row := range rep.Recipes {
		verdict, got, reason := testVerdict(row)
		if row.StandInDiffers != "" {
			reason = strings.TrimPrefix(reason+"; partial stand-in: "+row.StandInDiffers, "; ")
		}
		dur := "-"
		if row.Run != nil {
			dur = (time.Duration(row.Run.DurationMS) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Label(), row.Expect, got, verdict, dur, reason)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	s := Summarize(rep)
	_, err := fmt.Fprintf(w, "%d as expected, %d unexpected, %d skipped in %s\n", s.OK+s.Expected, s.Unexpected, s.Skipped, took.Round(100*time.Millisecond))
	return err
}

// testVerdict is one row's result word, what it got and why.
func testVerdict(row Recipe) (verdict, got, reason string) {
	switch {
	case row.Status == StatusSkipped:
		return "skipped", "-", row.Error
	case row.Run != nil:
		got = fmt.Sprint(row.Run.ExitCode)
		if row.Run.TimedOut {
			got = "timeout"
		}
		verdict = "as-expected"
		if row.Unexpected() {
			verdict = "UNEXPECTED"
		}
		return verdict, got, row.Run.Reason
	case row.Status == StatusExpectedFailure:
		return "as-expected", "build", "build failed: " + firstLine(row.Error, 160)
	default:
		return "UNEXPECTED", row.Status, firstLine(row.Error, 160)
	}
}
