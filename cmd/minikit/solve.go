package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/runner"
	"github.com/minikit/minikit/samples"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// solveRow is one recipe in the summary: the runner's result, or why the
// recipe was not built.
type solveRow struct {
	runner.Result
	Expect  string `json:"expect"`
	Skipped string `json:"skipped,omitempty"`
}

// solveDoc is what `minikit solve --format json` prints.
type solveDoc struct {
	Daemon   string     `json:"daemon"`
	StandIns bool       `json:"stand_ins"`
	Recipes  []solveRow `json:"recipes"`
	Summary  struct {
		OK               int `json:"ok"`
		ExpectedFailures int `json:"expected_failures"`
		Unexpected       int `json:"unexpected"`
		Skipped          int `json:"skipped"`
	} `json:"summary"`
}

func (a app) solve(ctx context.Context, args []string) error {
	fs := a.flags("solve", "[flags] --all | NAME|GLOB...")
	all := fs.Bool("all", false, "solve every recipe (on stand-ins: every recipe they can reproduce)")
	parallel := fs.Int("parallel", runtime.NumCPU()*2, "recipes solved at once")
	var outputs multiFlag
	fs.Var(&outputs, "output", "where images go, repeatable: image (buildkitd's store, the default), oci=DIR, docker=DIR")
	progress := fs.String("progress", "auto", "progress display: auto, tty, plain, quiet, rawjson")
	format := fs.String("format", "table", "summary format: table or json")
	addr := fs.String("addr", "", "buildkitd address (unix://, tcp://, docker-container://NAME, ...); default $BUILDKIT_HOST, else minikit's private daemon")
	samplesDir := fs.String("samples", "", "directory of sample programs (default: the ones built into minikit)")
	if err := parse(fs, args); err != nil {
		return err
	}
	recipes, err := selectRecipes(*all, fs.Args())
	if err != nil {
		return err
	}
	if *parallel < 1 {
		return usagef("--parallel must be at least 1, not %d", *parallel)
	}
	if *format != "table" && *format != "json" {
		return usagef("--format must be table or json, not %q", *format)
	}
	switch *progress {
	case "auto", "tty", "plain", "quiet", "rawjson":
	default:
		return usagef("--progress must be auto, tty, plain, quiet or rawjson, not %q", *progress)
	}
	opts := []runner.Option{runner.Parallel(*parallel), runner.Progress(a.stderr, *progress)}
	for _, o := range outputs {
		e, err := runner.ParseOutput(o)
		if err != nil {
			return usageError{err}
		}
		opts = append(opts, runner.Exports(e))
	}

	home, err := paths.Default()
	if err != nil {
		return err
	}
	dir := *samplesDir
	if dir == "" {
		if dir, err = samples.WriteTo(home.Samples()); err != nil {
			return err
		}
	}
	opts = append(opts, runner.SamplesDir(dir))

	conn, err := connect.Open(ctx, connect.Options{Addr: *addr, Home: home, Log: a.stderr})
	if err != nil {
		return err
	}
	defer conn.Close()

	doc := solveDoc{Daemon: conn.Addr, StandIns: conn.StandIns}
	var build []llbdefs.Recipe
	for _, r := range recipes {
		if *all && conn.StandIns && r.StandIn != llbdefs.Offline {
			doc.Recipes = append(doc.Recipes, solveRow{
				Result:  runner.Result{Name: r.Name},
				Expect:  string(r.Expect),
				Skipped: "no stand-in: needs " + needs(r),
			})
			continue
		}
		build = append(build, r)
	}
	if conn.StandIns {
		fmt.Fprintf(a.stderr, "docker.io images come from the offline stand-ins (minikit standins list): results are stand-in results\n")
	}
	fmt.Fprintf(a.stderr, "solving %d recipe(s) on %s, %d at a time\n", len(build), conn.Addr, *parallel)
	start := time.Now()
	results, err := runner.Solve(ctx, conn.Client, build, opts...)
	if err != nil {
		return err
	}
	for i, res := range results {
		doc.Recipes = append(doc.Recipes, solveRow{Result: res, Expect: string(build[i].Expect)})
	}
	sortRows(doc.Recipes, recipes)
	for _, row := range doc.Recipes {
		switch {
		case row.Skipped != "":
			doc.Summary.Skipped++
		case row.Unexpected():
			doc.Summary.Unexpected++
		case row.Status == runner.StatusExpectedFailure:
			doc.Summary.ExpectedFailures++
		default:
			doc.Summary.OK++
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else if err := printSolveTable(a.stdout, doc, time.Since(start)); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if doc.Summary.Unexpected > 0 {
		return unexpectedError{doc.Summary.Unexpected}
	}
	return nil
}

// selectRecipes turns --all or names/globs into recipes.
func selectRecipes(all bool, names []string) ([]llbdefs.Recipe, error) {
	switch {
	case all && len(names) > 0:
		return nil, usagef("give --all or recipe names, not both")
	case all:
		return llbdefs.Catalog(), nil
	case len(names) == 0:
		return nil, usagef("name the recipes to solve (NAME or GLOB, e.g. 'hello-go.*'), or --all")
	}
	rs, err := llbdefs.Select(llbdefs.Catalog(), names...)
	if err != nil {
		return nil, usageError{err}
	}
	return rs, nil
}

// needs says what keeps a recipe from being built offline.
func needs(r llbdefs.Recipe) string {
	if r.StandIn == llbdefs.Partial {
		return "images with no stand-in yet (" + strings.Join(shortRefs(r.Images()), ", ") + ")"
	}
	return "the internet (package index or image that cannot be recreated offline)"
}

func shortRefs(refs []string) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = llbdefs.ShortRef(r)
	}
	return out
}

// sortRows puts rows in catalog order.
func sortRows(rows []solveRow, order []llbdefs.Recipe) {
	pos := map[string]int{}
	for i, r := range order {
		pos[r.Name] = i
	}
	sorted := make([]solveRow, len(rows))
	copy(sorted, rows)
	for _, r := range rows {
		sorted[pos[r.Name]] = r
	}
	copy(rows, sorted)
}

func printSolveTable(w io.Writer, doc solveDoc, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPE\tRESULT\tEXPECT\tTIME\tCACHED\tDETAIL")
	for _, row := range doc.Recipes {
		result, detail := string(row.Status), ""
		switch {
		case row.Skipped != "":
			result, detail = "skipped", row.Skipped
		case row.Status == runner.StatusExpectedFailure:
			result, detail = "failed-as-expected", firstLine(row.Error)
		case row.Status == runner.StatusFailed, row.Status == runner.StatusCanceled:
			detail = firstLine(row.Error)
			if row.FailedVertex != "" {
				detail = row.FailedVertex + ": " + detail
			}
		case row.StandIn:
			detail = "stand-in"
		}
		dur := "-"
		if row.Duration > 0 {
			dur = row.Duration.Round(100 * time.Millisecond).String()
		}
		cached := "-"
		if row.Vertices > 0 {
			cached = fmt.Sprintf("%d/%d", row.Cached, row.Vertices)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, result, row.Expect, dur, cached, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := doc.Summary
	_, err := fmt.Fprintf(w, "%d ok, %d failed as expected, %d unexpected, %d skipped in %s\n",
		s.OK, s.ExpectedFailures, s.Unexpected, s.Skipped, took.Round(100*time.Millisecond))
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
