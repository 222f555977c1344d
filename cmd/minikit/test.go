package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/tlsca"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/runner"
)

// testRow is one recipe in `minikit test`'s summary.
type testRow struct {
	runner.Result
	Expect  string `json:"expect"`
	Skipped string `json:"skipped,omitempty"`
	// StandInDiffers is, for a partial recipe run on the stand-ins, the
	// one respect in which its stand-in differs from upstream.
	StandInDiffers string `json:"stand_in_differs,omitempty"`
}

// testDoc is what `minikit test --format json` prints.
type testDoc struct {
	Daemon   string    `json:"daemon"`
	StandIns bool      `json:"stand_ins"`
	Server   string    `json:"https_server"` // the loopback what-is-my-IP server
	Recipes  []testRow `json:"recipes"`
	Summary  struct {
		AsExpected int `json:"as_expected"`
		Unexpected int `json:"unexpected"`
		Skipped    int `json:"skipped"`
	} `json:"summary"`
}

// testHarness is what a test run needs beside the daemon: the loopback
// HTTPS server the whatsmyip images are pointed at, with a certificate
// from minikit's persistent test CA.
type testHarness struct {
	server *tlsca.Server
	Option runner.Option
}

func (h *testHarness) Close() { h.server.Close() }

// newTestHarness starts the loopback HTTPS server and returns the runner
// option that runs every image (runner.Test). `solve --test` uses it too.
func newTestHarness(home paths.Home, timeout time.Duration) (*testHarness, error) {
	ca, err := tlsca.LoadOrCreate(filepath.Join(string(home), tlsca.DirName))
	if err != nil {
		return nil, err
	}
	srv, err := tlsca.Serve(ca)
	if err != nil {
		return nil, err
	}
	return &testHarness{server: srv, Option: runner.Test(runner.TestOptions{
		Timeout:    timeout,
		NetworkEnv: []string{"WHATSMYIP_URL=" + srv.URL},
	})}, nil
}

func (a app) test(ctx context.Context, args []string) error {
	fs := a.flags("test", "[flags] --all | NAME|GLOB...")
	all := fs.Bool("all", false, "test every recipe (on stand-ins: every recipe they can reproduce)")
	extras := fs.Bool("extras", false, "include the extra recipes beyond the 51 seed rows (minikit list --extras); alone: the extras only")
	parallel := fs.Int("parallel", runner.DefaultParallel(), "recipes built and run at once")
	runTimeout := fs.Duration("run-timeout", runner.DefaultRunTimeout, "time limit of each run: the process is killed and reported as a timeout")
	format := fs.String("format", "table", "summary format: table or json")
	progress := fs.String("progress", "quiet", "build progress display: auto, tty, plain, quiet, rawjson")
	addr := fs.String("addr", "", "buildkitd address; default $BUILDKIT_HOST, else minikit's private daemon")
	samplesDir := fs.String("samples", "", "directory of sample programs (default: the ones built into minikit)")
	if err := parse(fs, args); err != nil {
		return err
	}
	recipes, err := selectRecipes(*all, *extras, fs.Args())
	if err != nil {
		return err
	}
	switch {
	case *parallel < 1:
		return usagef("--parallel must be at least 1, not %d", *parallel)
	case *runTimeout <= 0:
		return usagef("--run-timeout must be positive, not %s", *runTimeout)
	case *format != "table" && *format != "json":
		return usagef("--format must be table or json, not %q", *format)
	}
	home, dir, err := homeAndSamples(*samplesDir)
	if err != nil {
		return err
	}
	conn, err := connect.Open(ctx, connect.Options{Addr: *addr, Home: home, Log: a.stderr})
	if err != nil {
		return err
	}
	defer conn.Close()
	h, err := newTestHarness(home, *runTimeout)
	if err != nil {
		return err
	}
	defer h.Close()

	doc := testDoc{Daemon: conn.Addr, StandIns: conn.StandIns, Server: h.server.URL}
	run, skip := splitOffline(recipes, conn.StandIns)
	for _, r := range skip {
		doc.Recipes = append(doc.Recipes, testRow{Result: runner.Result{Name: r.Name}, Expect: string(r.Expect), Skipped: upstreamOnly(r)})
	}
	fmt.Fprintf(a.stderr, "testing %d recipe(s) on %s, %d at a time; whatsmyip talks to %s\n", len(run), conn.Addr, *parallel, h.server.URL)
	start := time.Now()
	results, err := runner.Solve(ctx, conn.Client, run,
		runner.Parallel(*parallel), runner.Progress(a.stderr, *progress), runner.SamplesDir(dir),
		runner.NoExport(), runner.CompilerCache(true), h.Option)
	if err != nil {
		return err
	}
	lost := markLost(results, []*connect.Conn{conn})
	for i, res := range results {
		row := testRow{Result: res, Expect: string(run[i].Expect)}
		if conn.StandIns && run[i].StandIn == llbdefs.Partial {
			row.StandInDiffers = run[i].Offline
		}
		doc.Recipes = append(doc.Recipes, row)
	}
	pos := map[string]int{}
	for i, r := range recipes {
		pos[r.Name] = i
	}
	sorted := make([]testRow, len(doc.Recipes))
	for _, row := range doc.Recipes {
		sorted[pos[row.Name]] = row
	}
	doc.Recipes = sorted
	for _, row := range doc.Recipes {
		switch {
		case row.Skipped != "":
			doc.Summary.Skipped++
		case row.Unexpected():
			doc.Summary.Unexpected++
		default:
			doc.Summary.AsExpected++
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else if err := printTestTable(a.stdout, doc, time.Since(start)); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	if lost != nil {
		return lost
	}
	if doc.Summary.Unexpected > 0 {
		return unexpectedError{doc.Summary.Unexpected}
	}
	return nil
}

// testVerdict is one row's result word and what it got.
func testVerdict(row testRow) (verdict, got, reason string) {
	switch {
	case row.Skipped != "":
		return "skipped", "-", row.Skipped
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
	case row.Status == runner.StatusExpectedFailure:
		return "as-expected", "build", "build failed: " + oneLine(row.Error)
	default:
		return "UNEXPECTED", string(row.Status), oneLine(row.Error)
	}
}

func printTestTable(w io.Writer, doc testDoc, took time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPE\tEXPECT\tGOT\tRESULT\tRUN\tREASON")
	for _, row := range doc.Recipes {
		verdict, got, reason := testVerdict(row)
		if row.StandInDiffers != "" {
			reason = strings.TrimPrefix(reason+"; partial stand-in: "+row.StandInDiffers, "; ")
		}
		dur := "-"
		if row.Run != nil {
			dur = row.Run.Duration.Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Name, row.Expect, got, verdict, dur, reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := doc.Summary
	_, err := fmt.Fprintf(w, "%d as expected, %d unexpected, %d skipped in %s\n", s.AsExpected, s.Unexpected, s.Skipped, took.Round(100*time.Millisecond))
	return err
}

// oneLine is the first line of s, shortened for a table.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
