package main

import (
	"context"
	"fmt"

	"github.com/minikit/minikit/pkg/compare"
)

// growthError is a comparison with recipes over their growth limit
// (exit 1, as an unexpected outcome); they were already printed.
type growthError struct{ n int }

func (e growthError) Error() string {
	return fmt.Sprintf("%d recipe size(s) over the growth limit", e.n)
}

// Unwrap makes the error count as an unexpected outcome (exit 1).
func (e growthError) Unwrap() error { return unexpectedError{e.n} }

// compare compares two saved solve reports: per recipe, the size changes
// and outcome changes, new and removed recipes; growth limits fail it.
func (a app) compare(ctx context.Context, args []string) error {
	fs := a.flags("compare", "[flags] OLD.json NEW.json")
	var growth, compressedGrowth multiFlag
	fs.Var(&growth, "max-growth", "growth `LIMIT` of the uncompressed size, repeatable: relative (5%) or absolute (200kB, 1MiB: the --max-size syntax), "+
		"for every recipe or, as NAME=LIMIT, for a recipe name or glob ('hello-go.*=10%'); a recipe that grows by more fails the comparison (exit 1)")
	fs.Var(&compressedGrowth, "max-compressed-growth", "growth `LIMIT` of the compressed size (the layer blobs: what a pull transfers), as --max-growth")
	format := fs.String("format", "table", "output: table, json, or markdown (for a CI job summary, $GITHUB_STEP_SUMMARY)")
	all := fs.Bool("all", false, "table and markdown: list the unchanged recipes too")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("want two reports, OLD.json NEW.json (from 'minikit solve --format json')")
	}
	switch *format {
	case "table", "json", "markdown":
	default:
		return usagef("--format must be table, json or markdown, not %q", *format)
	}
	opts := []compare.Option{
		compare.Files(fs.Arg(0), fs.Arg(1)),
		compare.LimitFlag(compare.Uncompressed, "--max-growth"),
		compare.LimitFlag(compare.Compressed, "--max-compressed-growth"),
	}
	for _, g := range []struct {
		flag   string
		metric compare.Metric
		values []string
	}{{"--max-growth", compare.Uncompressed, growth}, {"--max-compressed-growth", compare.Compressed, compressedGrowth}} {
		for _, v := range g.values {
			l, err := compare.ParseLimit(v)
			if err != nil {
				return usagef("%s: %w", g.flag, err)
			}
			opts = append(opts, compare.MaxGrowth(g.metric, l))
		}
	}
	oldRep, err := compare.ReadFile(fs.Arg(0))
	if err != nil {
		return usageError{err}
	}
	newRep, err := compare.ReadFile(fs.Arg(1))
	if err != nil {
		return usageError{err}
	}
	c, err := compare.Reports(oldRep, newRep, opts...)
	if err != nil {
		return usageError{err}
	}
	var wopts []compare.WriteOption
	if *all {
		wopts = append(wopts, compare.AllRecipes())
	}
	switch *format {
	case "json":
		err = compare.WriteJSON(a.stdout, c)
	case "markdown":
		err = compare.WriteMarkdown(a.stdout, c, wopts...)
	default:
		err = compare.WriteTable(a.stdout, c, wopts...)
	}
	if err != nil {
		return err
	}
	if n := len(c.Violations); n > 0 {
		if *format != "table" {
			// The table lists them on stdout already; name them on
			// stderr too when stdout is a document.
			for _, v := range c.Violations {
				fmt.Fprintf(a.stderr, "over its growth limit: %s\n", v)
			}
		}
		return growthError{n}
	}
	return nil
}
