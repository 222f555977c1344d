package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/tlsca"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// testHarness is what a test run needs beside the daemon: on the
// stand-ins, the loopback HTTPS server the whatsmyip images are pointed
// at, with a certificate from minikit's persistent test CA (the
// stand-ins' CA bundles trust it). Upstream base images trust the public
// CAs only, so on them the images keep their own default URL.
type testHarness struct {
	server *tlsca.Server // nil off the stand-ins
	Option runner.Option
}

// Close stops the loopback server, if any.
func (h *testHarness) Close() {
	if h.server != nil {
		h.server.Close()
	}
}

// URL is the loopback server's address, "" off the stand-ins.
func (h *testHarness) URL() string {
	if h.server == nil {
		return ""
	}
	return h.server.URL
}

// newTestHarness returns the runner option that runs every image
// (runner.Test), starting the loopback HTTPS server when the base images
// are the stand-ins. `solve --test` uses it too.
func newTestHarness(home paths.Home, timeout time.Duration, standIns bool) (*testHarness, error) {
	if !standIns {
		return &testHarness{Option: runner.Test(runner.TestOptions{Timeout: timeout})}, nil
	}
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
	format := fs.String("format", "table", "summary format: table or json (the report of solve --format json: pkg/report/FIELDS.md)")
	bf := addBuilderFlags(fs, true)
	samplesDir := fs.String("samples", "", "directory of sample programs (default: the ones built into minikit)")
	platform := platformFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	platformOpt, err := platformOption(*platform)
	if err != nil {
		return err
	}
	recipes, err := selectRecipes(*all, *extras, fs.Args())
	if err != nil {
		return err
	}
	if err := bf.check(); err != nil {
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
	set, err := bf.openAll(ctx, home, a)
	if err != nil {
		return err
	}
	defer set.Close()
	conn := set.first
	h, err := newTestHarness(home, *runTimeout, conn.StandIns)
	if err != nil {
		return err
	}
	defer h.Close()

	rep := &report.Report{Generated: time.Now().UTC(), Machine: machine(set.where()), StandIns: conn.StandIns, TestServer: h.URL()}
	rows := map[string][]report.Recipe{}
	run, skip := splitOffline(recipes, conn.StandIns)
	for _, r := range skip {
		rows[r.Name] = []report.Recipe{report.SkippedRow(r, upstreamOnly(r), conn.StandIns)}
	}
	targets, err := llbdefs.Targets(run, llbdefs.ContextDir(dir), llbdefs.CompilerCache(true))
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "testing %d recipe(s) on %s, %d at a time; whatsmyip talks to %s\n", len(run), set.where(), *parallel, h.server.URL)
	start := time.Now()
	results, err := runner.SolveOn(ctx, set.builders, targets,
		runner.Parallel(*parallel), bf.runnerProgress(a), runner.NoExport(),
		runner.Product(llbdefs.Product), runner.NameTemplate(llbdefs.ImageNameTemplate), h.Option, platformOpt)
	if err != nil {
		return err
	}
	lost := markLost(results, set.conns)
	resultRows(rows, run, results, conn.StandIns, nil) // platform.go
	for _, r := range recipes {
		rep.Recipes = append(rep.Recipes, rows[r.Name]...)
	}
	if *format == "json" {
		if err := report.WriteJSON(a.stdout, rep); err != nil {
			return err
		}
	} else if err := report.WriteTestTable(a.stdout, rep, time.Since(start)); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	if lost != nil {
		return lost
	}
	if n := report.Summarize(rep).Unexpected; n > 0 {
		return unexpectedError{n}
	}
	return nil
}
