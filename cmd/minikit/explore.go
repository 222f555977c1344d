package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/minikit/minikit/internal/atomicfile"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/pkg/explore"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// goEnvNames are the Go settings passed from minikit's environment to the
// Go build stages when set (the module proxy and checksum database the
// builds download dependencies from).
var goEnvNames = []string{"GOPROXY", "GONOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOINSECURE", "GOFLAGS"}

func (a app) explore(ctx context.Context, args []string) error {
	fs := a.flags("explore", "[flags] DIR")
	var spec explore.CheckSpec
	var envs, outputs multiFlag
	argsFlag := fs.String("args", "", "run the program with these arguments instead of the image's Cmd (split as a shell splits words)")
	fs.Var(&envs, "env", "`KEY=VALUE` added to the program's environment, repeatable")
	fs.IntVar(&spec.ExpectExit, "expect-exit", 0, "the exit code of a working program")
	fs.StringVar(&spec.ExpectOutput, "expect-output", "", "a regular expression the standard output of a working program matches")
	fs.StringVar(&spec.Probe, "probe", "", "the program is a server: it works when it answers `http://:PORT/PATH` with a 2xx (run on the host network)")
	fs.DurationVar(&spec.ProbeTimeout, "probe-timeout", explore.DefaultProbeTimeout, "how long a probed server has to answer")
	fs.BoolVar(&spec.Network, "network", false, "run the program on the host network (it reaches servers on this machine)")
	bases := fs.String("bases", "", "the run bases to try, a comma list (default all of the kind's: scratch, distroless-static, distroless-base, distroless-cc, alpine, busybox, busybox-glibc, debian-slim, build; Java adds distroless-java-base and jre; Python has build and distroless-python3)")
	shellForm := fs.Bool("shell-form", true, "also try the last (most static) build variant on scratch with a shell-form Cmd (it needs /bin/sh)")
	parallel := fs.Int("parallel", runner.DefaultParallel(), "candidates built and run at once")
	runTimeout := fs.Duration("run-timeout", runner.DefaultRunTimeout, "time limit of each run (a probe has --probe-timeout)")
	format := fs.String("format", "table", "summary format: table, or json (the document 'minikit solve --format json' writes: pkg/report/FIELDS.md)")
	htmlReport := fs.String("report", "", "also write a self-contained HTML report to `FILE`")
	emit := fs.String("emit", "", "write the smallest working image's Dockerfile to `FILE` (its build context is DIR)")
	fs.Var(&outputs, "output", "where the smallest working image goes, a `DEST`, repeatable: image (buildkitd's store), oci=DIR, docker=DIR; default: nowhere")
	bf := addBuilderFlags(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "args" {
			spec.Args, spec.ArgsSet = *argsFlag, true
		}
	})
	spec.Env = envs
	if fs.NArg() != 1 {
		return usagef("give one directory holding the program (minikit explore DIR)")
	}
	switch {
	case *parallel < 1:
		return usagef("--parallel must be at least 1, not %d", *parallel)
	case *runTimeout <= 0:
		return usagef("--run-timeout must be positive, not %s", *runTimeout)
	case *format != "table" && *format != "json":
		return usagef("--format must be table or json, not %q", *format)
	}
	if err := bf.check(); err != nil {
		return err
	}
	check, err := spec.Check()
	if err != nil {
		return usageError{err}
	}
	var exports []runner.Export
	for _, o := range outputs {
		e, err := runner.ParseOutput(o)
		if err != nil {
			return usageError{err}
		}
		exports = append(exports, e)
	}
	prog, err := explore.Detect(fs.Arg(0))
	var de *explore.DetectError
	if errors.As(err, &de) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	planOpts := []explore.PlanOption{explore.WithGoEnv(hostGoEnv()...)}
	if *bases != "" {
		planOpts = append(planOpts, explore.WithBases(strings.Split(*bases, ",")...))
	}
	if !*shellForm {
		planOpts = append(planOpts, explore.WithoutShellForm())
	}
	if _, err := explore.NewPlan(prog, planOpts...); err != nil {
		return usageError{err}
	}

	home, err := paths.Default()
	if err != nil {
		return err
	}
	conn, err := bf.open(ctx, home, a)
	if err != nil {
		return err
	}
	defer conn.Close()
	if conn.StandIns {
		fmt.Fprintf(a.stderr, "docker.io and gcr.io images come from the offline stand-ins (minikit standins list): results are stand-in results\n")
	}
	res, err := explore.Explore(ctx, conn.Client, prog, explore.Options{
		Check: check, Plan: planOpts, Parallel: *parallel, ProgressOut: a.stderr, ProgressMode: bf.progress,
		RunTimeout: *runTimeout, Outputs: exports, MeasureCache: home.Measurements(), StandIns: conn.StandIns, Log: a.stderr,
	})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	res.Report.Machine = fmt.Sprintf("%s, %s/%s, %d CPUs, buildkitd at %s", host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), conn.Addr)
	if *format == "json" {
		err = report.WriteJSON(a.stdout, res.Report)
	} else {
		err = explore.WriteText(a.stdout, res)
	}
	if err != nil {
		return err
	}
	if *htmlReport != "" {
		if err := atomicfile.Write(*htmlReport, 0o644, func(w io.Writer) error { return report.WriteHTML(w, res.Report) }); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(a.stderr, "report written to %s\n", *htmlReport)
	}
	for _, o := range res.Outputs {
		fmt.Fprintf(a.stderr, "%s written to %s\n", res.Winner, o)
	}
	fmt.Fprintf(a.stderr, "%d candidate(s) in %s\n", len(res.Candidates), res.Duration.Round(100*time.Millisecond))
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	if res.Winner == "" {
		return noWinnerError{len(res.Candidates)}
	}
	if *emit != "" {
		if err := atomicfile.Write(*emit, 0o644, func(w io.Writer) error {
			_, err := io.WriteString(w, res.Dockerfile)
			return err
		}); err != nil {
			return fmt.Errorf("--emit: %w", err)
		}
		fmt.Fprintf(a.stderr, "the Dockerfile of %s written to %s (build context: %s)\n", res.Winner, *emit, prog.Dir)
	}
	return nil
}

// noWinnerError ends an explore run in which no candidate works (exit 1).
type noWinnerError struct{ n int }

func (e noWinnerError) Error() string {
	return fmt.Sprintf("none of the %d candidate(s) works", e.n)
}

func (e noWinnerError) Unwrap() error { return unexpectedError{e.n} }

// hostGoEnv is minikit's environment's Go settings (goEnvNames), for the
// Go build stages.
func hostGoEnv() []string {
	var out []string
	for _, k := range goEnvNames {
		if v := os.Getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}
