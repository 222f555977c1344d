package explore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// Options says how Explore builds, runs and reports.
type Options struct {
	// Check is the run every candidate must pass (runner.Check): its
	// Args, Env, Network, ExpectExit, ExpectOutput or Probe.
	Check runner.Check
	// Plan selects run bases and the like (NewPlan's options).
	Plan []PlanOption
	// Parallel is how many candidates are built and run at once (0:
	// runner.DefaultParallel).
	Parallel int
	// Progress shows BuildKit's progress display on ProgressOut, in mode
	// (auto, tty, plain, quiet, rawjson; "" is quiet).
	ProgressOut  io.Writer
	ProgressMode string
	// RunTimeout bounds each run that is not a probe (0:
	// runner.DefaultRunTimeout).
	RunTimeout time.Duration
	// NetworkEnv is added to the environment of runs on the host network
	// (runner.TestOptions.NetworkEnv).
	NetworkEnv []string
	// Outputs are where the winner's image goes (runner.Export); none:
	// it stays in BuildKit's cache only.
	Outputs []runner.Export
	// MeasureCache is a directory of measurements kept between runs
	// (runner.MeasureCache); "" measures every image.
	MeasureCache string
	// StandIns says the daemon pulls the offline stand-ins: the report
	// says so.
	StandIns bool
	// Log, if set, gets a line per phase (what is being built).
	Log io.Writer
}

// A Result is what Explore found.
type Result struct {
	Program Program `json:"program"`
	Plan    Plan    `json:"plan"`
	// Facts are what the run bases hold and what the program needs, as
	// read in the first solve.
	Facts Facts `json:"facts"`
	// Variants are the build variants' outcomes, in plan order.
	Variants []VariantOutcome `json:"variants"`
	// Candidates are every image built and run, in plan order.
	Candidates []Candidate `json:"candidates"`
	// Results are the runner's results, one per candidate, in order.
	Results []runner.Result `json:"-"`
	// Report is the same document `minikit solve` writes: one row per
	// candidate and the ranking of the working ones.
	Report *report.Report `json:"report"`
	// Winner is the smallest working candidate ("" when none works), its
	// Dockerfile, and the size of its program's own executable (0 when
	// the variant makes none: an interpreted program).
	Winner         string `json:"winner,omitempty"`
	Dockerfile     string `json:"dockerfile,omitempty"`
	WinnerExeBytes int64  `json:"winner_exe_bytes,omitempty"`
	// Outputs are the winner's tarballs written (Options.Outputs).
	Outputs []string `json:"outputs,omitempty"`
	// Duration is the whole run's wall time.
	Duration time.Duration `json:"duration_ns"`
}

// VariantOutcome is how building one variant went in the first solve.
type VariantOutcome struct {
	Name  string `json:"name"`
	Flags string `json:"flags"`
	Image string `json:"image"`
	// ExeBytes is the size of the executable the variant made (native
	// variants only).
	ExeBytes int64 `json:"exe_bytes,omitempty"`
	// Error is the build's error ("" when it built); Err the error itself.
	Error        string   `json:"error,omitempty"`
	Err          error    `json:"-"`
	FailedVertex string   `json:"failed_vertex,omitempty"`
	FailedLog    []string `json:"failed_log,omitempty"`
}

// WinnerCandidate returns the winner's candidate, ok false when none works.
func (r *Result) WinnerCandidate() (Candidate, bool) {
	for _, c := range r.Candidates {
		if c.Name == r.Winner {
			return c, true
		}
	}
	return Candidate{}, false
}

// ContextFS is the program's directory as the builds read it: every file
// owned by root, .git left out (a Go build would stamp VCS information
// it cannot read without git).
func ContextFS(dir string) (fsutil.FS, error) {
	fs, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, fmt.Errorf("explore: context %s: %w", dir, err)
	}
	fs, err = fsutil.NewFilterFS(fs, &fsutil.FilterOpt{
		ExcludePatterns: []string{".git"},
		Map: func(_ string, st *fstypes.Stat) fsutil.MapResult {
			st.Uid, st.Gid = 0, 0
			return fsutil.MapResultKeep
		},
	})
	if err != nil {
		return nil, fmt.Errorf("explore: context %s: %w", dir, err)
	}
	return fs, nil
}

// Explore builds every candidate image of p with c, runs each with the
// check, and ranks them. It works in three solves: a first one builds
// every build variant once (each shared by all its run bases), reads
// what the run bases hold and what the program needs (see needs.go);
// the second builds the candidates' images from those stages (found in
// the cache), measures and runs them, in parallel; a third, only with
// Outputs, exports the winner. A variant that fails to build gives each
// of its candidates a failed result with the build's error; nothing
// stops the others. The error is for setup problems (options, the
// daemon) and cancellation before anything was built.
func Explore(ctx context.Context, c *client.Client, p Program, o Options) (*Result, error) {
	start := time.Now()
	if c == nil {
		return nil, errors.New("explore: no BuildKit client")
	}
	if o.Check.ExpectOutput != nil && o.Check.Probe != nil {
		return nil, errors.New("explore: a probe checks a server's answer, not its output: give one of them")
	}
	pl, err := NewPlan(p, o.Plan...)
	if err != nil {
		return nil, err
	}
	fsys, err := ContextFS(p.Dir)
	if err != nil {
		return nil, err
	}
	platform, err := builderPlatform(ctx, c)
	if err != nil {
		return nil, err
	}
	logf(o.Log, "%s: %s (%d build variants); first solve: the variants, the run bases, what the program needs", p.Dir, kindName(p.Kind), len(pl.Variants))
	prep, err := prepare(ctx, c, pl, fsys, platform, o)
	if err != nil {
		return nil, err
	}
	logf(o.Log, "first solve done in %s", time.Since(start).Round(100*time.Millisecond))
	res := &Result{Program: p, Plan: pl, Facts: prep.facts, Variants: prep.variants}
	res.Candidates = pl.Candidates(prep.facts)

	failed := map[string]VariantOutcome{}
	for _, v := range prep.variants {
		if v.Err != nil {
			failed[v.Name] = v
		}
	}
	var build []llbdefs.Recipe
	for _, cd := range res.Candidates {
		if _, bad := failed[cd.Variant]; !bad {
			build = append(build, cd.Recipe)
		}
	}
	targets, err := llbdefs.Targets(build, llbdefs.Context(fsys))
	if err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	for i := range targets {
		ck := o.Check
		targets[i].Check = &ck
	}
	logf(o.Log, "building and running %d candidate image(s) (%d build variant(s) failed)", len(targets), len(failed))
	opts := []runner.Option{
		runner.Product(llbdefs.Product), runner.NameTemplate(llbdefs.ImageNameTemplate), runner.Platforms(platform),
		// Each image goes to buildkitd's store (as minikit:NAME, like
		// solve's): with the measure cache, an image measured before is
		// not streamed again, and base layers are read once per machine.
		runner.Image(), runner.Measure(measure.TopFiles(measure.DefaultTopFiles)),
		runner.Test(runner.TestOptions{Timeout: o.RunTimeout, NetworkEnv: o.NetworkEnv}),
		runner.Progress(o.ProgressOut, progressMode(o.ProgressMode)),
	}
	if o.Parallel > 0 {
		opts = append(opts, runner.Parallel(o.Parallel))
	}
	if o.MeasureCache != "" {
		opts = append(opts, runner.MeasureCache(o.MeasureCache))
	}
	results, err := runner.Solve(ctx, c, targets, opts...)
	if err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	byName := map[string]runner.Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	for _, cd := range res.Candidates {
		r, ok := byName[cd.Name]
		if !ok {
			v := failed[cd.Variant]
			r = runner.Result{Name: cd.Name, Status: runner.StatusFailed, Err: v.Err, Error: v.Error,
				FailedVertex: v.FailedVertex, FailedLog: v.FailedLog}
		}
		res.Results = append(res.Results, r)
	}
	res.Report = newReport(res, o.Check, o.StandIns)
	res.Winner = winner(res)
	if cd, ok := res.WinnerCandidate(); ok {
		for _, v := range res.Variants {
			if v.Name == cd.Variant {
				res.WinnerExeBytes = v.ExeBytes
			}
		}
		res.Report.Ranking = rank(res)
		if res.Dockerfile, err = Dockerfile(res.Program, cd); err != nil {
			return nil, err
		}
		if len(o.Outputs) > 0 {
			if res.Outputs, err = export(ctx, c, cd, fsys, platform, o); err != nil {
				return res, err
			}
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// export builds the winner again (from the cache) into Outputs.
func export(ctx context.Context, c *client.Client, cd Candidate, fsys fsutil.FS, platform ocispecs.Platform, o Options) ([]string, error) {
	targets, err := llbdefs.Targets([]llbdefs.Recipe{cd.Recipe}, llbdefs.Context(fsys))
	if err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	targets[0].Check = nil
	logf(o.Log, "exporting %s", cd.Name)
	results, err := runner.Solve(ctx, c, targets,
		runner.Product(llbdefs.Product), runner.NameTemplate(llbdefs.ImageNameTemplate), runner.Platforms(platform),
		runner.Exports(o.Outputs...), runner.Progress(o.ProgressOut, progressMode(o.ProgressMode)))
	if err != nil {
		return nil, fmt.Errorf("explore: export %s: %w", cd.Name, err)
	}
	if r := results[0]; r.Err != nil {
		return nil, fmt.Errorf("explore: export %s: %w", cd.Name, r.Err)
	}
	return results[0].Outputs, nil
}

// Dockerfile renders a candidate as a Dockerfile whose build context is
// the program's directory (pkg/llbdefs renders it; its header line says
// where it comes from and how to build it).
func Dockerfile(p Program, cd Candidate) (string, error) {
	df, err := cd.Recipe.RenderDockerfile()
	if err != nil {
		return "", fmt.Errorf("explore: the Dockerfile of %s: %w", cd.Name, err)
	}
	lines := strings.SplitAfter(df, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "# "+cd.Name+": generated by minikit") {
			lines[i] = "# " + cd.Name + ": generated by `minikit explore " + p.Dir + "`; the build context is that directory:\n" +
				"#   docker buildx build -f THIS_FILE " + p.Dir + "\n"
			break
		}
	}
	return strings.Join(lines, ""), nil
}

func progressMode(m string) string {
	if m == "" {
		return "quiet"
	}
	return m
}

func logf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", a...)
	}
}

// winner is the smallest working candidate: built, run, and its run
// passed the check; ties go to the earlier candidate in plan order.
func winner(res *Result) string {
	best := -1
	for i, row := range res.Report.Recipes {
		if !works(row) {
			continue
		}
		if best < 0 || row.Image.Uncompressed < res.Report.Recipes[best].Image.Uncompressed {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return res.Report.Recipes[best].Name
}

// works reports whether a row's image passed the user's check.
func works(row report.Recipe) bool {
	return row.Image != nil && row.Run != nil && row.Run.Expected
}
