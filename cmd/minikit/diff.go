package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/minikit/minikit/pkg/imagediff"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/runner"
)

// diff solves two recipes (from BuildKit's cache when they were built
// before), exports each as an OCI layout and compares them: files only in
// one, files changed, the config difference.
func (a app) diff(ctx context.Context, args []string) error {
	fs := a.flags("diff", "[flags] RECIPE-A RECIPE-B")
	format := fs.String("format", "table", "output: table or json (text: the same as table)")
	limit := fs.Int("limit", 20, "with --format table: paths listed per section, 0 for all")
	bf := addBuilderFlags(fs, false)
	samplesDir := fs.String("samples", "", "directory of sample programs (default: the ones built into minikit)")
	// Flags may come before, between or after the two names.
	var names []string
	for {
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := bf.check(); err != nil {
		return err
	}
	switch {
	case len(names) != 2:
		return usagef("name two recipes to compare (minikit list --extras shows every name)")
	case *format != "table" && *format != "text" && *format != "json":
		return usagef("--format must be table or json, not %q", *format)
	case *limit < 0:
		return usagef("--limit must be 0 or more, not %d", *limit)
	}
	// Seed rows and extras alike: a diff names exact recipes, no globs.
	var recipes []llbdefs.Recipe
	for _, name := range names {
		rs, err := llbdefs.Select(llbdefs.All(), name)
		if err != nil {
			return usageError{err}
		}
		if len(rs) != 1 {
			return usagef("%q matches %d recipes: name exactly one", name, len(rs))
		}
		recipes = append(recipes, rs[0])
	}

	home, dir, err := homeAndSamples(*samplesDir)
	if err != nil {
		return err
	}
	out, err := os.MkdirTemp("", "minikit-diff-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	conn, err := bf.open(ctx, home, a)
	if err != nil {
		return err
	}
	defer conn.Close()
	uniq := recipes
	if recipes[0].Name == recipes[1].Name {
		uniq = recipes[:1]
	}
	targets, err := llbdefs.Targets(uniq, llbdefs.ContextDir(dir), llbdefs.CompilerCache(true))
	if err != nil {
		return err
	}
	results, err := runner.Solve(ctx, conn.Client, targets, runner.OCI(out), bf.runnerProgress(a),
		runner.Product(llbdefs.Product), runner.NameTemplate(llbdefs.ImageNameTemplate))
	if err != nil {
		return err
	}
	var failed []string
	for _, res := range results {
		if res.Status != runner.StatusOK {
			failed = append(failed, fmt.Sprintf("%s did not build (%s): %s", res.Name, res.Status, firstLineOf(res.Error)))
		}
	}
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintln(a.stderr, f)
		}
		return unexpectedError{len(failed)}
	}
	imgs := make([]*imagediff.Image, 2)
	for i, r := range recipes {
		res := results[min(i, len(results)-1)]
		if len(res.Outputs) == 0 {
			return fmt.Errorf("%s: no OCI tarball was written", r.Name)
		}
		img, err := imagediff.ReadOCIFile(res.Outputs[0])
		if err != nil {
			return fmt.Errorf("reading %s: %w", r.Name, err)
		}
		img.Name, img.Base = r.Name, "scratch"
		if r.RunImage() != "" {
			img.Base = llbdefs.ShortRef(r.RunImage())
		}
		imgs[i] = img
	}
	d := imagediff.Compare(imgs[0], imgs[1])
	if *format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	return imagediff.WriteText(a.stdout, d, *limit)
}

// firstLineOf is a message's first line.
func firstLineOf(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
