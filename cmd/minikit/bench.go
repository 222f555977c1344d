package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minikit/minikit/internal/bench"
	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/pkg/llbdefs"
)

// bench measures minikit solve as the README runs it (sizes measured),
// its other modes (no sizes, no compiler cache, one at a time) and
// docker-buildx bake on one buildkitd of its own, fresh for each cold
// run, and checks that minikit's optimizations leave the images as they
// are.
func (a app) bench(ctx context.Context, args []string) error {
	fs := a.flags("bench", "[flags] [NAME|GLOB...]   (default: the recipes the stand-ins reproduce, bake's standins group)")
	runs := fs.Int("runs", 1, "repeat each measurement N times and report the median")
	only := fs.String("only", "", "measure only cold or warm runs (default: both)")
	format := fs.String("format", "table", "output: table or json")
	var all []string
	for _, m := range bench.Modes() {
		all = append(all, string(m))
	}
	modes := fs.String("modes", "", "comma list of what to measure (default all but sequential): "+strings.Join(all, ", "))
	pairs := fs.Int("pairs", 10, "then, on the last daemon, N alternating warm runs of solve (else minikit-cache) and bake: a daemon that has served earlier runs; 0 for none")
	buildx := fs.String("buildx", "", "docker-buildx executable (default: next to minikit, else on PATH)")
	dir := fs.String("dir", "", "the bench's state directory: its own buildkitd, emptied before each cold run (default: a temporary directory, removed afterwards)")
	registry := fs.String("registry", "", "loopback host:port for the bench's stand-in registry (default: the stand-ins' package index address if free, so that pip finds it, else a free port)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *runs < 1 {
		return usagef("--runs must be at least 1, not %d", *runs)
	}
	if *pairs < 0 {
		return usagef("--pairs must be 0 or more, not %d", *pairs)
	}
	states, err := bench.ParseStates(*only)
	if err != nil {
		return usageError{err}
	}
	if *format != "table" && *format != "json" {
		return usagef("--format must be table or json, not %q", *format)
	}
	var ms []bench.Mode
	if *modes != "" {
		for _, s := range strings.Split(*modes, ",") {
			m, err := bench.ParseMode(strings.TrimSpace(s))
			if err != nil {
				return usageError{err}
			}
			ms = append(ms, m)
		}
	}
	recipes := bench.StandInRecipes()
	if fs.NArg() > 0 {
		sel, err := llbdefs.Select(llbdefs.Catalog(), fs.Args()...)
		if err != nil {
			return usageError{err}
		}
		for _, r := range sel {
			if !r.BuildsOffline() || r.ExpectBuildFailure() {
				return usagef("%s is not in the standins group (it needs the internet, or is expected to fail)", r.Name)
			}
		}
		recipes = sel
	}

	home, err := paths.Default()
	if err != nil {
		return err
	}
	if !connect.HaveStandIns(home) {
		return fmt.Errorf("bench: no stand-in images in %s: run minikit standins build (or scripts/setup)", home.StandIns())
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: locate minikit: %w", err)
	}
	bx := *buildx
	if bx == "" && (len(ms) == 0 || slices.Contains(ms, bench.Bake)) {
		if bx, err = findBuildx(self); err != nil {
			return err
		}
	}
	work := *dir
	if work == "" {
		if work, err = os.MkdirTemp("", "minikit-bench-"); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(work)
	}
	res, err := bench.Run(ctx, bench.Config{
		Minikit:  self,
		Buildx:   bx,
		UserBin:  home.Bin(),
		StandIns: home.StandIns(),
		Dir:      work,
		Registry: *registry,
		Recipes:  recipes,
		Modes:    ms,
		States:   states,
		Runs:     *runs,
		Pairs:    *pairs,
		Log:      a.stderr,
	})
	if err != nil {
		return err
	}
	if *format == "json" {
		return res.WriteJSON(a.stdout)
	}
	return res.WriteTable(a.stdout)
}

// findBuildx looks for docker-buildx next to minikit (bin/, where
// scripts/buildx puts it), then on PATH.
func findBuildx(self string) (string, error) {
	if r, err := filepath.EvalSymlinks(self); err == nil {
		self = r
	}
	p := filepath.Join(filepath.Dir(self), "docker-buildx")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath("docker-buildx"); err == nil {
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("bench: docker-buildx not found next to minikit or on PATH: run scripts/buildx, pass --buildx, or leave bake out with --modes")
}
